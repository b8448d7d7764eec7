"""Which firmware and config assets of an asset list are deflated, and their chunks' lengths.

An asset's ``compress`` is "deflate", "none" or "auto" (the default for firmware and config):
"auto" deflates with W = 15 when the chunks, each compressed on its own as the chip will inflate
them, are together at least 5 % smaller than the plaintext (docs/protocol.md 6.2, 9).

Invariants: keys and certificates are never deflated (the list's parser refuses `compress` on
them); a deflated spec carries each compressed chunk's length, which sealing must reproduce
(`deflated_chunk`), so the bundle's layout is known before the chip seals a byte; a chunk is
compressed from the same bytes the chip will install, one chunk at a time.
"""

from __future__ import annotations

import dataclasses

from trustprov.errors import FormatError, InputError
from trustprov.formats.bundle.chunks import chunk_count, chunk_plain_len
from trustprov.formats.deflate import DEFAULT_WBITS, DEFLATE_SLACK, MIN_SAVING, deflate
from trustprov.roles.asset_model import AssetList, AssetSpec

COMPRESS_CHOICES = ("deflate", "none")


def decide(assets: AssetList) -> AssetList:
    """``assets`` with every firmware and config asset's compression decided and, for each
    deflated one, the compressed length of each of its chunks at the list's chunk size."""
    return dataclasses.replace(
        assets, assets=tuple(_decide(a, assets.chunk_size) for a in assets.assets)
    )


def _decide(spec: AssetSpec, chunk_size: int) -> AssetSpec:
    if spec.compress == "none" or spec.kind not in ("firmware", "config"):
        return dataclasses.replace(spec, compress="none", deflate=None, deflated_lengths=())
    wbits = spec.deflate or DEFAULT_WBITS
    lengths = _lengths(spec, chunk_size, wbits)
    over = [
        i
        for i, n in enumerate(lengths)
        if n > chunk_plain_len(spec.length, chunk_size, i) + DEFLATE_SLACK
    ]
    if spec.compress == "auto" and (over or sum(lengths) > spec.length * (1 - MIN_SAVING)):
        return dataclasses.replace(spec, compress="none", deflate=None, deflated_lengths=())
    if over:  # a chip refuses a stream more than 16 bytes longer than its chunk
        raise FormatError(
            f"asset {spec.name!r}: chunk {over[0]} deflates to more than its length + "
            f'{DEFLATE_SLACK} bytes: use compress = "none" or smaller chunks'
        )
    return dataclasses.replace(spec, compress="deflate", deflate=wbits, deflated_lengths=lengths)


def _lengths(spec: AssetSpec, chunk_size: int, wbits: int) -> tuple[int, ...]:
    length = spec.length
    with spec.reader() as read:
        return tuple(
            len(deflate(read(i * chunk_size, chunk_plain_len(length, chunk_size, i)), wbits))
            for i in range(chunk_count(length, chunk_size))
        )


def deflated_chunk(spec: AssetSpec, plaintext: bytes, index: int) -> bytes:
    """Chunk ``index`` of a deflated ``spec`` compressed, at the length its plan gave it."""
    assert spec.deflate is not None  # noqa: S101 - only deflated specs come here
    stream = deflate(plaintext, spec.deflate)
    if len(stream) != spec.deflated_lengths[index]:
        raise InputError(f"asset {spec.name!r}: its file changed while being sealed")
    return stream
