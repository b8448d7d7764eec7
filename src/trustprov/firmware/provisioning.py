"""FIG. 3: CM provisioning on every chip.

Steps, numbered as in the figure and in docs/protocol.md:
 1. (boot ROM) the software is verified before this code runs at all.
 2. Unseal ENC(OEM_SHARE) with K_OEM_SHARE: its kind must be "oem-share", its family the chip's.
 3. K_MK = G(OEM_SHARE, HW_SHARE, ROM_SHARE).
 4. K_ENCK, K_ENCD, K_AUTH = KDF(K_MK, ...).
 5. Verify the manifest's CMAC under K_AUTH, before anything of it is used or decrypted.
 6. Check the manifest against the chip: family, minimum security version, lifecycle, one OEM
    domain per chip, epoch above the installed one, RAM budget.
6a. If the manifest names an authorized set, the chip's own UID must be in it: the inclusion
    proof the CM sent with cm.begin must lead from the UID to the manifest's root, in a tree of
    the manifest's size (formats.authz). Else ``unauthorized``, before any chunk is decrypted.
 7. Per chunk, in order: check its AEAD tag against the chain whose head the manifest carries,
    then open it with K_ENCK (keys) or K_ENCD (data), which verifies that tag over the ciphertext
    before any plaintext comes out; a deflated asset's chunk is inflated into exactly the
    plaintext length the manifest gives it (formats.deflate: no bomb, no truncated stream, no
    trailing byte, no distance beyond the window); into staging.
 8. Verify every asset: complete, right length, a valid key of its type.
 9. Install keys into their slots and data into flash in one atomic commit that replaces the
    whole installed state (an update leaves nothing of the bundle before it).
    Make each per-device key the manifest names from the chip's TRNG, into its slot.
10. Advance the lifecycle to PROVISIONED and the provisioning counter by one (part of the same
    commit); a LOCKED chip installs nothing, and a state beyond the chip's capacity is refused
    before the commit.
11. Sign the receipt (docs/protocol.md 6.8) with the chip's identity key over what was just
    committed: the answer to cm.finish carries it.
Any failure ends the session: keys and staging are dropped and nothing is installed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from trustprov.chip.device import FlashWrite, Hardware
from trustprov.chip.model import KeySlot, Lifecycle
from trustprov.chip.staging import StagedContent
from trustprov.crypto.aead import TAG_LEN, cmac_verify
from trustprov.crypto.digest import CHAIN_END, DIGEST_LEN, sha256, tag_link
from trustprov.crypto.keys import (
    CURVES,
    MATERIAL_LEN,
    check_private_scalar,
    private_key_bytes,
    private_key_from_material,
    public_key_der,
)
from trustprov.crypto.schedule import OemKeys
from trustprov.errors import ArtifactError, ChipRefused, FormatError
from trustprov.firmware.sealing import oem_keys
from trustprov.formats import cose
from trustprov.formats.authz import InclusionProof, verify_inclusion
from trustprov.formats.budget import begin_ram, chunk_ram
from trustprov.formats.bundle import (
    AssetEntry,
    Manifest,
    SignedManifest,
    chunk_aad,
    chunk_nonce,
)
from trustprov.formats.deflate import inflate
from trustprov.formats.installed import content_id
from trustprov.formats.limits import LIMITS
from trustprov.formats.receipt import DeviceKey, ReceiptClaims, make_receipt
from trustprov.formats.sealed import SealedValue


@dataclass
class _Staged:
    index: int = 0  # asset being received
    chunk: int = 0  # next chunk of it
    link: bytes = field(default=b"", repr=False)
    aad: bytes = b""
    key: bytearray = field(default_factory=bytearray, repr=False)  # a key asset: one chunk
    region: StagedContent | None = field(default=None, repr=False)  # flash staging, not RAM


class ProvisioningSession:
    def __init__(
        self,
        hw: Hardware,
        enc_oem_share: bytes,
        manifest_bytes: bytes,
        proof: InclusionProof | None = None,
    ) -> None:
        self._hw = hw
        if hw.lifecycle == Lifecycle.LOCKED:
            raise ChipRefused("chip is locked", code="lifecycle")
        # the numbers the OEM's tools check a bundle against (formats.budget)
        hw.ram.reserve(begin_ram(len(manifest_bytes)))
        self._ram = begin_ram(len(manifest_bytes))
        try:
            self._begin(enc_oem_share, manifest_bytes, proof)
        except BaseException:
            self.close()
            raise

    def _begin(
        self, enc_oem_share: bytes, manifest_bytes: bytes, proof: InclusionProof | None
    ) -> None:
        hw = self._hw
        # 2. ENC(OEM_SHARE): only K_OEM_SHARE opens it; kind and family are authenticated.
        try:
            sealed = _sealed_share(enc_oem_share)
        except ArtifactError as e:
            raise ChipRefused(e.message, code="bad-share") from e
        if sealed.family_id != hw.family_id:
            raise ChipRefused("ENC(OEM_SHARE) is for another chip family", code="wrong-family")
        try:
            oem_share = sealed.open(hw.immutable().k_oem_share)
        except ArtifactError as e:
            raise ChipRefused("ENC(OEM_SHARE) does not open on this chip", code="bad-share") from e
        # 3.-4.
        keys = oem_keys(hw, oem_share)
        manifest = self._verified_manifest(keys, manifest_bytes)
        # 6.
        if manifest.family_id != hw.family_id:
            raise ChipRefused("bundle is for another chip family", code="wrong-family")
        svn = hw.software.security_version
        if svn < manifest.min_security_version:
            raise ChipRefused(
                f"bundle needs software security version {manifest.min_security_version}, "
                f"running {svn}",
                code="software-too-old",
            )
        installed = hw.installed
        if installed is not None:
            if installed.domain_id != keys.domain_id:
                raise ChipRefused("chip holds another OEM domain's assets", code="domain-mismatch")
            if manifest.epoch <= installed.epoch:
                raise ChipRefused(
                    f"bundle epoch {manifest.epoch} is not above the installed {installed.epoch}",
                    code="stale-epoch",
                )
        # 6a. only the chips the OEM authorized (the root is under the CMAC just verified)
        if manifest.authorized is not None:
            if proof is None:
                raise ChipRefused(
                    "the bundle is for authorized chips only: no inclusion proof",
                    code="unauthorized",
                )
            try:
                verify_inclusion(
                    manifest.authorized.root, hw.uid, proof, size=manifest.authorized.count
                )
            except ArtifactError as e:
                raise ChipRefused(
                    f"chip {hw.uid.hex()} is not in the bundle's authorized set",
                    code="unauthorized",
                ) from e
        hw.ram.reserve(chunk_ram(manifest.chunk_size, manifest.deflated))
        self._ram += chunk_ram(manifest.chunk_size, manifest.deflated)
        self._keys = keys
        self._ciphers = (manifest.aead.cipher(keys.enck), manifest.aead.cipher(keys.encd))
        self._manifest = manifest
        self._staged = _Staged(link=manifest.assets[0].digest, aad=chunk_aad(manifest.bundle_id, 0))
        self._slots: dict[int, KeySlot] = {}
        self._flash: list[FlashWrite] = []

    def _verified_manifest(self, keys: OemKeys, manifest_bytes: bytes) -> Manifest:
        # 5. CMAC first: nothing of the payload is trusted before it verifies.
        try:
            message, mac_structure, body_digest = _manifest_message(manifest_bytes)
            cmac_verify(keys.auth, mac_structure, message.auth)
            manifest = SignedManifest.from_message(message).manifest
        except ArtifactError as e:
            if e.code == "bundle-version":  # genuine, of another construction (6.1 "v")
                raise ChipRefused(e.message, code="bundle-version") from e
            raise ChipRefused(f"manifest refused: {e.message}", code="bad-manifest") from e
        self._manifest_digest = body_digest  # what the CMAC covered
        return manifest

    def __repr__(self) -> str:
        return "ProvisioningSession()"

    def close(self) -> None:
        self._hw.ram.release(self._ram)
        self._ram = 0
        # staging dropped: what was not committed is gone (after a commit, it is in the farm)
        staged = getattr(self, "_staged", None)
        for content in [w.data for w in getattr(self, "_flash", ())] + [
            staged.region if staged else None
        ]:
            if isinstance(content, StagedContent):
                content.close()

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    def chunk(self, asset: int, index: int, ciphertext: bytes, next_link: bytes) -> None:
        s, m = self._staged, self._manifest
        if asset != s.index or index != s.chunk or asset >= len(m.assets):
            raise ChipRefused("chunks must come in order, first to last", code="bad-sequence")
        entry = m.assets[asset]
        last = index == entry.chunks - 1
        # 7. bind the chunk's tag to the CMAC-verified manifest, then let the AEAD verify that
        # tag over the ciphertext before it releases anything (docs/protocol.md 6.3)
        if (
            len(ciphertext) < TAG_LEN
            or len(next_link) != DIGEST_LEN
            or tag_link(ciphertext[-TAG_LEN:], next_link) != s.link
            or (last and next_link != CHAIN_END)
        ):
            raise ChipRefused(
                f"chunk {index} of {entry.name!r} does not match the manifest", code="bad-chunk"
            )
        cipher = self._ciphers[0] if entry.is_key else self._ciphers[1]
        nonce = chunk_nonce(entry.nonce, index, last)
        try:
            plaintext = m.aead.open(cipher, nonce, ciphertext, s.aad)
        except ArtifactError as e:
            raise ChipRefused(
                f"chunk {index} of {entry.name!r} fails to decrypt", code="bad-chunk"
            ) from e
        least, most = entry.sealed_plain_range(m.chunk_size, index)
        if not least <= len(plaintext) <= most:
            raise ChipRefused(
                f"chunk {index} of {entry.name!r} has the wrong length", code="bad-chunk"
            )
        if entry.deflate is not None:  # into exactly the length under the CMAC, or refused
            try:
                plaintext = inflate(plaintext, entry.deflate, entry.plain_len(m.chunk_size, index))
            except FormatError as e:
                raise ChipRefused(
                    f"chunk {index} of {entry.name!r}: {e.message}", code="bad-chunk"
                ) from e
        s.link = next_link
        if entry.is_key:
            s.key += plaintext
        else:
            if s.region is None:  # the first chunk: a region's content goes to flash staging
                s.region = self._hw.stage_region(content_id(self._keys.domain_id, entry.digest))
            s.region.write(plaintext)
        s.chunk += 1
        if last:  # 8. the asset is complete: verify it and stage it for installation
            self._stage(entry, bytes(s.key), s.region)
            s.index, s.chunk, s.key, s.region = asset + 1, 0, bytearray(), None
            if s.index < len(m.assets):
                s.link = m.assets[s.index].digest
                s.aad = chunk_aad(m.bundle_id, s.index)

    def _stage(self, entry: AssetEntry, key: bytes, region: StagedContent | None) -> None:
        name = entry.name
        if entry.is_key:
            assert entry.slot is not None  # noqa: S101 - Manifest validated it
            assert entry.key_type is not None  # noqa: S101 - Manifest validated it
            _check_key(entry.key_type, key, name)
            self._slots[entry.slot] = KeySlot(name, entry.key_type, key, entry.digest)
        else:
            assert entry.region is not None  # noqa: S101 - validated by Manifest
            assert region is not None  # noqa: S101 - every asset has a chunk
            self._flash.append(FlashWrite(entry.region, name, region.content_id, region))

    def finish(self) -> dict[str, object]:
        m = self._manifest
        if self._staged.index != len(m.assets):
            raise ChipRefused("bundle incomplete: not every asset was received", code="incomplete")
        # the per-device keys: from this chip's TRNG, into their slots in the same commit; only
        # their public halves leave, in the receipt
        public: list[DeviceKey] = []
        for d in m.device_keys:
            key = private_key_from_material(
                d.key_type, self._hw.trng.random(MATERIAL_LEN[d.key_type])
            )
            self._slots[d.slot] = KeySlot(d.name, d.key_type, private_key_bytes(key), d.digest)
            public.append(DeviceKey(d.slot, d.name, public_key_der(key)))
        self._device_public = tuple(public)
        # 9.-10. one atomic commit
        self._hw.install(
            domain_id=self._keys.domain_id,
            bundle_id=m.bundle_id,
            epoch=m.epoch,
            slots=self._slots,
            flash=self._flash,
        )
        return {
            "bundle-id": m.bundle_id,
            "domain-id": self._keys.domain_id,
            "epoch": m.epoch,
            "assets": len(m.assets),
            "receipt": self._receipt(),
        }

    def _receipt(self) -> bytes:
        # 11. over the committed state, read back from the chip: what it holds, not what was sent
        hw, m = self._hw, self._manifest
        installed, certificate = hw.installed, hw.certificate
        assert installed is not None  # noqa: S101 - just installed
        assert certificate is not None  # noqa: S101 - only a certified chip boots
        claims = ReceiptClaims(
            uid=hw.uid,
            lot=hw.lot,
            bundle_id=m.bundle_id,
            manifest_digest=self._manifest_digest,
            installed_digest=installed.digest(),
            domain_id=installed.domain_id,
            epoch=installed.epoch,
            software_name=hw.software.name,
            software_version=hw.software.version,
            security_version=hw.software.security_version,
            lifecycle=int(hw.lifecycle),
            counter=hw.prov_counter,
            device_keys=self._device_public,
        )
        return make_receipt(claims, certificate, hw.identity_sign)


# Every chip of a lot receives the same ENC(OEM_SHARE) and manifest: their parses (pure
# functions of the bytes, immutable) are kept per process, found again by the bytes. What they
# protect is checked per chip: the share opens under the chip's K_OEM_SHARE, the CMAC verifies
# under the chip's K_AUTH. A refusal raises, and nothing is kept of it.
@functools.lru_cache(maxsize=8)
def _sealed_share(data: bytes) -> SealedValue:
    return SealedValue.from_bytes(data, "oem-share")


@functools.lru_cache(maxsize=8)
def _manifest_message(data: bytes) -> tuple[cose.CoseMessage, bytes, bytes]:
    """The manifest's COSE_Mac0, its MAC_structure and the digest of its payload."""
    message = cose.decode(
        data, cose.TAG_MAC0, limit=LIMITS.manifest, what="manifest", shape=LIMITS.manifest_shape
    )
    return message, message.mac_structure(), sha256(message.body)


def _check_key(key_type: str, value: bytes, name: str) -> None:
    if key_type in CURVES:
        try:
            check_private_scalar(key_type, value)
        except ValueError as e:
            raise ChipRefused(
                f"asset {name!r} is not a valid {key_type} key", code="bad-asset"
            ) from e
