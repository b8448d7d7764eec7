"""Regenerate tests/vectors/receipt.json: one receipt (docs/protocol.md 6.8) from fixed inputs.

The claims' encoding is deterministic and is checked byte for byte; ECDSA is randomized, so the
receipt and the chip's certificate are verify-only: a port must verify them, not reproduce them.

    python tests/vectors/generate_receipt.py
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, public_key_der
from trustprov.formats import cbor
from trustprov.formats.receipt import DeviceKey, ReceiptClaims, make_receipt

HERE = Path(__file__).parent
CA_SCALAR = int("11" * 32, 16)
CHIP_SCALAR = int("22" * 32, 16)
DEVICE_SCALAR = int("33" * 32, 16)
OTHER_SCALAR = int("44" * 32, 16)  # not the chip's key: a receipt it signs is forged
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
        and "must_fail" in old
    )


def must_fail(receipt: bytes, certificate: bytes) -> list[dict[str, str]]:
    """Receipts a verifier refuses under the chip's key (6.8, `forged`), each from the good one
    changed in one way: its claims altered after signing, signed by another key, its signature
    with one bit flipped."""
    tag = cbor2.loads(receipt)
    protected, unprotected, _payload, signature = tag.value
    altered = dataclasses.replace(CLAIMS, counter=CLAIMS.counter + 1).to_payload()
    other = ec.derive_private_key(OTHER_SCALAR, ec.SECP256R1())
    flipped = signature[:-1] + bytes([signature[-1] ^ 0x01])
    return [
        {
            "name": "claims altered after signing (counter + 1)",
            "receipt": cbor.encode(
                cbor2.CBORTag(18, [protected, unprotected, altered, signature])
            ).hex(),
        },
        {
            "name": "signed by another key",
            "receipt": make_receipt(
                CLAIMS, certificate, lambda m: SIGNATURE_ALGORITHMS["ES256"].sign(other, m)
            ).hex(),
        },
        {
            "name": "a bit of the signature flipped",
            "receipt": cbor.encode(
                cbor2.CBORTag(18, [protected, unprotected, tag.value[2], flipped])
            ).hex(),
        },
    ]


def main() -> None:
    ca = ec.derive_private_key(CA_SCALAR, ec.SECP256R1())
    chip = ec.derive_private_key(CHIP_SCALAR, ec.SECP256R1())
    path = HERE / "receipt.json"
    if _unchanged(path, ca, chip):
        return
    if path.exists():  # only what is new is signed anew: the recorded receipt is kept
        old = json.loads(path.read_text())
        if (
            old.get("ca_public_key") == public_key_der(ca).hex()
            and old.get("chip_public_key") == public_key_der(chip).hex()
            and old.get("claims_payload") == CLAIMS.to_payload().hex()
        ):
            receipt, der = bytes.fromhex(old["receipt"]), bytes.fromhex(old["chip_certificate"])
            old["must_fail"] = must_fail(receipt, der)
            path.write_text(json.dumps(old, indent=2) + "\n")
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
        "must_fail": must_fail(receipt, der),
    }
    (HERE / "receipt.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
