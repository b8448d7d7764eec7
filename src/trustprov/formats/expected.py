"""What a job expects a chip to hold, and the one check of a chip's signed claims against it.

The station (before a record says ``provisioned`` or ``already-provisioned``) and the OEM's
reconciliation (`roles.oem.reconcile`) check a receipt's claims (6.8) with `check_receipt`, and the
station an attestation's (8.8) with `check_attestation`: one definition of "this chip holds this
bundle", with one order of checks, so that the two can never disagree.

Invariants: every check raises `ClaimMismatch`, whose ``kind`` names the first check that
failed in the order ``wrong-chip``, ``wrong-lot``, ``wrong-bundle``, ``wrong-state``; nothing
here verifies a signature (the caller does, under the key it trusts, before it asks).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Protocol

from trustprov.crypto.digest import sha256
from trustprov.errors import VerificationError
from trustprov.formats.attestation import AttestationClaims
from trustprov.formats.bundle import Manifest, SignedManifest
from trustprov.formats.installed import expected_installed_digest
from trustprov.formats.receipt import ReceiptClaims

PROVISIONED, LOCKED = 2, 3  # the lifecycle numbers of a receipt (6.8)
#: the kinds of `ClaimMismatch`, in the order they are checked
KINDS = ("wrong-chip", "wrong-lot", "wrong-bundle", "wrong-state")


class BundleLike(Protocol):
    @property
    def manifest(self) -> Manifest: ...

    @property
    def signed(self) -> SignedManifest: ...


class ClaimMismatch(VerificationError):
    """Signed claims that are not what the job expects; ``kind`` says which check failed."""

    def __init__(self, message: str, *, kind: str, code: str = "bad-receipt") -> None:
        super().__init__(message, code=code)
        self.kind = kind


@dataclass
class Expected:
    """The bundle a job installs, as a chip that holds it signs it."""

    bundle_id: bytes
    manifest_digest: bytes  # SHA-256 of the manifest payload (8.7)
    epoch: int
    min_svn: int
    manifest: Manifest = field(repr=False)
    _installed: dict[bytes, bytes] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, bundle: BundleLike) -> Expected:
        """From a `Bundle` or a bundle file (`roles.bundle_io.BundleFile`)."""
        m = bundle.manifest
        return cls(
            m.bundle_id, sha256(bundle.signed.message.body), m.epoch, m.min_security_version, m
        )

    def installed_digest(self, domain_id: bytes) -> bytes:
        """The installed digest (6.7) of a chip of ``domain_id`` holding this bundle; kept per
        domain (a lot has one)."""
        digest = self._installed.get(domain_id)
        if digest is None:
            digest = self._installed[domain_id] = expected_installed_digest(
                self.manifest, domain_id
            )
        return digest

    def check_receipt(
        self, c: ReceiptClaims, *, uid: bytes | None = None, lot: str | None = None
    ) -> None:
        """Raise `ClaimMismatch` unless the receipt ``c`` says its chip (``uid``, of ``lot``,
        when given) installed exactly this bundle: bundle id and manifest digest; installed
        digest and epoch; lifecycle PROVISIONED or LOCKED, a counter of at least one install,
        and software not below the bundle's minimum security version."""
        _check_chip(c.uid, c.lot, uid, lot, "receipt")
        if c.bundle_id != self.bundle_id or c.manifest_digest != self.manifest_digest:
            raise ClaimMismatch(
                "the receipt names another bundle (bundle id or manifest digest)",
                kind="wrong-bundle",
            )
        if not hmac.compare_digest(c.installed_digest, self.installed_digest(c.domain_id)):
            raise ClaimMismatch(
                "the receipt's installed digest is not this bundle's", kind="wrong-state"
            )
        if c.epoch != self.epoch or c.lifecycle not in (PROVISIONED, LOCKED):
            raise ClaimMismatch("the receipt's epoch or lifecycle is wrong", kind="wrong-state")
        if c.counter < 1 or c.security_version < self.min_svn:
            raise ClaimMismatch(
                "the receipt's counter or security version is not sane", kind="wrong-state"
            )

    def check_attestation(self, c: AttestationClaims, *, uid: bytes, lot: str | None) -> None:
        """Raise `ClaimMismatch` (code ``bad-attestation``) unless the token says its chip
        ``uid`` (of ``lot``, when given) holds exactly this bundle: bundle id, installed digest
        for its domain, epoch, lifecycle PROVISIONED or LOCKED, at least one install."""
        code = "bad-attestation"
        _check_chip(c.uid, c.lot, uid, lot, "attestation", code=code)
        if c.bundle_id != self.bundle_id or c.domain_id is None or c.installed_digest is None:
            raise ClaimMismatch(
                "the chip signs that it does not hold this bundle", kind="wrong-bundle", code=code
            )
        if (
            not hmac.compare_digest(c.installed_digest, self.installed_digest(c.domain_id))
            or c.epoch != self.epoch
            or c.lifecycle not in (PROVISIONED, LOCKED)
            or c.counter < 1
        ):
            raise ClaimMismatch(
                "the chip signs that it holds more or less than this bundle",
                kind="wrong-state",
                code=code,
            )


def _check_chip(
    signed_uid: bytes,
    signed_lot: str,
    uid: bytes | None,
    lot: str | None,
    what: str,
    *,
    code: str = "bad-receipt",
) -> None:
    if uid is not None and signed_uid != uid:
        raise ClaimMismatch(
            f"the {what} is chip {signed_uid.hex()}'s, not {uid.hex()}'s",
            kind="wrong-chip",
            code=code,
        )
    if lot is not None and signed_lot != lot:
        raise ClaimMismatch(
            f"the {what} names lot {signed_lot!r}; the ICM's lot manifest puts the chip in {lot!r}",
            kind="wrong-lot",
            code=code,
        )
