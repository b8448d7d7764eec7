"""The lot manifest: which chips the ICM made into a lot, with their identity certificates.

JSON, as the CM and the OEM read it::

    {"lot": "LOT-1", "family": "<16 hex>", "chips": [{"uid": "<32 hex>", "certificate": "<PEM>"}]}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats.limits import LIMITS

_LOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UID_LEN = 16


@dataclass(frozen=True)
class LotChip:
    uid: bytes
    certificate: bytes  # DER

    @staticmethod
    def check_lot_name(name: str) -> None:
        if not _LOT_NAME.fullmatch(name):
            raise FormatError(
                f"lot name {name!r}: 1-64 of letters, digits, '.', '_', '-', starting alnum"
            )

    def certificate_pem(self) -> str:
        cert = x509.load_der_x509_certificate(self.certificate)
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class LotManifest:
    lot: str
    family_id: bytes
    chips: tuple[LotChip, ...]

    def to_json(self) -> bytes:
        doc = {
            "lot": self.lot,
            "family": self.family_id.hex(),
            "chips": [{"uid": c.uid.hex(), "certificate": c.certificate_pem()} for c in self.chips],
        }
        return json.dumps(doc, indent=1).encode("ascii") + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> LotManifest:
        what = "lot manifest"
        if len(data) > LIMITS.lot_manifest:
            raise FormatError(f"{what}: too large")
        try:
            doc: Any = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise FormatError(f"{what}: not valid JSON") from e
        if not isinstance(doc, dict) or set(doc) != {"lot", "family", "chips"}:
            raise FormatError(f"{what}: needs exactly the keys lot, family, chips")
        if not isinstance(doc["lot"], str) or not isinstance(doc["chips"], list):
            raise FormatError(f"{what}: wrong types")
        LotChip.check_lot_name(doc["lot"])
        family = _hex(doc["family"], FAMILY_ID_LEN, f"{what}: family")
        chips = []
        seen: set[bytes] = set()
        seen_certs: set[bytes] = set()
        for i, c in enumerate(doc["chips"]):
            if not isinstance(c, dict) or set(c) != {"uid", "certificate"}:
                raise FormatError(f"{what}: chip {i} needs exactly uid and certificate")
            uid = _hex(c["uid"], UID_LEN, f"{what}: chip {i} uid")
            if uid in seen:
                raise FormatError(f"{what}: chip {uid.hex()} listed twice")
            seen.add(uid)
            pem = c["certificate"]
            if not isinstance(pem, str) or len(pem) > LIMITS.certificate:
                raise FormatError(f"{what}: chip {i} certificate")
            try:
                cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
                _check_binding(cert, uid, family, what)
                der = cert.public_bytes(serialization.Encoding.DER)
            # malformed names surface as ValueError or TypeError from the X.509 accessors
            except (ValueError, TypeError, UnicodeEncodeError, x509.InvalidVersion) as e:
                raise FormatError(f"{what}: chip {uid.hex()} certificate is not PEM X.509") from e
            if der in seen_certs:
                raise FormatError(f"{what}: chip {uid.hex()} repeats another chip's certificate")
            seen_certs.add(der)
            chips.append(LotChip(uid, der))
        return cls(doc["lot"], family, tuple(chips))


def device_ca_common_name(family_id: bytes) -> str:
    """The device CA's subject CN, which names the family it certifies chips of."""
    return f"trustprov device CA {family_id.hex()}"


def _check_binding(cert: x509.Certificate, uid: bytes, family: bytes, what: str) -> None:
    """A chip's certificate names its UID (subject serialNumber and CN) and its family's CA."""

    def attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
        return [str(a.value) for a in name.get_attributes_for_oid(oid)]

    uid_hex = uid.hex()
    subject = cert.subject
    if attr(subject, NameOID.SERIAL_NUMBER) != [uid_hex] or attr(subject, NameOID.COMMON_NAME) != [
        uid_hex
    ]:
        raise FormatError(f"{what}: chip {uid_hex}: certificate is not for this UID")
    if attr(cert.issuer, NameOID.COMMON_NAME) != [device_ca_common_name(family)]:
        raise FormatError(f"{what}: chip {uid_hex}: certificate is from another family's CA")


def _hex(value: Any, length: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise FormatError(f"{what}: must be hex text")
    if len(value) != 2 * length:  # bytes.fromhex would also take spaces
        raise FormatError(f"{what}: must be {2 * length} hex digits")
    try:
        raw = bytes.fromhex(value)
    except ValueError as e:
        raise FormatError(f"{what}: not hex") from e
    if len(raw) != length:
        raise FormatError(f"{what}: must be {length} bytes")
    return raw
