"""Bundles the suite seals itself, as the vector OEM's chip would (docs/protocol.md 6.1-6.3).

The test family's secrets are public, so the suite holds the vector OEM's K_ENCK, K_ENCD and
K_AUTH (and the second published OEM's) and can make any bundle a chip of the family accepts as
genuine: a bundle whose only fault is the one a case wants the chip to find (a key that is not a
key, a set of authorized chips without this one, a minimum software version above the chip's),
an AES-CCM bundle, an update that drops what the first bundle installed, a deflated firmware
whose chunk streams are given by the case (a bomb, a truncated stream, trailing bytes).

Invariants: every byte is made by `trustprov.formats` and `trustprov.crypto` exactly as a
sealing chip makes it (the same nonces, AAD, tag chain and canonical manifest), so a chip that
refuses one of these bundles refuses it for the fault the case put in, never for its form. The
random values (bundle id, nonce prefixes) come from ``os.urandom``: nothing here is a vector.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from trustprov.conformance.family import TestFamily
from trustprov.crypto.aead import A256GCM, Aead
from trustprov.crypto.digest import chain_head
from trustprov.formats.bundle import (
    BUNDLE_ID_LEN,
    AssetEntry,
    Authorization,
    Bundle,
    DeviceKeySpec,
    Manifest,
    SignedManifest,
    chunk_aad,
    chunk_count,
    chunk_nonce,
)
from trustprov.formats.deflate import deflate


@dataclass(frozen=True)
class Plain:
    """One asset in clear: what the OEM puts in (a key's value, or a region's content)."""

    name: str
    kind: str
    value: bytes
    key_type: str | None = None
    slot: int | None = None
    region: str | None = None
    #: W of a deflated firmware or config asset (6.1); its chunks are deflated (6.2)
    deflate: int | None = None
    #: the AEAD plaintext of each chunk of a deflated asset, instead of its deflated chunk:
    #: how a case puts in a stream that breaks one bound of 6.6 step 7
    streams: tuple[bytes, ...] | None = field(default=None, repr=False)

    def sealed_plaintext(self, index: int, chunk_size: int) -> bytes:
        """What chunk ``index`` seals: the chunk itself, or its stream if deflated."""
        chunk = self.value[index * chunk_size : (index + 1) * chunk_size]
        if self.streams is not None:
            return self.streams[index]
        return chunk if self.deflate is None else deflate(chunk, self.deflate)


def seal_bundle(
    family: TestFamily,
    assets: list[Plain],
    *,
    epoch: int,
    min_svn: int = 0,
    aead: Aead = A256GCM,
    chunk_size: int = 256,
    authorized: Authorization | None = None,
    device_keys: tuple[DeviceKeySpec, ...] = (),
    oem_share: bytes | None = None,
    checked: bool = True,
) -> Bundle:
    """A bundle of ``assets`` sealed under the keys of ``oem_share``'s domain (default: the
    vector OEM's), its manifest MACed under that domain's K_AUTH. With ``checked`` false, its
    chunks are not checked against the manifest's shape, as the host's tools check them: how
    the suite sends a chunk of a length only the chip must refuse."""
    keys = family.oem_keys(oem_share or family.oem_share)
    bundle_id = os.urandom(BUNDLE_ID_LEN)
    entries, chunks = [], []
    for index, plain in enumerate(assets):
        count = chunk_count(len(plain.value), chunk_size)
        prefix = os.urandom(aead.nonce_len - 5)
        key = keys.enck if plain.kind == "key" else keys.encd
        sealed = tuple(
            aead.seal(
                key,
                chunk_nonce(prefix, i, i == count - 1),
                plain.sealed_plaintext(i, chunk_size),
                chunk_aad(bundle_id, index),
            )
            for i in range(count)
        )
        entries.append(
            AssetEntry(
                name=plain.name,
                kind=plain.kind,
                length=len(plain.value),
                chunks=count,
                nonce=prefix,
                digest=chain_head(sealed),
                key_type=plain.key_type,
                slot=plain.slot,
                region=plain.region,
                deflate=plain.deflate,
            )
        )
        chunks.append(sealed)
    manifest = Manifest(
        family_id=family.family_id,
        bundle_id=bundle_id,
        epoch=epoch,
        min_security_version=min_svn,
        aead=aead,
        chunk_size=chunk_size,
        assets=tuple(entries),
        authorized=authorized,
        device_keys=device_keys,
    )
    signed = SignedManifest.from_bytes(family.manifest_mac0(manifest.to_payload(), oem_share))
    if not checked:
        bundle = object.__new__(Bundle)
        object.__setattr__(bundle, "signed", signed)
        object.__setattr__(bundle, "chunks", tuple(chunks))
        return bundle
    return Bundle(signed, tuple(chunks))


def remac(
    family: TestFamily, bundle: Bundle, oem_share: bytes | None = None, **change: object
) -> Bundle:
    """The vector bundle (or any) with manifest fields changed (``epoch=9``, ``authorized=...``)
    and MACed again under ``oem_share``'s K_AUTH: its chunks still open, since neither the
    bundle id nor an asset's place changes (6.2)."""
    manifest = dataclasses.replace(bundle.manifest, **change)  # type: ignore[arg-type]
    signed = SignedManifest.from_bytes(family.manifest_mac0(manifest.to_payload(), oem_share))
    return Bundle(signed, bundle.chunks)
