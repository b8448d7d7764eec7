"""The receipt vector (tests/vectors/receipt.json, docs/protocol.md 6.8): the claims encode to the
recorded bytes; the recorded receipt parses to the claims and verifies (verify-only: ECDSA is
randomized), and its certificate to the recorded CA key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from generate_receipt import CLAIMS

from trustprov.crypto.keys import load_public_key
from trustprov.errors import ArtifactError
from trustprov.formats.receipt import Receipt

VECTOR = json.loads((Path(__file__).parent / "receipt.json").read_text())


def test_claims_encode_to_the_vector() -> None:
    assert CLAIMS.to_payload().hex() == VECTOR["claims_payload"]


def test_the_vector_receipt_verifies() -> None:
    r = Receipt.from_bytes(bytes.fromhex(VECTOR["receipt"]))
    assert r.claims == CLAIMS
    assert r.certificate.hex() == VECTOR["chip_certificate"]
    r.verify(load_public_key(bytes.fromhex(VECTOR["chip_public_key"])))  # type: ignore[arg-type]
    cert = x509.load_der_x509_certificate(r.certificate)
    ca = load_public_key(bytes.fromhex(VECTOR["ca_public_key"]))
    assert isinstance(ca, ec.EllipticCurvePublicKey)
    ca.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]


@pytest.mark.parametrize("case", VECTOR["must_fail"], ids=lambda c: c["name"])
def test_each_forged_vector_receipt_is_refused(case: dict[str, str]) -> None:
    key = load_public_key(bytes.fromhex(VECTOR["chip_public_key"]))
    with pytest.raises(ArtifactError):
        Receipt.from_bytes(bytes.fromhex(case["receipt"])).verify(key)  # type: ignore[arg-type]


def test_the_forged_vectors_are_three() -> None:
    names = [c["name"] for c in VECTOR["must_fail"]]
    assert len(names) == len(set(names)) == 3
