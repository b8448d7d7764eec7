"""The asset bundle: the manifest (`manifest`, its entries in `entries`), its chunks (`chunks`)
and, in memory, the bundle file holding both; `bundle_file` reads and writes a large one a chunk
at a time.

Bundle file: canonical CBOR array ["trustprov-bundle", 1, manifest COSE_Mac0 bytes, [[+ bstr]]].
`Bundle` holds one in memory, its chunks checked against the manifest's shape (count and length
of each, or its bounds for a deflated asset); a large one is read a chunk at a time instead
(`bundle_file`). The manifest's and the chunks' names are importable from here as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustprov.crypto.aead import TAG_LEN
from trustprov.crypto.digest import chain_links
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.bundle.chunks import chunk_aad, chunk_count, chunk_nonce, chunk_plain_len
from trustprov.formats.bundle.entries import (
    ASSET_KINDS,
    DEVICE_KEY_TYPES,
    KEY_TYPES,
    MAX_ASSET_LEN,
    MAX_KEY_LEN,
    MAX_SLOT,
    AssetEntry,
    Authorization,
    DeviceKeySpec,
)
from trustprov.formats.bundle.manifest import (
    BUNDLE_ID_LEN,
    MANIFEST_CONTENT_TYPE,
    MANIFEST_VERSION,
    MIN_CHUNK,
    Manifest,
    SignedManifest,
)
from trustprov.formats.limits import LIMITS, Shape

__all__ = [
    "ASSET_KINDS",
    "BUNDLE_ID_LEN",
    "BUNDLE_MAGIC",
    "DEVICE_KEY_TYPES",
    "FORMAT",
    "KEY_TYPES",
    "MANIFEST_CONTENT_TYPE",
    "MANIFEST_VERSION",
    "MAX_ASSET_LEN",
    "MAX_KEY_LEN",
    "MAX_SLOT",
    "MIN_CHUNK",
    "AssetEntry",
    "Authorization",
    "Bundle",
    "DeviceKeySpec",
    "Manifest",
    "SignedManifest",
    "chunk_aad",
    "chunk_count",
    "chunk_nonce",
    "chunk_plain_len",
]

BUNDLE_MAGIC = "trustprov-bundle"
FORMAT = 1  # of the bundle file's wrapper


@dataclass(frozen=True)
class Bundle:
    """A manifest and, per asset, its ciphertext chunks, checked against each other's shape."""

    signed: SignedManifest
    chunks: tuple[tuple[bytes, ...], ...] = field(repr=False)

    def __post_init__(self) -> None:
        manifest = self.signed.manifest
        if len(self.chunks) != len(manifest.assets):
            raise FormatError("bundle: asset count does not match the manifest")
        for entry, chunks in zip(manifest.assets, self.chunks, strict=True):
            if len(chunks) != entry.chunks:
                raise FormatError(f"bundle: asset {entry.name!r} has the wrong number of chunks")
            for i, c in enumerate(chunks):
                least, most = entry.sealed_plain_range(manifest.chunk_size, i)
                if not least + TAG_LEN <= len(c) <= most + TAG_LEN:
                    raise FormatError(
                        f"bundle: asset {entry.name!r} chunk {i} has the wrong length"
                    )

    @property
    def manifest(self) -> Manifest:
        return self.signed.manifest

    def chain_links(self, asset_index: int) -> list[bytes]:
        """h_2..h_{n+1} for the chunks of one asset: what a chip needs beside each chunk.
        From the chunks' tags alone (16 bytes each), not their ciphertext."""
        return chain_links(self.chunks[asset_index])[1:]

    @classmethod
    def from_bytes(cls, data: bytes) -> Bundle:
        what = "bundle"
        # a genuine bundle is chunks of >= MIN_CHUNK bytes (but the last of each asset) and a
        # few header items: more items than that is a flood of small ones, refused unbuilt
        most = LIMITS.bundle_shape
        shape = Shape(min(most.items, len(data) // MIN_CHUNK + 1024), most.depth)
        v = cbor.expect(cbor.decode(data, limit=LIMITS.bundle, what=what, shape=shape), list, what)
        if len(v) != 4 or v[0] != BUNDLE_MAGIC or v[1] != FORMAT or isinstance(v[1], bool):
            raise FormatError(f"{what}: not a trustprov bundle (format {FORMAT})")
        signed = SignedManifest.from_bytes(cbor.expect_bstr(v[2], f"{what}: manifest"))
        assets = cbor.expect(v[3], list, f"{what}: assets")
        if len(assets) > LIMITS.assets_per_bundle:
            raise FormatError(f"{what}: too many assets")
        chunks = tuple(
            tuple(
                cbor.expect_bstr(c, f"{what}: chunk", max_len=LIMITS.chunk + TAG_LEN)
                for c in cbor.expect(a, list, f"{what}: asset chunks")
            )
            for a in assets
        )
        return cls(signed, chunks)

    def to_bytes(self) -> bytes:
        return cbor.encode(
            [BUNDLE_MAGIC, FORMAT, self.signed.to_bytes(), [list(c) for c in self.chunks]]
        )
