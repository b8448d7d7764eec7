"""The receipt format (docs/protocol.md 6.8): round trip, the exact bytes of the claims, and a
parser that refuses anything but a receipt, each with a typed error."""

from __future__ import annotations

import dataclasses

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.receipt import (
    MAX_RECEIPT,
    PROTECTED,
    DeviceKey,
    Receipt,
    ReceiptClaims,
    make_receipt,
)

CLAIMS = ReceiptClaims(
    uid=bytes(range(16)),
    lot="LOT-A",
    bundle_id=bytes(range(16, 32)),
    manifest_digest=bytes(32),
    installed_digest=bytes([1]) * 32,
    domain_id=bytes([2]) * 16,
    epoch=1,
    software_name="trustprov-provisioning",
    software_version="1.0",
    security_version=1,
    lifecycle=2,
    counter=1,
    device_keys=(DeviceKey(9, "cloud", b"\x30" * 91),),
)


def _signed(claims: ReceiptClaims = CLAIMS) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return make_receipt(claims, b"cert", lambda m: SIGNATURE_ALGORITHMS["ES256"].sign(key, m)), key


def test_round_trip_and_verify() -> None:
    data, key = _signed()
    r = Receipt.from_bytes(data)
    assert r.claims == CLAIMS
    assert r.certificate == b"cert"
    r.verify(key.public_key())
    with pytest.raises(VerificationError):
        r.verify(ec.generate_private_key(ec.SECP256R1()).public_key())


def test_claim_labels_are_the_documented_ones() -> None:
    """docs/protocol.md 6.8: registered EAT labels, private-use ones below -65536."""
    m = cbor2.loads(CLAIMS.to_payload())
    assert m[256] == b"\x01" + CLAIMS.uid  # ueid, type RAND
    assert m[265] == "tag:trustprov.dev,2026:receipt/1"
    assert m[275] == 3
    assert m[270] == "trustprov-provisioning"
    assert m[271] == ["1.0"]
    assert m[-70007] == 1
    assert m[-70008] == [[9, "cloud", b"\x30" * 91]]
    assert set(m) == {256, 265, 270, 271, 275, *range(-70010, -70000)}
    assert bytes.fromhex("a10126") == PROTECTED


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: cbor2.CBORTag(17, v.value),  # a COSE_Mac0
        lambda v: cbor2.CBORTag(18, v.value[:3]),
        lambda v: cbor2.CBORTag(18, [cbor.encode({1: -35}), *v.value[1:]]),  # ES384
        lambda v: cbor2.CBORTag(18, [v.value[0], {}, *v.value[2:]]),  # no x5chain
        lambda v: cbor2.CBORTag(18, [*v.value[:3], b"\x00" * 63]),
        lambda v: cbor2.CBORTag(
            18, [*v.value[:2], cbor.encode({256: b"\x01" + bytes(16)}), v.value[3]]
        ),
        lambda v: cbor2.CBORTag(18, [*v.value[:2], cbor.encode([1]), v.value[3]]),
    ],
)
def test_parser_refuses_what_is_not_a_receipt(mutate: object) -> None:
    data, _ = _signed()
    bad = cbor2.dumps(mutate(cbor2.loads(data)))  # type: ignore[operator]
    with pytest.raises(FormatError):
        Receipt.from_bytes(bad)


@pytest.mark.parametrize(
    "change",
    [
        {"uid": bytes(15)},
        {"lot": ""},
        {"bundle_id": bytes(8)},
        {"counter": -1},
        {"lifecycle": 256},
        {"device_keys": (DeviceKey(256, "k", b"x"),)},
    ],
)
def test_claims_out_of_bounds_are_refused(change: dict[str, object]) -> None:
    claims = dataclasses.replace(CLAIMS, **change)  # type: ignore[arg-type]
    data, _ = _signed(claims)
    with pytest.raises(FormatError):
        Receipt.from_bytes(data)


def test_size_and_shape_are_bounded() -> None:
    with pytest.raises(FormatError):
        Receipt.from_bytes(b"\xd2" + bytes(MAX_RECEIPT))
    many = dataclasses.replace(CLAIMS, device_keys=(DeviceKey(1, "k", b"x"),) * 200)
    data, _ = _signed(many)
    with pytest.raises(FormatError):
        Receipt.from_bytes(data)
