"""The OEM's provisioning chip: on its desk behind a port, or in a farm for a rehearsal.

`desk_chip` opens the chip FIG. 2 and FIG. 4 run on, as a `ChipClient`: over a port (serial
``serial:///dev/ttyUSB0?baud=N``, TCP ``tcp://HOST:PORT``, or the socket of a board, whose chip
someone seated) or in a farm (``--farm FARM --chip UID``).

Invariant: before the OEM's tool sends a chip anything but the two reads that identify it
(`rom.status`, `rom.identity`), the chip is checked against the ICM's device CA (`check_chip`):
1. it has a certificate, X.509, issued by the device CA given (its signature verifies under the
   CA's key) and that CA is the device CA of the chip's family (its CN names the family);
2. the certificate's subject (serialNumber and CN) is the UID the chip reports, and its key is a
   P-256 key (protocol.md 7);
3. the chip is manufactured (not BLANK);
4. the chip holds the certificate's key: it signs an attestation token (`rom.attest`,
   protocol.md 8.8) over a fresh challenge of the host's, and the token names its UID. A
   certificate copied from a genuine chip into an emulator fails here.
A chip that fails is refused with `VerificationError` (``bad-certificate``) or `InputError`, and
nothing else is sent to it: no software boots, no OEM_RND_INPUT leaves the host.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.errors import FormatError, InputError, TrustprovError, VerificationError
from trustprov.formats.attestation import CHALLENGE_LEN, Attestation
from trustprov.formats.limits import LIMITS
from trustprov.formats.lot import device_ca_common_name
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.roles.files import read_bytes


def load_ca(path: Path) -> x509.Certificate:
    """The device CA certificate, PEM or DER."""
    data = read_bytes(path, limit=LIMITS.certificate * 4, what="device CA")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as e:
        raise InputError(f"device CA {path}: not an X.509 certificate") from e


def check_chip(chip: ChipClient, ca: x509.Certificate, where: str) -> dict[str, Any]:
    """Steps 1-3 of the module docstring; the chip's status when it passes."""
    status = chip.status()
    uid, family = status.get("uid"), status.get("family")
    if not isinstance(uid, bytes) or status.get("lifecycle") in ("BLANK", None) or not family:
        raise InputError(f"{where}: the chip is not manufactured (no family, no identity)")
    der = chip.certificate()
    if not der:
        raise VerificationError(f"{where}: the chip has no certificate", code="bad-certificate")
    refused = VerificationError(
        f"{where}: chip {uid.hex()}: its certificate was not issued for it by the device CA "
        f"of family {family.hex()}",
        code="bad-certificate",
    )
    cas = [str(a.value) for a in ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cas != [device_ca_common_name(family)]:  # 1. the CA of this family, not another's
        raise refused
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.verify_directly_issued_by(ca)  # 1. issuer name and signature
        key = cert.public_key()
        serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as e:
        raise refused from e
    if (  # 2. for this chip, a P-256 key
        [a.value for a in serial] != [uid.hex()]
        or [a.value for a in common] != [uid.hex()]
        or not isinstance(key, ec.EllipticCurvePublicKey)
        or key.curve.name != "secp256r1"
    ):
        raise refused
    _check_possession(chip, key, uid, where)
    return status


def _check_possession(
    chip: ChipClient, key: ec.EllipticCurvePublicKey, uid: bytes, where: str
) -> None:
    """Step 4: the chip signs the host's fresh challenge with the certified key."""
    challenge = secrets.token_bytes(CHALLENGE_LEN)
    refused = f"{where}: chip {uid.hex()} does not hold its certificate's key"
    try:
        token = Attestation.from_bytes(chip.attest(challenge))
        token.verify(key, challenge)
    except (FormatError, VerificationError) as e:
        raise VerificationError(refused, code="bad-certificate") from e
    except TrustprovError as e:
        if e.code != "unknown-command":
            raise
        raise VerificationError(
            f"{where}: chip {uid.hex()} cannot prove it holds its key (no rom.attest)",
            code="bad-certificate",
        ) from e
    if token.claims.uid != uid:
        raise VerificationError(refused, code="bad-certificate")


@contextmanager
def desk_chip(
    *,
    port: str | None = None,
    farm: Path | None = None,
    uid: bytes | None = None,
    ca: Path | None = None,
) -> Iterator[ChipClient]:
    """The OEM's chip, checked against the device CA ``ca`` (required with a port) before
    anything else is sent to it."""
    if (port is None) == (farm is None) or (farm is None) != (uid is None):
        raise InputError("give --port ADDRESS, or --farm FARM with --chip UID")
    if port is not None and ca is None:
        raise InputError("--port needs --ca: a chip behind a port is checked before it is used")
    authority = load_ca(ca) if ca is not None else None  # a bad CA file before any chip
    if port is not None:
        link = open_link(port)  # hello done
        try:
            chip = ChipClient(link)
            assert authority is not None  # noqa: S101 - checked above
            check_chip(chip, authority, port)
            yield chip
        finally:
            link.close()
        return
    assert farm is not None  # noqa: S101 - checked above
    assert uid is not None  # noqa: S101 - checked above
    with FarmLink(farm) as f, f.connect(uid) as chip:
        if authority is not None:
            check_chip(chip, authority, f"chip {uid.hex()}")
        yield chip
