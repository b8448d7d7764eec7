"""What the station believes about a chip: only what the chip signs, under the certificate the
ICM's signed lot manifest gives for the UID the station asked for (docs/protocol.md 9, rule 7).

Anything between the station and a chip (a board, a programmer's firmware, an adapter) may seat
another chip and rewrite every unsigned answer. So before a record says ``provisioned`` the
chip's receipt (6.8) must verify under that certificate, with the UID, the lot, the bundle, the
manifest digest, the installed digest, the epoch, the lifecycle and a sane counter this job
expects (`formats.expected.Expected.check_receipt`, the OEM's own check); before it says
``already-provisioned`` the chip's attestation (8.8) must verify the same way over the
station's own challenge and show the bundle installed. A receipt that fails makes the record
``bad-receipt``; a token that fails makes it ``failed`` (``bad-attestation``). A chip's
certificate is never taken from what the chip or the board sends: the token's or receipt's
x5chain must moreover be that very certificate.

A station given no lot manifest (in-process chips, ``cm provision --farm`` alone: no board
between the station's process and the chips) takes the certificate the chip reported itself
(``rom.identity``) and checks that it names the UID; a lot manifest makes the anchor the ICM's.

Invariants: `LotTrust.verify` returns an outcome whose result is ``provisioned`` or
``already-provisioned`` only after a signature verified under the anchored key and every claim
checked; the parsed public key is kept per UID (a chip settled twice costs one parse).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.errors import TrustprovError, VerificationError
from trustprov.formats.attestation import Attestation
from trustprov.formats.expected import ClaimMismatch, Expected
from trustprov.formats.lot import LotManifest
from trustprov.formats.receipt import Receipt
from trustprov.roles.cm import Outcome

KEY_CACHE = 4096  # public keys kept; a line settles each chip once or twice, in claim order


class LotTrust:
    """The certificates a station trusts for the chips of one lot, and the checks under them."""

    def __init__(self, lot: str, certificates: Mapping[bytes, bytes] | None) -> None:
        """``certificates``: UID -> certificate DER, from the ICM's signed lot manifest; None:
        the chip's own (`Outcome.certificate`), for in-process chips only."""
        self.lot = lot
        self._certificates = certificates
        self._keys: dict[bytes, tuple[bytes, ec.EllipticCurvePublicKey]] = {}

    @classmethod
    def of_manifest(cls, manifest: LotManifest) -> LotTrust:
        """From a lot manifest whose ICM signature was verified (`roles.lots.read_lot`)."""
        return cls(manifest.lot, {c.uid: c.certificate for c in manifest.chips})

    @property
    def anchored(self) -> bool:
        """Whether the certificates come from the ICM's lot manifest."""
        return self._certificates is not None

    def anchor(self, outcome: Outcome) -> tuple[bytes, ec.EllipticCurvePublicKey]:
        """The certificate DER and P-256 key trusted for ``outcome.uid``; raises
        `VerificationError` (``unknown-chip``) when there is none."""
        uid = outcome.uid
        certs = self._certificates
        der = outcome.certificate if certs is None else certs.get(uid)
        if der is None:
            raise VerificationError(
                f"no certificate is known for chip {uid.hex()}", code="unknown-chip"
            )
        held = self._keys.get(uid)
        if held is not None and held[0] == der:
            return held
        key = _chip_key(der, uid)
        if len(self._keys) >= KEY_CACHE:
            self._keys.clear()
        self._keys[uid] = (der, key)
        return der, key

    def verify(self, outcome: Outcome, expected: Expected) -> Outcome:
        """The outcome as the station records it: ``provisioned`` only with a receipt (or, for
        an install whose answer was lost on the wire, a token) that verifies; else
        ``bad-receipt``. ``already-provisioned`` only with a token that verifies; else
        ``failed``. Any other outcome is returned as it is."""
        if outcome.result == "provisioned" and outcome.receipt is None:
            if outcome.attestation is None:
                return _refused(outcome, "bad-receipt", "no-receipt", "the chip sent no receipt")
            return self._attested(outcome, expected, "bad-receipt")
        if outcome.result == "provisioned":
            try:
                self._check_receipt(outcome, expected)
            except TrustprovError as e:
                code = e.kind if isinstance(e, ClaimMismatch) else e.code
                # not the chip's own bad-signature refusal of the software, which stops a lot
                code = "receipt-signature" if code == "bad-signature" else code
                return _refused(outcome, "bad-receipt", code, f"receipt refused: {e.message}")
            return outcome
        if outcome.result == "already-provisioned":
            return self._attested(outcome, expected, "failed")
        return outcome

    def _check_receipt(self, outcome: Outcome, expected: Expected) -> None:
        assert outcome.receipt is not None  # noqa: S101 - the caller checked
        der, key = self.anchor(outcome)
        receipt = Receipt.from_bytes(outcome.receipt)
        _same_certificate(receipt.certificate, der)
        receipt.verify(key)
        expected.check_receipt(receipt.claims, uid=outcome.uid, lot=self.lot)

    def _attested(self, outcome: Outcome, expected: Expected, refused: str) -> Outcome:
        try:
            if outcome.attestation is None or outcome.challenge is None:
                raise VerificationError("the chip signed nothing", code="no-attestation")
            der, key = self.anchor(outcome)
            token = Attestation.from_bytes(outcome.attestation)
            _same_certificate(token.certificate, der)
            token.verify(key, outcome.challenge)
            expected.check_attestation(token.claims, uid=outcome.uid, lot=self.lot)
        except TrustprovError as e:
            code = "no-attestation" if e.code == "no-attestation" else "bad-attestation"
            return _refused(outcome, refused, code, f"attestation refused: {e.message}")
        return outcome


def _refused(outcome: Outcome, result: str, code: str, message: str) -> Outcome:
    return replace(outcome, result=result, error_code=code, error=message[:300])


def _same_certificate(sent: bytes, trusted: bytes) -> None:
    if not hmac.compare_digest(sent, trusted):
        raise VerificationError(
            "the chip's x5chain is not the certificate the lot manifest gives for the chip"
            " (another chip in the socket?)",
            code="wrong-chip",
        )


def _chip_key(der: bytes, uid: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 key of a chip certificate that names ``uid`` (subject serialNumber)."""
    try:
        cert: Any = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    except (ValueError, TypeError) as e:
        raise VerificationError(
            f"chip {uid.hex()}: its certificate does not load", code="bad-certificate"
        ) from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise VerificationError(
            f"chip {uid.hex()}: its certificate is not of a P-256 key", code="bad-certificate"
        )
    if len(serial) != 1 or serial[0].value != uid.hex():
        raise VerificationError(
            f"the certificate is not chip {uid.hex()}'s (another chip's?)", code="wrong-chip"
        )
    return key
