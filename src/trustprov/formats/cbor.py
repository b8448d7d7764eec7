"""The one canonical CBOR encoder and a strict, size-limited decoder.

Encoding is RFC 8949 section 4.2.1 core deterministic encoding (cbor2 ``canonical=True``), so the
bytes that are signed or MACed are reproducible by any implementation. Decoding refuses oversized
input and trailing bytes and turns every decoder failure into `FormatError`.

Before cbor2 builds a single object, `_walk` reads the item heads of the input (skipping string
contents) and refuses more items or deeper nesting than the artifact's `Shape`, indefinite
lengths, tags other than the caller's outermost one, lengths beyond the end of the input, and
every item trustprov's formats never use: floats, simple values other than false, true and
null (undefined among them), and containers as map keys. So decoding n bytes costs
O(n + shape.items) memory and work whatever the bytes are: a 4 MiB request of empty maps is
refused after ``shape.items`` heads, having built nothing. What the heads alone cannot show is
a map that repeats a key (cbor2 keeps the last): the walk counts the pairs every map announces,
and decoding counts the pairs the built maps hold; fewer means a repeated key. One pass over the
heads and none over the built value: what the walk refuses, no value is ever built from.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import cbor2

from trustprov.errors import FormatError
from trustprov.formats.limits import LIMITS, Shape


class _Encoders(threading.local):
    """One canonical encoder and its buffer per thread. ``cbor2.dumps`` builds a new encoder
    for every call, which costs more than encoding a link message: a chip's answers and its
    receipt are a handful of small maps each."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.fp = io.BytesIO()
        self.encoder = cbor2.CBOREncoder(self.fp, canonical=True)


_encoders = _Encoders()
_KEEP_BUFFER = 64 * 1024


class _Decoders(threading.local):
    """A decoder per thread and depth limit, reused for the same reason as `_Encoders`. Each
    decodes only what `_walk` passed: no tag but the caller's outermost one, so none of cbor2's
    shared-value or string-reference state carries from one input to the next."""

    def __init__(self) -> None:
        self.by_depth: dict[int, Any] = {}

    def get(self, max_depth: int) -> Any:
        d = self.by_depth.get(max_depth)
        if d is None:
            d = self.by_depth[max_depth] = cbor2.CBORDecoder(_NOTHING, max_depth=max_depth)
        return d


_NOTHING = io.BytesIO(b"")
_decoders = _Decoders()


def encode(value: Any) -> bytes:
    """``cbor2.dumps(value, canonical=True)``, the same bytes."""
    e = _encoders
    fp = e.fp
    fp.seek(0)
    fp.truncate()
    try:
        e.encoder.encode(value)
    except BaseException:
        # an encoder stopped half-way may still track containers it was inside: never reuse it
        e.reset()
        raise
    out = fp.getvalue()
    if len(out) > _KEEP_BUFFER:
        e.reset()  # the buffer of a large encoding is not kept alive until the next one
    return out


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
    pairs, tagged = _scan(data, shape, tags, what)  # it also proved no byte follows the item
    built = 0

    def count(_decoder: Any, m: dict[Any, Any]) -> dict[Any, Any]:
        nonlocal built
        built += len(m)
        return m

    # cbor2's own depth limit too (it counts the leaf inside the deepest container as one
    # more level), should the walk and cbor2 ever disagree on depth
    depth = shape.depth + 1
    decoder = _decoders.get(depth)
    decoder.object_hook = count if pairs else None
    decoder.fp = io.BytesIO(data)
    try:
        value = decoder.decode()
    # hostile input makes the decoder raise many types (ValueError, RecursionError, MemoryError,
    # CBORDecodeError...): each is malformed input to us
    except Exception as e:
        _decoders.by_depth.pop(depth, None)  # stopped half-way: never reused
        raise FormatError(f"{what}: not valid CBOR") from e
    finally:
        decoder.fp = _NOTHING  # the input is not kept alive until the next decode
    if built != pairs:
        # cbor2 keeps the last of equal keys: the built maps hold fewer pairs than announced
        raise FormatError(f"{what}: a CBOR map repeats a key")
    if tagged and type(value) is not cbor2.CBORTag:
        # a tag number cbor2 gives a meaning of its own (a date, a bignum...): not a format's
        raise FormatError(f"{what}: CBOR tag where trustprov uses none")
    return value


def _scan(data: bytes, shape: Shape, tags: frozenset[int], what: str) -> tuple[int, bool]:
    """`_walk`, and no byte after the item: the pairs its maps announce, and whether it is
    tagged."""
    _, pos, pairs, tagged = _walk(data, shape, tags, what)
    if pos != len(data):
        raise FormatError(f"{what}: trailing bytes after the CBOR item")
    return pairs, tagged


def count_items(data: bytes, shape: Shape, what: str) -> int:
    """The number of CBOR items (heads) of ``data``, one untagged item within ``shape``."""
    n, pos, _, _ = _walk(data, shape, frozenset(), what)
    if pos != len(data):
        raise FormatError(f"{what}: trailing bytes after the CBOR item")
    return n


def sequence(
    data: bytes, *, item_limit: int, what: str, shape: Shape, tags: frozenset[int]
) -> Iterator[bytes]:
    """The items of a CBOR sequence (RFC 8742), each checked by `_walk` (at most
    ``item_limit`` bytes and ``shape``) but not decoded: the caller decodes each."""
    pos, n = 0, len(data)
    while pos < n:
        window = data[pos : pos + item_limit]
        try:
            _, used, _, _ = _walk(window, shape, tags, what)
        except FormatError as e:
            raise FormatError(f"{e.message} (an item of the sequence at byte {pos})") from e
        yield window[:used]
        pos += used


def _walk(  # noqa: PLR0912, PLR0915 - one lean loop: a call per item would double its cost
    data: bytes, shape: Shape, tags: frozenset[int], what: str
) -> tuple[int, int, int, bool]:
    """The well-formed CBOR item of ``shape`` at most that ``data`` starts with, read from the
    heads alone (RFC 8949 section 3): its number of items, where it ends, the number of pairs
    its maps announce, and whether it is tagged. Nothing is built, string contents are skipped,
    and the work is O(items). Refuses what trustprov never encodes (indefinite lengths,
    reserved additional information, nested tags, floats, simple values but false, true and
    null, containers as map keys) and what cannot be there: a length or count beyond the end
    of the input. Runs on every link message: keep the loop lean."""
    n = len(data)
    max_items, max_depth = shape.items, shape.depth
    pos = items = pairs = 0
    tagged = False
    # items still to read in the innermost open container: in an array (and at the top level,
    # one item) counting down to 0; in a map of n pairs counting up from -2n to 0, a key next
    # while it is even
    todo = 1
    stack: list[int] = []  # the same for each enclosing container
    while True:
        if not todo:
            if not stack:
                break
            todo = stack.pop()
            continue
        if todo > 0:
            todo -= 1
            key = False
        else:
            key = not todo & 1
            todo += 1
        if pos >= n:
            raise FormatError(f"{what}: truncated CBOR")
        head = data[pos]
        major, info = head >> 5, head & 31
        if info < 24:
            arg = info
            pos += 1
        elif info == 24:  # one byte of argument: the commonest after none (strings of 24..255)
            if pos + 1 >= n:
                raise FormatError(f"{what}: truncated CBOR")
            arg = data[pos + 1]
            pos += 2
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
        if major < 2:  # integers: CBOR's are 64-bit, the head is all
            continue
        if major < 4:  # byte and text strings
            if arg > n - pos:
                raise FormatError(f"{what}: a CBOR string claims {arg} bytes, more than remain")
            pos += arg
            continue
        if major == 7:  # false, true, null; floats (3.0 equals 3 in Python), undefined, others
            if 20 <= info <= 22:
                continue
            kind = "float" if 25 <= info <= 27 else "simple value"
            raise FormatError(f"{what}: a CBOR {kind} where trustprov uses none")
        if major == 6:
            if stack or todo or arg not in tags:
                raise FormatError(f"{what}: CBOR tag {arg} where trustprov uses none")
            tagged = True
            count = 1
        else:
            if key:  # cbor2 would build a tuple or a frozen map: no format has such a key
                raise FormatError(f"{what}: a CBOR {_CONTAINER[major]} as a map key")
            count = arg if major == 4 else 2 * arg
            # every item takes at least one byte, and the item budget is known: refuse a
            # container that announces more now, before reading any of it
            if count > n - pos:
                raise FormatError(
                    f"{what}: a CBOR {_CONTAINER[major]} claims {arg} entries, more than remain"
                )
            if count > max_items - items:
                raise FormatError(f"{what}: more than {max_items} CBOR items")
            if major == 5:
                pairs += arg
                count = -count
        if len(stack) >= max_depth:
            raise FormatError(f"{what}: CBOR nested deeper than {max_depth}")
        stack.append(todo)
        todo = count
    return items, pos, pairs, tagged


_CONTAINER = {4: "array", 5: "map"}


def expect(value: Any, typ: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it has type ``typ`` (bool is never accepted as an int), else `FormatError`."""
    if type(value) is typ:  # the common case, decided at once (a bool is not of type int)
        return value
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
    m: dict[Any, Any] = value if type(value) is dict else expect(value, dict, what)
    keys = m.keys()
    if not keys >= required:
        missing = required - keys
        raise FormatError(f"{what}: missing {', '.join(sorted(map(show, missing)))}")
    if len(keys) != len(required):  # more keys than the required ones: each must be optional
        unknown = keys - required - optional
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
    if type(value) is not int:
        expect(value, int, what)  # raises: an int subclass (bool) or another type
    if not 0 <= value <= maximum:
        raise FormatError(f"{what}: out of range")
    return int(value)


def expect_bstr(
    value: Any, what: str, length: int | None = None, max_len: int | None = None
) -> bytes:
    v = value if type(value) is bytes else bytes(expect(value, bytes, what))
    if length is not None and len(v) != length:
        raise FormatError(f"{what}: must be {length} bytes")
    if max_len is not None and len(v) > max_len:
        raise FormatError(f"{what}: longer than {max_len} bytes")
    return v


def expect_name(value: Any, what: str, max_len: int) -> str:
    """A printable text string of 1..``max_len`` bytes in UTF-8: what a chip stores is bytes, so
    a limit in characters would let a name of 4-byte characters take four times the room."""
    v: str = value if type(value) is str else expect(value, str, what)
    # printable first: it refuses lone surrogates, which have no UTF-8 encoding; ASCII is
    # one byte a character
    if (
        not v
        or not v.isprintable()
        or (len(v) if v.isascii() else len(v.encode("utf-8"))) > max_len
    ):
        raise FormatError(f"{what}: must be printable, 1..{max_len} bytes in UTF-8")
    return v
