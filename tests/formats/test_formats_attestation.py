"""The attestation token (docs/protocol.md 8.8): round trip, its challenge, a profile that no
receipt shares, and a parser that refuses anything else with a typed error."""

from __future__ import annotations

import dataclasses

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS
from trustprov.errors import FormatError, TrustprovError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.attestation import (
    CHALLENGE_LEN,
    Attestation,
    AttestationClaims,
    make_token,
)
from trustprov.formats.receipt import Receipt, ReceiptClaims, make_receipt

CHALLENGE = bytes(range(32))
CLAIMS = AttestationClaims(
    nonce=CHALLENGE,
    uid=bytes(range(16)),
    lot="LOT-A",
    lifecycle=2,
    counter=1,
    installed_digest=bytes([1]) * 32,
    bundle_id=bytes(range(16, 32)),
    domain_id=bytes([2]) * 16,
    epoch=1,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_KEY = ec.generate_private_key(ec.SECP256R1())


def _sign(message: bytes) -> bytes:
    return SIGNATURE_ALGORITHMS["ES256"].sign(_KEY, message)


def test_round_trip_and_verify_over_its_challenge() -> None:
    token = Attestation.from_bytes(make_token(CLAIMS, b"cert", _sign))
    assert token.claims == CLAIMS
    assert token.certificate == b"cert"
    token.verify(_KEY.public_key(), CHALLENGE)
    with pytest.raises(VerificationError) as e:
        token.verify(_KEY.public_key(), bytes(CHALLENGE_LEN))  # a replay answers another
    assert e.value.code == "bad-attestation"
    with pytest.raises(VerificationError):
        token.verify(ec.generate_private_key(ec.SECP256R1()).public_key(), CHALLENGE)


def test_a_chip_holding_nothing_attests_nulls() -> None:
    blank = dataclasses.replace(
        CLAIMS, installed_digest=None, bundle_id=None, domain_id=None, epoch=None, lifecycle=1
    )
    assert Attestation.from_bytes(make_token(blank, b"c", _sign)).claims == blank


def test_claims_use_eat_nonce_and_their_own_profile() -> None:
    m = cbor2.loads(CLAIMS.to_payload())
    assert m[10] == CHALLENGE  # eat_nonce
    assert m[265] == "tag:trustprov.dev,2026:attestation/1"
    assert m[256] == b"\x01" + CLAIMS.uid


def test_a_receipt_is_no_attestation_and_an_attestation_no_receipt() -> None:
    receipt_claims = ReceiptClaims(
        uid=CLAIMS.uid,
        lot="LOT-A",
        bundle_id=bytes(16),
        manifest_digest=bytes(32),
        installed_digest=bytes(32),
        domain_id=bytes(16),
        epoch=1,
        software_name="sw",
        software_version="1",
        security_version=1,
        lifecycle=2,
        counter=1,
    )
    with pytest.raises(FormatError):
        Attestation.from_bytes(make_receipt(receipt_claims, b"c", _sign))
    with pytest.raises(FormatError):
        Receipt.from_bytes(make_token(CLAIMS, b"c", _sign))


@pytest.mark.parametrize(
    "change",
    [
        {10: bytes(31)},  # a challenge of another size
        {265: "tag:trustprov.dev,2026:receipt/1"},
        {-70004: None},  # installed claims half null
        {-70001: ""},
        {99: 1},  # an unknown claim
    ],
)
def test_refused_claims(change: dict[int, object]) -> None:
    m = {**cbor2.loads(CLAIMS.to_payload()), **change}
    with pytest.raises(FormatError):
        AttestationClaims.from_payload(cbor.encode(m))


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_are_refused_with_a_typed_error(data: bytes) -> None:
    try:
        parsed = Attestation.from_bytes(data)
    except TrustprovError:
        return
    assert isinstance(parsed, Attestation)


@FUZZ
@given(cut=st.integers(0, 400), bit=st.integers(0, 8 * 400 - 1))
def test_flipped_and_truncated_tokens_parse_or_are_refused(cut: int, bit: int) -> None:
    good = make_token(CLAIMS, b"cert", _sign)
    flipped = bytearray(good)
    flipped[(bit // 8) % len(good)] ^= 1 << (bit % 8)
    for data in (good[:cut], bytes(flipped)):
        try:
            parsed = Attestation.from_bytes(data)
        except TrustprovError:
            continue
        assert isinstance(parsed, Attestation)
