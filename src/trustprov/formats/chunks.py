"""Chunks of a bundle (docs/protocol.md 6.2): how many an asset has, their nonces and AAD.

Chunk i (0-based) of asset a is AEAD(K, nonce = prefix || [i]_32 || [last]_8, plaintext chunk,
aad = CBOR ["tp-chunk", bundle-id, a]): the counter orders chunks, the last flag stops
truncation, the AAD binds a chunk to its bundle and asset (STREAM).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from trustprov.formats import cbor

if TYPE_CHECKING:
    from trustprov.formats.manifest import AssetEntry


def chunk_count(length: int, chunk_size: int) -> int:
    return max(1, -(-length // chunk_size))


def chunk_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


@functools.lru_cache(maxsize=256)
def chunk_aad(bundle_id: bytes, asset_index: int) -> bytes:
    # the same for every chip of a lot: encoded once per asset of a bundle, not per chip
    return cbor.encode(["tp-chunk", bundle_id, asset_index])


def chunk_plain_len(entry: AssetEntry, chunk_size: int, index: int) -> int:
    """Plaintext bytes of chunk ``index`` of ``entry``: the chunk size but for the last."""
    if index < entry.chunks - 1:
        return chunk_size
    return entry.length - chunk_size * (entry.chunks - 1)
