"""Chunks of a bundle (docs/protocol.md 6.2): how many an asset has, their nonces, AAD and lengths.

Chunk i (0-based) of asset a is AEAD(K, nonce = prefix || [i]_32 || [last]_8, plaintext chunk,
aad = CBOR ["tp-chunk", bundle-id, a]): the counter orders chunks, the last flag stops
truncation, the AAD binds a chunk to its bundle and asset (STREAM).

Invariants: every length here is a function of an asset's plaintext length and the chunk size,
both under the manifest's CMAC, never of the bytes of a chunk. This module imports no other
part of the bundle's format (the manifest imports it, not the other way round).
"""

from __future__ import annotations

import functools

from trustprov.formats import cbor
from trustprov.formats.deflate import DEFLATE_SLACK


def chunk_count(length: int, chunk_size: int) -> int:
    return max(1, -(-length // chunk_size))


def chunk_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


@functools.lru_cache(maxsize=256)
def chunk_aad(bundle_id: bytes, asset_index: int) -> bytes:
    # the same for every chip of a lot: encoded once per asset of a bundle, not per chip
    return cbor.encode(["tp-chunk", bundle_id, asset_index])


def chunk_plain_len(length: int, chunk_size: int, index: int) -> int:
    """Plaintext bytes of chunk ``index`` of an asset of ``length`` bytes: the chunk size but
    for the last."""
    chunks = chunk_count(length, chunk_size)
    if index < chunks - 1:
        return chunk_size
    return length - chunk_size * (chunks - 1)


def sealed_plain_range(plain_len: int, deflated: bool) -> tuple[int, int]:
    """(least, most) bytes of the AEAD plaintext of a chunk of ``plain_len`` bytes: exactly
    ``plain_len``, or for a deflated asset 1 .. ``plain_len`` + `DEFLATE_SLACK`."""
    if deflated:
        return 1, plain_len + DEFLATE_SLACK
    return plain_len, plain_len
