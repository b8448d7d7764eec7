"""One chip: its state, its boot ROM, and the `Hardware` handle the ROM gives verified software.

The boot ROM (`Chip.boot`) is the only way to obtain a `Hardware`: it runs software only once
`trustprov.chip.secure_boot.verify_image` accepted it (signed under the chip's immutable
K_PUK_ICM_PROV suite, for the code the chip runs, not below the OTP security counter, which
then advances to its security version).

ROM services that need no software: manufacturing (burn immutable memory once, make the identity
key, store the certificate), status, identity and attestation (a token the chip signs over a
host's challenge: the one answer about what it holds that nothing on the wire can rewrite).

Invariants: every write goes through `Chip._commit`, where the lifecycle and the counters only
advance; key slots are write-only (no method returns a slot's secret or the identity key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustprov.chip.model import ChipState, Installed, KeySlot, Lifecycle
from trustprov.chip.ram import DEFAULT_RAM, Ram
from trustprov.chip.secure_boot import verify_image
from trustprov.chip.staging import StagedContent
from trustprov.chip.store import ChipStore
from trustprov.chip.trng import SystemTrng, Trng
from trustprov.crypto.keys import (
    CURVES,
    MATERIAL_LEN,
    SIGNATURE_ALGORITHMS,
    private_key_bytes,
    private_key_from_material,
    public_key_der,
)
from trustprov.errors import ChipRefused, FormatError
from trustprov.formats.attestation import AttestationClaims, make_token
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.software import CODE_ROOT, SignedSoftware


@dataclass(frozen=True)
class FlashWrite:
    region: str
    asset: str
    content_id: bytes  # names the content for the farm's de-duplication
    data: bytes | StagedContent = field(repr=False)  # large contents: staged, not in memory

    @property
    def length(self) -> int:
        return self.data.length if isinstance(self.data, StagedContent) else len(self.data)


class Chip:
    def __init__(
        self,
        farm: ChipStore,
        state: ChipState,
        *,
        trng: Trng | None = None,
        ram_budget: int = DEFAULT_RAM,
        code_root: Path = CODE_ROOT,
    ) -> None:
        self._farm = farm
        self._state = state
        self.trng: Trng = trng or SystemTrng()
        self.ram = Ram(ram_budget)
        self._code_root = code_root
        self._identity_public: bytes | None = None  # SPKI DER, once made in this power-on

    @property
    def uid(self) -> bytes:
        return self._state.uid

    @property
    def lot(self) -> str:
        return self._state.lot

    @property
    def lifecycle(self) -> Lifecycle:
        return self._state.lifecycle

    @property
    def security_counter(self) -> int:
        return self._state.security_counter

    @property
    def family_id(self) -> bytes | None:
        return self._state.immutable.family_id if self._state.immutable else None

    @property
    def prov_keys(self) -> tuple[bytes, ...] | None:
        """K_PUK_ICM_PROV, every key of the suite (SubjectPublicKeyInfo DER, in the suite's
        order): public, reported by `rom.status`."""
        return self._state.immutable.software_keys if self._state.immutable else None

    @property
    def prov_suite(self) -> str | None:
        """The signature suite the boot ROM verifies (e.g. ES256, ES256+ML-DSA-65): public."""
        return self._state.immutable.software_suite if self._state.immutable else None

    @property
    def certificate(self) -> bytes | None:
        return self._state.certificate

    @property
    def installed(self) -> Installed | None:
        return self._state.installed

    def _commit(
        self,
        state: ChipState,
        blobs: Mapping[bytes, bytes | StagedContent] | None = None,
        *,
        installed_bytes: bytes | None = None,
    ) -> None:
        # OTP: the lifecycle and the security counter only advance, on every write path (the
        # farm checks it again against what is stored, for a chip object holding a stale view)
        if (
            state.lifecycle < self._state.lifecycle
            or state.security_counter < self._state.security_counter
            or state.prov_counter < self._state.prov_counter
        ):
            raise ChipRefused("the lifecycle and the counters only advance", code="lifecycle")
        self._farm.save(
            state,
            blobs,
            installed_bytes=installed_bytes,
            seen_prov_counter=self._state.prov_counter,
        )
        self._state = state

    # -- ROM: manufacturing -----------------------------------------------------------------
    def burn_immutable(self, image: ImmutableMemory) -> None:
        if self._state.immutable is not None:
            raise ChipRefused("immutable memory is already written", code="immutable-written")
        state = self._state.copy()
        state.immutable = image
        self._commit(state)

    def make_identity(self) -> bytes:
        """Make the chip's P-256 identity key from its TRNG; return the public key (SPKI DER)."""
        if self._state.immutable is None:
            raise ChipRefused("chip is blank: immutable memory not written", code="lifecycle")
        if self._state.identity_key is not None:
            raise ChipRefused("identity key already made", code="identity-exists")
        key = private_key_from_material("ec-p256", self.trng.random(MATERIAL_LEN["ec-p256"]))
        state = self._state.copy()
        state.identity_key = private_key_bytes(key)
        self._commit(state)
        self._identity_public = public_key_der(key)  # in RAM until power-off
        return self._identity_public

    def store_certificate(self, der: bytes) -> None:
        if self._state.identity_key is None or self._state.certificate is not None:
            raise ChipRefused(
                "certificate can be stored once, after the identity key", code="lifecycle"
            )
        # imported here: X.509 costs every process that runs a chip (oem keygen) a tenth of
        # its start-up, and only manufacturing stores a certificate
        from cryptography import x509  # noqa: PLC0415 - lazy: start-up

        try:
            cert = x509.load_der_x509_certificate(der)
            certified = public_key_der(cert.public_key())  # type: ignore[arg-type]  # any key type compares
        except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as e:
            raise ChipRefused(
                "not an X.509 certificate of a usable key", code="bad-certificate"
            ) from e
        mine = self._identity_public or _identity_public_der(self._state.identity_key)
        if certified != mine:
            raise ChipRefused("certificate is not for this chip's key", code="bad-certificate")
        state = self._state.copy()
        state.certificate = der
        state.lifecycle = Lifecycle.MANUFACTURED
        self._commit(state)

    # -- ROM: secure boot -------------------------------------------------------------------
    def boot(self, image: bytes) -> Hardware:
        mem = self._state.immutable
        if mem is None or self._state.lifecycle < Lifecycle.MANUFACTURED:
            raise ChipRefused("chip is not manufactured", code="lifecycle")
        software = verify_image(image, mem, self._state.security_counter, self._code_root)
        if software.security_version > self._state.security_counter:
            state = self._state.copy()
            state.security_counter = software.security_version
            self._commit(state)
        return Hardware(self, software, mem)

    # -- ROM: attestation (rom.attest) ----------------------------------------------------------
    def attest(self, challenge: bytes) -> bytes:
        """The attestation token of docs/protocol.md 8.8 over the host's ``challenge``: what
        this chip holds, signed with its identity key. A chip without its certificate (BLANK)
        has no identity to sign with: `lifecycle`."""
        s = self._state
        if s.identity_key is None or s.certificate is None:
            raise ChipRefused("chip has no certified identity", code="lifecycle")
        i = s.installed
        claims = AttestationClaims(
            nonce=challenge,
            uid=s.uid,
            lot=s.lot,
            lifecycle=int(s.lifecycle),
            counter=s.prov_counter,
            installed_digest=None if i is None else i.digest(),
            bundle_id=None if i is None else i.bundle_id,
            domain_id=None if i is None else i.domain_id,
            epoch=None if i is None else i.epoch,
        )
        return make_token(claims, s.certificate, self.identity_sign)

    def identity_public_key(self) -> bytes | None:
        """The identity key's public key (SPKI DER) once made, else None: public, so that a
        host whose `rom.make-identity` answer was lost certifies the key the chip holds
        (protocol.md 7, "The ICM's line") instead of asking for another."""
        if self._identity_public is None and self._state.identity_key is not None:
            self._identity_public = _identity_public_der(self._state.identity_key)
        return self._identity_public

    def identity_sign(self, message: bytes) -> bytes:
        """ES256 over ``message`` with the chip's identity key (the raw r || s of RFC 9053
        section 2.1). The key never leaves the chip: there is a method that signs with it and
        none that returns it."""
        scalar = self._state.identity_key
        if scalar is None:
            raise ChipRefused("chip has no identity key", code="lifecycle")
        key = ec.derive_private_key(int.from_bytes(scalar), ec.SECP256R1())
        return SIGNATURE_ALGORITHMS["ES256"].sign(key, message)

    # -- ROM: public views of what is installed (rom.status with "digests") --------------------
    def region_digest(self, region: str) -> bytes:
        """SHA-256 of a flash region's content, read from the chip's own flash. Public by
        design (docs/threat-model.md, "Region digests"): it lets an OEM confirm an image."""
        installed = self._state.installed
        if installed is None or region not in installed.regions:
            raise ChipRefused(f"no flash region {region!r}", code="bad-request")
        return self._farm.blob_digest(installed.regions[region][2])

    def slot_public_key(self, slot: int) -> bytes | None:
        """SPKI DER of the public half of an asymmetric key slot; None for a symmetric key."""
        installed = self._state.installed
        if installed is None or slot not in installed.slots:
            raise ChipRefused(f"no key slot {slot}", code="bad-request")
        s = installed.slots[slot]
        if s.key_type == "ed25519":
            return public_key_der(ed25519.Ed25519PrivateKey.from_private_bytes(s.value))
        if s.key_type in CURVES:
            return public_key_der(
                ec.derive_private_key(int.from_bytes(s.value), CURVES[s.key_type])
            )
        return None


def _identity_public_der(scalar: bytes) -> bytes:
    """SPKI DER of the P-256 identity key with private scalar ``scalar``."""
    return public_key_der(ec.derive_private_key(int.from_bytes(scalar), ec.SECP256R1()))


class Hardware:
    """What verified software may touch. Key slots are write-only: there is no read method."""

    def __init__(self, chip: Chip, software: SignedSoftware, immutable: ImmutableMemory) -> None:
        self._chip = chip
        self.software = software
        self._immutable = immutable
        self.trng = chip.trng
        self.ram = chip.ram

    def __repr__(self) -> str:
        return f"Hardware(uid={self.uid.hex()}, software={self.software.name!r})"

    @property
    def uid(self) -> bytes:
        return self._chip.uid

    @property
    def family_id(self) -> bytes:
        return self._immutable.family_id

    @property
    def lifecycle(self) -> Lifecycle:
        return self._chip.lifecycle

    @property
    def installed(self) -> Installed | None:
        return self._chip.installed

    @property
    def lot(self) -> str:
        return self._chip.lot

    @property
    def certificate(self) -> bytes | None:
        return self._chip.certificate

    @property
    def prov_counter(self) -> int:
        return self._chip._state.prov_counter

    def immutable(self) -> ImmutableMemory:
        return self._immutable

    def identity_sign(self, message: bytes) -> bytes:
        """ES256 with the chip's identity key (`Chip.identity_sign`)."""
        return self._chip.identity_sign(message)

    def stage_region(self, content_id: bytes) -> StagedContent:
        """Flash staging for the content ``content_id`` of a region (`trustprov.chip.staging`):
        nothing is kept of a content the farm already holds."""
        return StagedContent(content_id, held=self._chip._farm.holds_blob(content_id))

    def install(
        self,
        *,
        domain_id: bytes,
        bundle_id: bytes,
        epoch: int,
        slots: dict[int, KeySlot],
        flash: list[FlashWrite],
    ) -> None:
        """Replace the whole installed state with these slots and regions, and advance the
        lifecycle to PROVISIONED, in one atomic commit.

        An update replaces: a slot or region the new bundle does not name is erased, so a chip
        holds what its last bundle says and nothing an earlier one left (docs/protocol.md 6.6).
        Refused, with nothing written: a chip not MANUFACTURED or PROVISIONED (a LOCKED chip
        takes nothing), and a state beyond the chip's capacity (``capacity``)."""
        chip = self._chip
        if chip.lifecycle not in (Lifecycle.MANUFACTURED, Lifecycle.PROVISIONED):
            raise ChipRefused(f"chip is {chip.lifecycle.name}: nothing installs", code="lifecycle")
        installed = Installed(domain_id=domain_id, bundle_id=bundle_id, epoch=epoch)
        installed.slots.update(slots)
        for w in flash:
            installed.regions[w.region] = (w.asset, w.length, w.content_id)
        encoded = installed.to_bytes()
        try:  # whatever is committed must load at the next power-on
            installed.validate(len(encoded))
        except FormatError as e:
            raise ChipRefused(f"install refused: {e.message}", code="capacity") from e
        state = chip._state.copy()
        state.installed = installed
        state.lifecycle = Lifecycle.PROVISIONED
        state.prov_counter += 1  # OTP, in the same commit: a receipt's counter is its install's
        chip._commit(state, {w.content_id: w.data for w in flash}, installed_bytes=encoded)

    def lock(self) -> None:
        """PROVISIONED -> LOCKED, for good; any other state is refused."""
        if self._chip.lifecycle != Lifecycle.PROVISIONED:
            raise ChipRefused(
                f"only a provisioned chip locks (this one is {self._chip.lifecycle.name})",
                code="lifecycle",
            )
        state = self._chip._state.copy()
        state.lifecycle = Lifecycle.LOCKED
        self._chip._commit(state)
