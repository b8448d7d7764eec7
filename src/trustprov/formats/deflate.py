"""Raw DEFLATE (RFC 1951) of a deflated asset's chunks (docs/protocol.md 6.2, 6.6).

Each chunk of a deflated firmware or config asset is compressed on its own (no shared
dictionary, no zlib or gzip wrapper), with a window of 2^W bytes, W = 9..15 named in the
manifest under its CMAC.

Invariants of `inflate` (the chip's side; every refusal a `FormatError`):
- it never produces more than ``length`` + 1 bytes, whatever the stream (a bomb stops there);
- it returns exactly ``length`` bytes or refuses: a stream that ends early, never reaches its
  final block, is followed by any byte, uses a distance beyond 2^W or is not valid DEFLATE;
- the sealed stream it reads is at most ``length`` + `DEFLATE_SLACK` bytes.
"""

from __future__ import annotations

import zlib

from trustprov.errors import FormatError

#: a deflated chunk's stream is at most this much longer than the chunk: stored blocks cost 5
#: bytes each, and zlib stores incompressible input in blocks of about 16 KiB (protocol.md 6.2)
DEFLATE_SLACK = 16
#: the largest chunk size of a manifest with a deflated asset: its sealed chunks stay within
#: the 65,552 bytes of a sealed chunk that every reader bounds (protocol.md 6.1, 8.1)
MAX_DEFLATE_CHUNK = 65536 - DEFLATE_SLACK
MIN_WBITS = 9
MAX_WBITS = 15
DEFAULT_WBITS = 15
#: the inflater's state on a chip: its window of up to 2^15 bytes is the installed chunk's own
#: output buffer, the rest (tables, bit buffer) fits 8 KiB (docs/protocol.md 8.4)
INFLATE_STATE = 8192
#: what a provisioning session reserves beside its chunk buffers when any asset is deflated
DEFLATE_RAM = INFLATE_STATE + 2 * DEFLATE_SLACK
#: the OEM's default: deflate an asset that gets at least this much smaller, else leave it
MIN_SAVING = 0.05

__all__ = [
    "DEFAULT_WBITS",
    "DEFLATE_RAM",
    "DEFLATE_SLACK",
    "INFLATE_STATE",
    "MAX_DEFLATE_CHUNK",
    "MAX_WBITS",
    "MIN_SAVING",
    "MIN_WBITS",
    "deflate",
    "inflate",
]


def deflate(data: bytes, wbits: int) -> bytes:
    """``data`` as one raw DEFLATE stream with a window of 2^``wbits``, level 9."""
    c = zlib.compressobj(9, zlib.DEFLATED, -wbits)
    return c.compress(data) + c.flush()


def inflate(stream: bytes, wbits: int, length: int) -> bytes:
    """Exactly ``length`` bytes inflated from the raw DEFLATE ``stream``; refused otherwise."""
    if not 1 <= len(stream) <= length + DEFLATE_SLACK:
        raise FormatError("deflated chunk: sealed stream of a length out of bounds")
    d = zlib.decompressobj(-wbits)
    try:
        # one byte more than the chunk's length at most: enough to see a bomb, never more.
        # zlib checks a distance against what its window holds plus what the current call has
        # written: the first call (from an empty window) is exact up to 2^W bytes of output;
        # beyond that, one byte per call keeps every distance within the 2^W window.
        out = bytearray(d.decompress(stream, min(length + 1, 1 << wbits)))
        while len(out) <= length and not d.eof:
            piece = d.decompress(d.unconsumed_tail, 1)
            if not piece:
                break
            out += piece
    except zlib.error as e:  # invalid stream, or a distance beyond the 2^W window
        raise FormatError("deflated chunk: not a valid raw DEFLATE stream") from e
    if len(out) > length:
        raise FormatError("deflated chunk: inflates past its length")
    if not d.eof:
        raise FormatError("deflated chunk: truncated (no final block)")
    if d.unused_data or d.unconsumed_tail:
        raise FormatError("deflated chunk: bytes after the final block")
    if len(out) != length:
        raise FormatError("deflated chunk: inflates short of its length")
    return bytes(out)
