"""FIG. 2 (OEM keygen) and FIG. 4 (OEM regeneration): sealing the OEM's assets on its chip.

A sealing session holds K_ENCK, K_ENCD, K_AUTH and the seed in chip RAM. Assets are sealed one
at a time, their chunks fed last-to-first so the chip can build each asset's chain over the chunks'
AEAD tags (`trustprov.crypto.digest`) in constant memory; `finish` MACs the manifest under K_AUTH.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from trustprov.chip.device import Hardware
from trustprov.crypto.aead import Aead, cmac_tag
from trustprov.crypto.digest import CHAIN_END, sealed_tag, tag_link
from trustprov.crypto.keys import (
    MATERIAL_LEN,
    private_key_bytes,
    private_key_from_material,
    public_key_pem,
)
from trustprov.crypto.schedule import OemKeys, asset_material, derive_keys, g_master_key
from trustprov.errors import ChipRefused, FormatError
from trustprov.formats import cose
from trustprov.formats.budget import (
    CHIP_RAM,
    ENTRY_RAM,
    SEAL_OVERHEAD,
    SESSION_RAM,
    provisioning_ram,
)
from trustprov.formats.bundle import (
    BUNDLE_ID_LEN,
    DEVICE_KEY_TYPES,
    AssetEntry,
    Authorization,
    DeviceKeySpec,
    Manifest,
    SignedManifest,
    chunk_aad,
    chunk_count,
    chunk_nonce,
)


@dataclass(frozen=True)
class BundleParams:
    epoch: int
    min_security_version: int
    aead: Aead
    chunk_size: int
    authorized: Authorization | None = None


def oem_keys(hw: Hardware, oem_share: bytes) -> OemKeys:
    """G then KDF: K_MK from OEM_SHARE and the immutable shares, then the working keys."""
    mem = hw.immutable()
    k_mk = g_master_key(oem_share, mem.hw_share, mem.rom_share)
    return derive_keys(k_mk, mem.family_id)


@dataclass
class _OpenAsset:
    entry: AssetEntry
    next_index: int
    link: bytes = field(repr=False)
    aad: bytes = b""  # the same for every chunk of the asset


class SealingSession:
    def __init__(self, hw: Hardware, keys: OemKeys, seed: bytes, params: BundleParams) -> None:
        self._hw = hw
        self._keys = keys
        self._seed = seed
        self._params = params
        # keyed once per session, as the CM's chips do: not once per chunk
        self._ciphers = (params.aead.cipher(keys.enck), params.aead.cipher(keys.encd))
        self._bundle_id = hw.trng.random(BUNDLE_ID_LEN)
        self._entries: list[AssetEntry] = []
        self._device_keys: list[DeviceKeySpec] = []
        self._open: _OpenAsset | None = None
        hw.ram.reserve(SESSION_RAM)

    def __repr__(self) -> str:
        return f"SealingSession(assets={len(self._entries)})"

    def close(self) -> None:
        self._hw.ram.release(SESSION_RAM + ENTRY_RAM * len(self._entries))

    def _index_for(self, name: str) -> int:
        if self._open is not None:
            raise ChipRefused("finish the open asset first", code="bad-sequence")
        if any(e.name == name for e in self._entries) or any(
            d.name == name for d in self._device_keys
        ):
            raise ChipRefused(f"asset {name!r} already sealed", code="bad-request")
        return len(self._entries)

    def begin_asset(
        self,
        *,
        name: str,
        kind: str,
        length: int,
        key_type: str | None,
        slot: int | None,
        region: str | None,
        deflate: int | None = None,
    ) -> None:
        self._index_for(name)
        p = self._params
        prefix = self._hw.trng.random(p.aead.nonce_len - 5)
        entry = AssetEntry(
            name=name,
            kind=kind,
            length=length,
            chunks=chunk_count(length, p.chunk_size),
            nonce=prefix,
            digest=CHAIN_END,
            key_type=key_type,
            slot=slot,
            region=region,
            deflate=deflate,
        )
        try:
            entry.validate(p.chunk_size)
        except FormatError as e:
            raise ChipRefused(e.message, code="bad-request") from e
        if entry.is_key and entry.chunks != 1:
            raise ChipRefused("a key asset is one chunk", code="bad-request")
        aad = chunk_aad(self._bundle_id, len(self._entries))
        self._open = _OpenAsset(entry, entry.chunks - 1, CHAIN_END, aad)

    def declare_device_key(self, name: str, key_type: str, slot: int) -> None:
        """A key each chip makes for itself at install: nothing is sealed, the manifest names
        it (its slot and type) under the CMAC, so the CM can neither add nor drop one."""
        self._index_for(name)
        if key_type not in DEVICE_KEY_TYPES:
            raise ChipRefused(f"a device key cannot be of type {key_type!r}", code="bad-request")
        self._device_keys.append(DeviceKeySpec(name, key_type, slot))

    def seal_chunk(self, index: int, plaintext: bytes) -> bytes:
        """Seal chunk ``index`` of the open asset; chunks come last to first."""
        a = self._open
        if a is None or index != a.next_index:
            raise ChipRefused("chunks must come in order, last to first", code="bad-sequence")
        e, p = a.entry, self._params
        # a deflated chunk comes compressed by the OEM's host: only its length bound is checked
        # here, the chip that installs it inflates it (docs/protocol.md 6.5)
        least, most = e.sealed_plain_range(p.chunk_size, index)
        if not least <= len(plaintext) <= most:
            raise ChipRefused(
                f"chunk {index} of {e.name!r} has the wrong length", code="bad-request"
            )
        with self._hw.ram.hold(2 * len(plaintext) + SEAL_OVERHEAD):
            cipher = self._ciphers[0] if e.is_key else self._ciphers[1]
            nonce = chunk_nonce(e.nonce, index, index == e.chunks - 1)
            ciphertext = p.aead.seal(cipher, nonce, plaintext, a.aad)
        a.link = tag_link(sealed_tag(ciphertext), a.link)
        a.next_index -= 1
        if index == 0:
            self._hw.ram.reserve(ENTRY_RAM)
            self._entries.append(
                dataclasses.replace(e, digest=a.link)  # the finished chain head
            )
            self._open = None
        return ciphertext

    def generate(self, name: str, key_type: str, slot: int) -> tuple[bytes, bytes | None]:
        """Make a key from the seed (H), seal it into the bundle; return it sealed and its public
        key (None for a symmetric key). The same seed gives the same key, bit for bit (FIG. 4)."""
        if key_type not in MATERIAL_LEN:
            raise ChipRefused(f"cannot generate a key of type {key_type!r}", code="bad-request")
        self._index_for(name)
        material = asset_material(self._seed, key_type, name, MATERIAL_LEN[key_type])
        if key_type == "aes-256":
            value, public = material, None
        else:
            private = private_key_from_material(key_type, material)
            value, public = private_key_bytes(private), public_key_pem(private)
        self.begin_asset(
            name=name, kind="key", length=len(value), key_type=key_type, slot=slot, region=None
        )
        return self.seal_chunk(0, value), public

    def finish(self) -> bytes:
        """The manifest as COSE_Mac0, CMAC under K_AUTH."""
        if self._open is not None or not self._entries:
            raise ChipRefused("no complete asset to seal", code="bad-sequence")
        p = self._params
        try:
            manifest = Manifest(
                family_id=self._hw.family_id,
                bundle_id=self._bundle_id,
                epoch=p.epoch,
                min_security_version=p.min_security_version,
                aead=p.aead,
                chunk_size=p.chunk_size,
                assets=tuple(self._entries),
                authorized=p.authorized,
                device_keys=tuple(self._device_keys),
            )
        except FormatError as e:
            raise ChipRefused(e.message, code="bad-request") from e
        header = SignedManifest.protected_header(self._hw.family_id)
        protected = cose.encode_protected(header)
        payload = manifest.to_payload()
        tag = cmac_tag(self._keys.auth, cose.mac_structure(protected, payload))
        signed = cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, payload, tag).to_bytes()
        # a bundle that no chip of the family has the RAM to install is refused here, by the
        # numbers those chips reserve, rather than by every chip at the CM
        need = provisioning_ram(len(signed), p.chunk_size, manifest.deflated)
        if need > CHIP_RAM:
            raise ChipRefused(
                f"no chip of the family could install this bundle: it needs "
                f"{need} bytes of RAM, above {CHIP_RAM}",
                code="ram-budget",
            )
        return signed
