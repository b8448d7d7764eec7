"""Chip identity certificates, issued by the family's device CA: one path for every line.

Invariants:
- Every chip certificate is made by `certify` from the family's template (`lot_template`): the
  farm's line (roles/icm/manufacturing.py) and the wire's (line/icm_chip.py) issue the same
  certificate for the same chip.
- A chip's identity key is EC P-256 or the certificate is refused (`FormatError`); the subject
  names the UID in hex, the serial number is the UID (never 0), and nothing expires.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.errors import FormatError
from trustprov.roles.icm.family import Clock, Icm, utc_now

_CHIP_ORGANIZATION = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov chip")


def issue_certificate(
    icm: Icm, uid: bytes, public_der: bytes, now: Clock = utc_now
) -> x509.Certificate:
    """The chip's identity certificate: CN = UID in hex, no expiry (RFC 5280 4.1.2.5).

    Returned as the certificate object, so its DER (for the chip) and PEM (for the lot manifest)
    are both encoded from it without parsing it again.
    """
    return certify(icm, lot_template(icm, now()), uid, public_der)


def lot_template(icm: Icm, now: datetime.datetime) -> x509.CertificateBuilder:
    """The family's template with the validity start every certificate of one lot shares: the
    one path to a chip certificate, for the farm (`manufacture`) and the wire (line.icm_chip)."""
    return icm.chip_certificate_template.not_valid_before(now - datetime.timedelta(minutes=5))


def certify(
    icm: Icm, template: x509.CertificateBuilder, uid: bytes, public_der: bytes
) -> x509.Certificate:
    public = serialization.load_der_public_key(public_der)
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
        public.curve, ec.SECP256R1
    ):
        raise FormatError("chip identity key must be EC P-256")
    name = x509.Name(
        [
            _CHIP_ORGANIZATION,
            x509.NameAttribute(NameOID.SERIAL_NUMBER, uid.hex()),
            x509.NameAttribute(NameOID.COMMON_NAME, uid.hex()),
        ]
    )
    return (
        template.subject_name(name)
        .public_key(public)
        .serial_number(int.from_bytes(uid) or 1)  # unique per UID (RFC 5280 4.1.2.2)
        .sign(icm.ca_key, hashes.SHA256())
    )
