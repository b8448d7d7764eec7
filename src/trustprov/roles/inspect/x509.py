"""`inspect`'s public-key and certificate parts: describing PEM files and checking a lot's chips.

Split from `roles.inspect` so that only a command that meets a PEM file or ``--verify`` loads
cryptography's X.509. Invariant: a certificate check raises `VerificationError` naming the chip
and the CA; every certificate is checked with pyca/cryptography (signature and issuer name),
nothing by hand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from trustprov.crypto.keys import key_type_of, load_public_key, public_key_der
from trustprov.errors import FormatError, InputError, VerificationError
from trustprov.formats.lot import LotManifest, device_ca_common_name
from trustprov.roles.files import read_bytes
from trustprov.roles.inspect.description import Description

_CA_LIMIT = 64 * 1024


def describe_pem(data: bytes, label: str) -> Description:
    """A public key or a certificate; anything else in PEM is not a trustprov artifact."""
    if label == "-----BEGIN PUBLIC KEY-----":
        key = load_public_key(data)
        der = public_key_der(key)
        return Description(
            "public-key",
            "a public key (SubjectPublicKeyInfo)",
            {"key_type": key_type_of(key), "spki_sha256": hashlib.sha256(der).hexdigest()},
            note="K_PUK_ICM_PROV (prov-signing.pub.pem) checks the software; an OEM's "
            "generated/NAME.pub.pem is the public half of a key generated on its chips",
        )
    if label == "-----BEGIN CERTIFICATE-----":
        try:
            cert = x509.load_pem_x509_certificate(data)
            return Description("certificate", "an X.509 certificate", _certificate(cert))
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as e:
            raise FormatError("not a valid X.509 certificate") from e
    raise FormatError(f"a PEM file of {label.strip('-').removeprefix('BEGIN ')!r}")


def _certificate(cert: x509.Certificate) -> dict[str, Any]:
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    key_type = _key_type(cert.public_key())
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "ca": ca,
        "key_type": key_type,
        "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    }


def _key_type(public: Any) -> str:
    try:
        return key_type_of(public)
    except AttributeError:  # RSA and other keys trustprov does not use
        return "other (a type trustprov does not use)"


def verify_lot(lot: LotManifest, ca_path: Path, path: Path | None) -> None:
    """Raise `VerificationError` unless every chip's certificate was issued by the CA."""
    what = f"lot manifest {path}" if path else "lot manifest"
    try:
        ca = x509.load_pem_x509_certificate(read_bytes(ca_path, limit=_CA_LIMIT, what="device CA"))
    except ValueError as e:
        raise InputError(f"device CA {ca_path}: not a PEM X.509 certificate") from e
    names = [str(a.value) for a in ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [device_ca_common_name(lot.family_id)]:
        raise VerificationError(
            f"{what}: {ca_path} is not the device CA of family {lot.family_id.hex()}",
            code="bad-certificate",
        )
    for chip in lot.chips:
        cert = x509.load_der_x509_certificate(chip.certificate)
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise VerificationError(
                f"{what}: chip {chip.uid.hex()}: its certificate was not issued by {ca_path}",
                code="bad-certificate",
            ) from e
