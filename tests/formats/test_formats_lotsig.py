"""trustprov.formats.lotsig: the ICM's signature on a lot manifest, checked by pycose too."""

from __future__ import annotations

import hashlib
import io

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import CoseKey
from pycose.messages import Sign1Message

from trustprov.crypto.keys import public_key_pem
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor, cose
from trustprov.formats.lotsig import HashingWriter, LotSignature, ManifestHash, key_id

MANIFEST = b'{"lot": "LOT-1", "family": "0102030405060708", "chips": []}\n'


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes = MANIFEST) -> LotSignature:
    return LotSignature.sign(
        key,
        lot="LOT-1",
        family_id=bytes.fromhex("0102030405060708"),
        chips=0,
        digest=ManifestHash.of_chunks([data]),
    )


def test_round_trip_and_verify(key: ec.EllipticCurvePrivateKey) -> None:
    sig = LotSignature.from_bytes(_sign(key).to_bytes())
    assert (sig.lot, sig.chips, sig.kid) == ("LOT-1", 0, key_id(key))
    assert sig.digest == hashlib.sha256(MANIFEST).digest()
    sig.verify(key.public_key(), hashlib.sha256(MANIFEST).digest())
    with pytest.raises(VerificationError):
        sig.verify(key.public_key(), hashlib.sha256(MANIFEST + b" ").digest())
    with pytest.raises(VerificationError, match="another key"):
        sig.verify(ec.generate_private_key(ec.SECP256R1()).public_key(), sig.digest)


def test_pycose_verifies_it(key: ec.EllipticCurvePrivateKey) -> None:
    msg = Sign1Message.decode(_sign(key).to_bytes())
    msg.key = CoseKey.from_pem_public_key(public_key_pem(key).decode("ascii"))
    assert msg.verify_signature() is True
    assert msg.payload == hashlib.sha256(MANIFEST).digest()
    assert msg.phdr["tp-lot"] == "LOT-1"


def test_hashing_writer_streams() -> None:
    out = io.BytesIO()
    w = HashingWriter(out)
    for part in (MANIFEST[:10], MANIFEST[10:]):
        w.write(part)
    assert out.getvalue() == MANIFEST
    assert (w.hash.digest(), w.hash.size) == (hashlib.sha256(MANIFEST).digest(), len(MANIFEST))


def test_parser_refusals(key: ec.EllipticCurvePrivateKey) -> None:
    m = _sign(key).message
    other = ec.generate_private_key(ec.SECP256R1())
    swapped_key = {"tp-key": LotSignature.sign(other, **_fields()).public_key}
    for bad in (
        cose.CoseMessage(m.tag, m.protected_bytes, m.protected, swapped_key, m.body, m.auth),
        cose.CoseMessage(m.tag, m.protected_bytes, m.protected, {}, m.body, m.auth),
        cose.CoseMessage(m.tag, m.protected_bytes, m.protected, m.unprotected, m.body, m.auth[:-1]),
        cose.CoseMessage(m.tag, m.protected_bytes, m.protected, m.unprotected, b"x", m.auth),
    ):
        with pytest.raises(FormatError):
            LotSignature.from_bytes(bad.to_bytes())
    with pytest.raises(FormatError):
        LotSignature.from_bytes(cbor.encode([1, 2]))


def _fields() -> dict[str, object]:
    return {"lot": "LOT-1", "family_id": bytes(8), "chips": 0, "digest": bytes(32)}
