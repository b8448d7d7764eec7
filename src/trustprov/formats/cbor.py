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
    return value


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
        raise FormatError(f"{what}: missing {sorted(map(str, missing))}")
    unknown = m.keys() - required - optional
    if unknown:
        raise FormatError(f"{what}: unknown fields {sorted(map(str, unknown))}")
    return m


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
    v: str = expect(value, str, what)
    if not v or len(v) > max_len or not v.isprintable():
        raise FormatError(f"{what}: must be 1..{max_len} printable characters")
    return v
