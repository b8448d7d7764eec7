"""The one canonical CBOR encoder and a strict, size-limited decoder.

Encoding is RFC 8949 section 4.2.1 core deterministic encoding (cbor2 ``canonical=True``), so the
bytes that are signed or MACed are reproducible by any implementation. Decoding refuses oversized
input and trailing bytes and turns every decoder failure into `FormatError`.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from trustprov.errors import FormatError


def encode(value: Any) -> bytes:
    return bytes(cbor2.dumps(value, canonical=True))


def decode(data: bytes, *, limit: int, what: str) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"{what}: expected bytes")
    if len(data) > limit:
        raise FormatError(f"{what}: {len(data)} bytes exceeds the limit of {limit}")
    if not data:
        raise FormatError(f"{what}: empty")
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    # hostile input makes the decoder raise many types (ValueError, RecursionError, MemoryError,
    # CBORDecodeError...): each is malformed input to us
    except Exception as e:
        raise FormatError(f"{what}: not valid CBOR") from e
    if fp.tell() != len(data):
        raise FormatError(f"{what}: trailing bytes after the CBOR item")
    _check_types(value, what)
    return value


_INT_MIN, _INT_MAX = -(2**64), 2**64 - 1


def _check_types(value: Any, what: str) -> None:
    """Refuse everything trustprov's formats never use, wherever it is nested: floats (3.0
    equals 3 in Python), bignums beyond CBOR's 64-bit integers, stray break codes, undefined,
    the objects cbor2 builds from semantic tags (dates, sets...), and shared references (tags
    28/29), which can make a structure contain itself: no container may be reached twice."""
    stack = [value]
    seen: set[int] = set()
    pop, extend, leaves = stack.pop, stack.extend, _LEAVES
    while stack:
        v = pop()
        t = type(v)
        if t in leaves:
            continue
        if t is int:
            if not _INT_MIN <= v <= _INT_MAX:
                raise FormatError(f"{what}: integer outside CBOR's 64-bit range")
            continue
        if t is not list and t is not dict and t is not cbor2.CBORTag:
            raise FormatError(f"{what}: CBOR item of a kind trustprov does not use ({t.__name__})")
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
    return f"<{type(key).__name__}>"


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
