"""The one canonical CBOR encoder and a strict, size-limited decoder.

Encoding is RFC 8949 section 4.2.1 core deterministic encoding (cbor2 ``canonical=True``), so the
bytes that are signed or MACed are reproducible by any implementation. Decoding refuses oversized
input and trailing bytes and turns every decoder failure into `FormatError`.

Before cbor2 builds a single object, `_scan` walks the item heads of the input (skipping string
contents) and refuses more items or deeper nesting than the artifact's `Shape`, indefinite
lengths, tags other than the caller's outermost one, and lengths beyond the end of the input.
So decoding n bytes costs O(n + shape.items) memory and work whatever the bytes are: a 4 MiB
request of empty maps is refused after ``shape.items`` heads, having built nothing. The type
walk after decoding counts the items it reaches; fewer than scanned means a map repeated a key.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import cbor2

from trustprov.errors import FormatError
from trustprov.formats.limits import LIMITS, Shape


def encode(value: Any) -> bytes:
    return bytes(cbor2.dumps(value, canonical=True))


def decode(
    data: bytes,
    *,
    limit: int,
    what: str,
    shape: Shape = LIMITS.cbor_default_shape,
    tags: frozenset[int] = frozenset(),
) -> Any:
    """The one CBOR item of ``data``: at most ``limit`` bytes and ``shape``'s items and depth;
    the outermost item may carry one of ``tags``, no other item may carry any tag."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"{what}: expected bytes")
    if len(data) > limit:
        raise FormatError(f"{what}: {len(data)} bytes exceeds the limit of {limit}")
    if not data:
        raise FormatError(f"{what}: empty")
    data = bytes(data)  # one immutable copy: what is scanned is what is decoded
    items = _scan(data, shape, tags, what)
    fp = io.BytesIO(data)
    try:
        # cbor2's own depth limit too (it counts the leaf inside the deepest container as one
        # more level), should the scan and cbor2 ever disagree on depth
        value = cbor2.CBORDecoder(fp, max_depth=shape.depth + 1).decode()
    # hostile input makes the decoder raise many types (ValueError, RecursionError, MemoryError,
    # CBORDecodeError...): each is malformed input to us
    except Exception as e:
        raise FormatError(f"{what}: not valid CBOR") from e
    if fp.tell() != len(data):
        raise FormatError(f"{what}: trailing bytes after the CBOR item")
    if _check_types(value, what) != items:
        # cbor2 keeps the last of equal keys: the built value holds fewer items than the input
        raise FormatError(f"{what}: a CBOR map repeats a key")
    return value


def _scan(data: bytes, shape: Shape, tags: frozenset[int], what: str) -> int:
    """`_walk`, and no byte after the item."""
    items, pos = _walk(data, shape, tags, what)
    if pos != len(data):
        raise FormatError(f"{what}: trailing bytes after the CBOR item")
    return items


def sequence(
    data: bytes, *, item_limit: int, what: str, shape: Shape, tags: frozenset[int]
) -> Iterator[bytes]:
    """The items of a CBOR sequence (RFC 8742), each checked by `_walk` (at most
    ``item_limit`` bytes and ``shape``) but not decoded: the caller decodes each."""
    pos, n = 0, len(data)
    while pos < n:
        window = data[pos : pos + item_limit]
        try:
            _, used = _walk(window, shape, tags, what)
        except FormatError as e:
            raise FormatError(f"{e.message} (an item of the sequence at byte {pos})") from e
        yield window[:used]
        pos += used


def _walk(  # noqa: PLR0912, PLR0915 - one lean loop: a call per item would double its cost
    data: bytes, shape: Shape, tags: frozenset[int], what: str
) -> tuple[int, int]:
    """The number of items of the well-formed CBOR item of ``shape`` at most that ``data``
    starts with, and where it ends, found
    from the heads alone (RFC 8949 section 3): nothing is built, string contents are skipped,
    and the work is O(items). Refuses what trustprov never encodes (indefinite lengths,
    reserved additional information, nested tags) and what cannot be there: a length or count
    beyond the end of the input. Runs on every link message: keep the loop lean."""
    n = len(data)
    max_items, max_depth = shape.items, shape.depth
    pos = items = 0
    todo = 1  # items still to read in the innermost open container (the top level: one)
    stack: list[int] = []  # the same for each enclosing container
    while True:
        if not todo:
            if not stack:
                break
            todo = stack.pop()
            continue
        todo -= 1
        if pos >= n:
            raise FormatError(f"{what}: truncated CBOR")
        head = data[pos]
        major, info = head >> 5, head & 31
        if info < 24:
            arg = info
            pos += 1
        elif info < 28:
            end = pos + 1 + (1 << (info - 24))
            if end > n:
                raise FormatError(f"{what}: truncated CBOR")
            arg = int.from_bytes(data[pos + 1 : end], "big")
            pos = end
        elif info == 31:
            raise FormatError(f"{what}: indefinite-length CBOR item")
        else:
            raise FormatError(f"{what}: reserved CBOR additional information {info}")
        items += 1
        if items > max_items:
            raise FormatError(f"{what}: more than {max_items} CBOR items")
        if major < 2 or major == 7:  # integers, simple values and floats: the head is all
            continue
        if major < 4:  # byte and text strings
            if arg > n - pos:
                raise FormatError(f"{what}: a CBOR string claims {arg} bytes, more than remain")
            pos += arg
            continue
        if major == 6:
            if stack or todo or arg not in tags:
                raise FormatError(f"{what}: CBOR tag {arg} where trustprov uses none")
            count = 1
        else:
            count = arg if major == 4 else 2 * arg
            # every item takes at least one byte, and the item budget is known: refuse a
            # container that announces more now, before reading any of it
            if count > n - pos:
                raise FormatError(
                    f"{what}: a CBOR {_CONTAINER[major]} claims {arg} entries, more than remain"
                )
            if count > max_items - items:
                raise FormatError(f"{what}: more than {max_items} CBOR items")
        if len(stack) >= max_depth:
            raise FormatError(f"{what}: CBOR nested deeper than {max_depth}")
        stack.append(todo)
        todo = count
    return items, pos


_CONTAINER = {4: "array", 5: "map"}


_INT_MIN, _INT_MAX = -(2**64), 2**64 - 1


def _check_types(value: Any, what: str) -> int:
    """Refuse everything trustprov's formats never use, wherever it is nested: floats (3.0
    equals 3 in Python), bignums beyond CBOR's 64-bit integers, stray break codes, undefined,
    the objects cbor2 builds from semantic tags (dates, sets...), and shared references (tags
    28/29), which can make a structure contain itself: no container may be reached twice.
    Returns the number of items reached (a map's key and value are two, a tag and its content
    two), which is the number of heads in the input unless a map repeated a key."""
    stack = [value]
    seen: set[int] = set()
    pop, extend, leaves = stack.pop, stack.extend, _LEAVES
    count = 0
    while stack:
        v = pop()
        count += 1
        t = type(v)
        if t in leaves:
            continue
        if t is int:
            if not _INT_MIN <= v <= _INT_MAX:
                raise FormatError(f"{what}: integer outside CBOR's 64-bit range")
            continue
        if t is not list and t is not dict and t is not cbor2.CBORTag:
            kind = "a floating-point number" if t is float else "a tag or simple value"
            raise FormatError(f"{what}: a CBOR item of a kind trustprov does not use ({kind})")
        if id(v) in seen:
            raise FormatError(f"{what}: shared or self-referencing CBOR structure")
        seen.add(id(v))
        if t is list:
            extend(v)
        elif t is dict:
            extend(v.keys())
            extend(v.values())
        else:  # a tag cbor2 has no meaning for: the format decides
            stack.append(v.value)
    return count


_LEAVES = frozenset({bytes, str, bool, type(None)})


def expect(value: Any, typ: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it has type ``typ`` (bool is never accepted as an int), else `FormatError`."""
    if isinstance(value, bool) and typ is not bool:
        raise FormatError(f"{what}: wrong type")
    if not isinstance(value, typ):
        raise FormatError(f"{what}: wrong type")
    return value


def expect_map(
    value: Any,
    what: str,
    required: set[Any] | frozenset[Any],
    optional: set[Any] | frozenset[Any] = frozenset(),
) -> dict[Any, Any]:
    m: dict[Any, Any] = expect(value, dict, what)
    missing = required - m.keys()
    if missing:
        raise FormatError(f"{what}: missing {', '.join(sorted(map(show, missing)))}")
    unknown = m.keys() - required - optional
    if unknown:
        raise FormatError(f"{what}: unknown fields {', '.join(sorted(map(show, unknown)))}")
    return m


def show(key: Any) -> str:
    """A map key for an error message: short, printable, and never costly to render."""
    if isinstance(key, str):
        text = key if key.isprintable() else repr(key)
        return text[:32]
    if isinstance(key, int) and not isinstance(key, bool) and key.bit_length() <= 64:
        return str(key)
    # its CBOR major type in words, never a Python class name
    kinds = ((bool, "true/false"), (bytes, "byte string"), (int, "big integer"),
             (float, "float"), (list, "array"), (dict, "map"))  # fmt: skip
    return "<" + next((k for t, k in kinds if isinstance(key, t)), "tag or simple value") + ">"


def expect_uint(value: Any, what: str, maximum: int = 2**64 - 1) -> int:
    v: int = expect(value, int, what)
    if not 0 <= v <= maximum:
        raise FormatError(f"{what}: out of range")
    return v


def expect_bstr(
    value: Any, what: str, length: int | None = None, max_len: int | None = None
) -> bytes:
    v = bytes(expect(value, bytes, what))
    if length is not None and len(v) != length:
        raise FormatError(f"{what}: must be {length} bytes")
    if max_len is not None and len(v) > max_len:
        raise FormatError(f"{what}: longer than {max_len} bytes")
    return v


def expect_name(value: Any, what: str, max_len: int) -> str:
    """A printable text string of 1..``max_len`` bytes in UTF-8: what a chip stores is bytes, so
    a limit in characters would let a name of 4-byte characters take four times the room."""
    v: str = expect(value, str, what)
    # printable first: it refuses lone surrogates, which have no UTF-8 encoding
    if not v or not v.isprintable() or len(v.encode("utf-8")) > max_len:
        raise FormatError(f"{what}: must be printable, 1..{max_len} bytes in UTF-8")
    return v
