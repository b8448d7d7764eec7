"""Regenerate tests/vectors/receipt.json: one receipt (docs/protocol.md 6.8) from fixed inputs.

The claims' encoding is deterministic and is checked byte for byte; ECDSA is randomized, so the
receipt and the chip's certificate are verify-only: a port must verify them, not reproduce them.

    python tests/vectors/generate_receipt.py
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, public_key_der
from trustprov.formats.receipt import DeviceKey, ReceiptClaims, make_receipt

HERE = Path(__file__).parent
CA_SCALAR = int("11" * 32, 16)
CHIP_SCALAR = int("22" * 32, 16)
DEVICE_SCALAR = int("33" * 32, 16)
CLAIMS = ReceiptClaims(
    uid=bytes.fromhex("00112233445566778899aabbccddeeff"),
    lot="LOT-0001",
    bundle_id=bytes.fromhex("0f0e0d0c0b0a09080706050403020100"),
    manifest_digest=bytes(range(32)),
    installed_digest=bytes(range(32, 64)),
    domain_id=bytes.fromhex("20db9c6fd41f7b90a784dd099818120b"),
    epoch=1,
    software_name="trustprov-provisioning",
    software_version="0.1.0",
    security_version=1,
    lifecycle=2,
    counter=1,
    device_keys=(
        DeviceKey(
            9,
            "cloud-identity-key",
            public_key_der(ec.derive_private_key(DEVICE_SCALAR, ec.SECP256R1())),
        ),
    ),
)


def _unchanged(
    path: Path, ca: ec.EllipticCurvePrivateKey, chip: ec.EllipticCurvePrivateKey
) -> bool:
    """The checked-in vector is for the same keys and claims: ECDSA is randomized, so it is kept
    rather than signed anew, and `make vectors` leaves the file as it is."""
    if not path.exists():
        return False
    old = json.loads(path.read_text())
    return bool(
        old.get("ca_public_key") == public_key_der(ca).hex()
        and old.get("chip_public_key") == public_key_der(chip).hex()
        and old.get("claims_payload") == CLAIMS.to_payload().hex()
    )


def main() -> None:
    ca = ec.derive_private_key(CA_SCALAR, ec.SECP256R1())
    chip = ec.derive_private_key(CHIP_SCALAR, ec.SECP256R1())
    if _unchanged(HERE / "receipt.json", ca, chip):
        return
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trustprov vector CA")])
    t = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    uid = CLAIMS.uid.hex()
    cert = (
        x509.CertificateBuilder()
        .issuer_name(ca_name)
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, uid),
                    x509.NameAttribute(NameOID.COMMON_NAME, uid),
                ]
            )
        )
        .public_key(chip.public_key())
        .serial_number(1)
        .not_valid_before(t)
        .not_valid_after(datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC))
        .sign(ca, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    receipt = make_receipt(CLAIMS, der, lambda m: SIGNATURE_ALGORITHMS["ES256"].sign(chip, m))
    doc = {
        "ca_public_key": public_key_der(ca).hex(),
        "chip_public_key": public_key_der(chip).hex(),
        "chip_certificate": der.hex(),
        "claims_payload": CLAIMS.to_payload().hex(),
        "receipt": receipt.hex(),
    }
    (HERE / "receipt.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
