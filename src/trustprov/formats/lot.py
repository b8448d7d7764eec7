"""The lot manifest: which chips the ICM made into a lot, with their identity certificates.

JSON, as the CM and the OEM read it::

    {"lot": "LOT-1", "family": "<16 hex>", "chips": [{"uid": "<32 hex>", "certificate": "<PEM>"}]}

`LotManifestWriter` is the one serializer: it writes a manifest chip by chip, one chip per line,
so a lot of a million chips is written in constant memory; `LotManifest.to_json` uses it too.
The parser accepts any JSON layout of the same document.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import text
from trustprov.formats.limits import LIMITS
from trustprov.formats.lot_name import check_lot_name

UID_LEN = 16


@dataclass(frozen=True)
class LotChip:
    uid: bytes
    certificate: bytes  # DER

    check_lot_name = staticmethod(check_lot_name)

    def certificate_pem(self) -> str:
        cert = x509.load_der_x509_certificate(self.certificate)
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class LotManifest:
    lot: str
    family_id: bytes
    chips: tuple[LotChip, ...]

    def to_json(self) -> bytes:
        out = io.BytesIO()
        writer = LotManifestWriter(out, self.lot, self.family_id)
        for c in self.chips:
            writer.add(c.uid, x509.load_der_x509_certificate(c.certificate))
        writer.finish()
        return out.getvalue()

    @classmethod
    def from_json(cls, data: bytes) -> LotManifest:
        what = "lot manifest"
        if len(data) > LIMITS.lot_manifest:
            raise FormatError(f"{what}: too large")
        # a chip's entry is ~830 bytes and 5 items: more items per byte is a flood of small ones
        text.check_items(data, LIMITS.lot_manifest_items_per_kib * (len(data) // 1024 + 1), what)
        try:
            doc: Any = json.loads(data)
        except RecursionError as e:
            raise FormatError(f"{what}: nested too deeply") from e
        except ValueError as e:
            raise FormatError(f"{what}: not valid JSON") from e
        text.check_depth(doc, LIMITS.text_depth, what)
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


class Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


class LotManifestWriter:
    """Writes a lot manifest to ``out`` (a binary file) as its chips are made.

    Call `add` per chip, then `finish` once; until then what ``out`` holds is not a manifest,
    so write into a file that appears only when complete (`roles.files.atomic_file`). Refuses a
    manifest larger than ``LIMITS.lot_manifest``, which no reader would accept.
    """

    def __init__(self, out: Writer, lot: str, family_id: bytes) -> None:
        LotChip.check_lot_name(lot)
        if len(family_id) != FAMILY_ID_LEN:
            raise FormatError(f"lot manifest: family id must be {FAMILY_ID_LEN} bytes")
        self._out = out
        self._count = 0
        self._size = 0
        self._finished = False
        head = f'{{"lot": {json.dumps(lot)}, "family": "{family_id.hex()}", "chips": ['
        self._write(head.encode("ascii"))

    @property
    def count(self) -> int:
        """The chips written so far."""
        return self._count

    def add(self, uid: bytes, certificate: x509.Certificate) -> None:
        if self._finished:
            raise ValueError("lot manifest already finished")
        if len(uid) != UID_LEN:
            raise FormatError(f"lot manifest: a UID must be {UID_LEN} bytes")
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        entry = f'{{"uid": "{uid.hex()}", "certificate": {json.dumps(pem)}}}'
        self._write((b",\n" if self._count else b"\n") + entry.encode("ascii"))
        self._count += 1

    def finish(self) -> None:
        if self._finished:
            raise ValueError("lot manifest already finished")
        self._write(b"\n]}\n" if self._count else b"]}\n")
        self._finished = True

    def _write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > LIMITS.lot_manifest:
            raise FormatError(
                f"lot manifest: larger than the limit of {LIMITS.lot_manifest} bytes "
                f"at chip {self._count}; make smaller lots"
            )
        self._out.write(data)


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
