"""The bundle an asset list will make, planned before any chip is touched: the manifest's exact
length, each chunk's length, the bundle's size, and the chunk size that fits the family's RAM.

Invariants: the plan encodes the same structures the sealing chip will, with values of the same
lengths (placeholders for the nonces, digests and ids), so its sizes are exact; a list whose
bundle a chip or `cm provision` would refuse is refused here (`check_fits`) with the chip's own
numbers (`trustprov.formats.budget`). A deflated asset's chunk lengths are those its spec
planned (`trustprov.roles.asset_compress`); the RAM of the inflater is counted while any asset
may be deflated.
"""

from __future__ import annotations

import dataclasses

from trustprov.crypto.aead import TAG_LEN, Aead
from trustprov.crypto.digest import CHAIN_END
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError, InputError
from trustprov.formats import budget, cbor, cose
from trustprov.formats.bundle import (
    BUNDLE_ID_LEN,
    BUNDLE_MAGIC,
    FORMAT,
    KEY_TYPES,
    MIN_CHUNK,
    AssetEntry,
    Authorization,
    DeviceKeySpec,
    Manifest,
    SignedManifest,
    chunk_count,
)
from trustprov.formats.bundle.bundle_file import chunk_lengths
from trustprov.formats.deflate import DEFAULT_WBITS
from trustprov.formats.limits import LIMITS
from trustprov.roles.asset_model import CHUNK_STEP, MAX_CHUNK, AssetList, AssetSpec


def _planned_entry(spec: AssetSpec, aead: Aead, chunk_size: int) -> AssetEntry:
    """The manifest entry the chip will make for ``spec``, with placeholder nonce and digest
    of their fixed lengths: its encoding is as long as the real one."""
    if spec.kind == "generate":
        assert spec.key_type is not None  # noqa: S101 - the parser checked it
        length, kind = KEY_TYPES[spec.key_type][0], "key"
    else:
        length, kind = spec.length, spec.kind
    return AssetEntry(
        name=spec.name,
        kind=kind,
        length=length,
        chunks=chunk_count(length, chunk_size),
        nonce=bytes(aead.nonce_len - 5),
        digest=CHAIN_END,
        key_type=spec.key_type,
        slot=spec.slot,
        region=spec.region,
        # an asset not yet decided ("auto") is planned deflated, at its longest
        deflate=DEFAULT_WBITS if spec.may_deflate and spec.deflate is None else spec.deflate,
    )


def _sealed_lengths(spec: AssetSpec, entry: AssetEntry, chunk_size: int) -> list[int]:
    """The ciphertext length of each chunk of ``spec`` (``entry`` in the manifest)."""
    if entry.deflate is None:
        return chunk_lengths(entry, chunk_size)
    if spec.deflate is None:  # not decided yet: the most each chunk may take
        return [entry.sealed_plain_range(chunk_size, i)[1] + TAG_LEN for i in range(entry.chunks)]
    return [n + TAG_LEN for n in spec.deflated_lengths]


def _may_deflate(assets: AssetList) -> bool:
    return any(a.may_deflate for a in assets.assets)


def _head(n: int) -> int:
    """Bytes of a CBOR item head carrying the number ``n`` (RFC 8949 3.1)."""
    return 1 if n < 24 else 2 if n < 2**8 else 3 if n < 2**16 else 5 if n < 2**32 else 9


def planned_sizes(
    assets: AssetList, min_security_version: int, authorized: Authorization | None = None
) -> tuple[int, int]:
    """(manifest bytes, bundle bytes) of the bundle a chip seals from ``assets`` (for the
    chips of ``authorized``): exact, as the chip encodes the same structure with values of the
    same lengths."""
    manifest_len, lengths = planned_layout(assets, min_security_version, authorized)
    size = _head(4) + len(cbor.encode(BUNDLE_MAGIC)) + len(cbor.encode(FORMAT))
    size += _head(manifest_len) + manifest_len + _head(len(lengths))
    for chunks in lengths:
        size += _head(len(chunks))
        size += sum(_head(n) + n for n in chunks)
    return manifest_len, size


def planned_layout(
    assets: AssetList, min_security_version: int, authorized: Authorization | None = None
) -> tuple[int, list[list[int]]]:
    """The manifest's exact length and each sealed asset's chunk lengths: where every byte of
    the bundle file goes before the chip seals any (`trustprov.formats.bundle.bundle_file`)."""
    manifest_len, entries = _planned(assets, min_security_version, authorized)
    specs = [a for a in assets.assets if a.kind != "device-key"]
    return manifest_len, [
        _sealed_lengths(a, e, assets.chunk_size) for a, e in zip(specs, entries, strict=True)
    ]


def _planned(
    assets: AssetList, min_security_version: int, authorized: Authorization | None
) -> tuple[int, tuple[AssetEntry, ...]]:
    entries = tuple(
        _planned_entry(a, assets.aead, assets.chunk_size)
        for a in assets.assets
        if a.kind != "device-key"
    )
    device_keys = tuple(
        DeviceKeySpec(a.name, a.key_type or "", a.slot or 0)
        for a in assets.assets
        if a.kind == "device-key"
    )
    manifest = Manifest(
        family_id=bytes(FAMILY_ID_LEN),
        bundle_id=bytes(BUNDLE_ID_LEN),
        epoch=assets.epoch,
        min_security_version=min_security_version,
        aead=assets.aead,
        chunk_size=assets.chunk_size,
        assets=entries,
        authorized=authorized,
        device_keys=device_keys,
    )
    header = SignedManifest.protected_header(manifest.family_id)
    message = cose.CoseMessage(
        cose.TAG_MAC0,
        cose.encode_protected(header),
        header,
        {},
        manifest.to_payload(),
        bytes(TAG_LEN),
    )
    return len(message.to_bytes()), entries


def check_fits(assets: AssetList, min_security_version: int) -> None:
    """Refuse, before a chip is touched, an asset list whose bundle a chip of the family or
    `cm provision` would refuse (`trustprov.formats.budget`)."""
    try:
        manifest_len, bundle_len = planned_sizes(assets, min_security_version)
        budget.check_bundle(
            manifest_len=manifest_len,
            chunk_size=assets.chunk_size,
            assets=len(assets.assets),
            bundle_len=bundle_len,
            deflate=_may_deflate(assets),
        )
    except FormatError as e:
        raise InputError(f"asset list: {e.message}") from e


def fit_chunk_size(assets: AssetList) -> AssetList:
    """``assets`` with the largest chunk size, a multiple of `CHUNK_STEP`, that every chip of
    the family has the RAM to seal and install (`trustprov.formats.budget`): fewer, larger
    chunks are fewer link exchanges at the OEM and at the CM.

    The manifest is planned with chunks of `CHUNK_STEP` (the most chunks, so the longest
    counts), the highest min-security-version and an authorized set, so the size chosen fits
    whatever keygen or regen adds; a list that fits no size keeps `CHUNK_STEP` * 16 and is
    refused by `check_fits` with the reason."""
    at_step = dataclasses.replace(assets, chunk_size=CHUNK_STEP)
    manifest_len, _ = _planned(at_step, 2**32 - 1, Authorization(bytes(32), LIMITS.authorized_uids))
    room = budget.CHIP_RAM - max(
        budget.provisioning_ram(manifest_len, 0, _may_deflate(assets)),
        budget.sealing_ram(len(assets.assets), 0),
    )
    steps = min(room // 2, MAX_CHUNK) // CHUNK_STEP
    chunk_size = steps * CHUNK_STEP if steps * CHUNK_STEP >= MIN_CHUNK else 16 * CHUNK_STEP
    return dataclasses.replace(assets, chunk_size=chunk_size)
