"""trustprov.formats.sealed: sealed values as COSE_Encrypt0 (A256GCM)."""

from __future__ import annotations

import re
from typing import Any

import cbor2
import pytest

from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cose
from trustprov.formats.sealed import MAX_PLAINTEXT, PLAINTEXT_LENS, SEALED_KINDS, SealedValue

KEY = bytes([0x44]) * 32
OTHER_KEY = bytes([0x45]) * 32
FAMILY = b"FAMILY01"
NONCE = bytes(range(12))
SECRET = bytes(range(100, 132))


def seal(kind: str = "oem-share", plaintext: bytes = SECRET, **kw: Any) -> SealedValue:
    return SealedValue.seal(
        kw.get("key", KEY), kind, kw.get("family", FAMILY), kw.get("nonce", NONCE), plaintext
    )


def forge(
    sv: SealedValue,
    *,
    header: dict[Any, Any] | None = None,
    unprotected: dict[Any, Any] | None = None,
    body: bytes | None = None,
) -> bytes:
    m = sv.message
    h = m.protected if header is None else header
    protected = m.protected_bytes if header is None else cose.encode_protected(h)
    u = m.unprotected if unprotected is None else unprotected
    return cose.CoseMessage(
        cose.TAG_ENCRYPT0, protected, h, u, m.body if body is None else body
    ).to_bytes()


def header_with(sv: SealedValue, **changes: Any) -> dict[Any, Any]:
    h = dict(sv.message.protected)
    for k, v in changes.items():
        key = cose.ALG if k == "alg" else "tp-" + k
        if v is None:
            h.pop(key, None)
        else:
            h[key] = v
    return h


@pytest.mark.parametrize("kind", SEALED_KINDS)
@pytest.mark.parametrize("size", [1, 16, 32, MAX_PLAINTEXT])
def test_round_trip(kind: str, size: int) -> None:
    plaintext = bytes(range(size))
    sv = seal(kind, plaintext)
    parsed = SealedValue.from_bytes(sv.to_bytes(), kind)
    assert parsed.kind == kind
    assert parsed.family_id == FAMILY
    assert SealedValue.from_bytes(sv.to_bytes()).kind == kind
    assert parsed.to_bytes() == sv.to_bytes()
    if size in PLAINTEXT_LENS[kind]:
        assert parsed.open(KEY) == plaintext
    else:  # authentic, but not what a value of this kind can be
        with pytest.raises(FormatError, match="wrong length"):
            parsed.open(KEY)


def test_layout() -> None:
    value = cbor2.loads(seal().to_bytes())
    assert value.tag == 16
    protected, unprotected, ciphertext = value.value
    assert cbor2.loads(protected) == {1: 3, "tp-value": "oem-share", "tp-family": FAMILY}
    assert unprotected == {5: NONCE}
    assert len(ciphertext) == len(SECRET) + 16


@pytest.mark.parametrize(
    ("kind", "expected"), [(k, e) for k in SEALED_KINDS for e in SEALED_KINDS if k != e]
)
def test_wrong_kind_raises(kind: str, expected: str) -> None:
    named = f"ENC({expected.upper().replace('-', '_')})"  # as the documents name it
    with pytest.raises(FormatError, match=re.escape(f"not {named}")):
        SealedValue.from_bytes(seal(kind).to_bytes(), expected)


def test_wrong_key_raises() -> None:
    sv = SealedValue.from_bytes(seal().to_bytes())
    with pytest.raises(VerificationError):
        sv.open(OTHER_KEY)


@pytest.mark.parametrize("index", [0, 10, 31, 32, 47])
def test_tampered_ciphertext_raises(index: int) -> None:
    sv = seal()
    body = bytearray(sv.message.body)
    body[index] ^= 1
    parsed = SealedValue.from_bytes(forge(sv, body=bytes(body)))
    with pytest.raises(VerificationError):
        parsed.open(KEY)


def test_other_iv_raises() -> None:
    sv = seal()
    parsed = SealedValue.from_bytes(forge(sv, unprotected={cose.IV: bytes(12)}))
    with pytest.raises(VerificationError):
        parsed.open(KEY)


@pytest.mark.parametrize("kind", ["oem-rnd-input", "rnd-share"])
def test_kind_is_bound_by_the_aead(kind: str) -> None:
    """Relabelling a sealed oem-share as another kind parses, but never opens."""
    sv = seal("oem-share")
    parsed = SealedValue.from_bytes(forge(sv, header=header_with(sv, value=kind)), kind)
    with pytest.raises(VerificationError):
        parsed.open(KEY)


def test_family_is_bound_by_the_aead() -> None:
    sv = seal()
    parsed = SealedValue.from_bytes(forge(sv, header=header_with(sv, family=b"FAMILY02")))
    assert parsed.family_id == b"FAMILY02"
    with pytest.raises(VerificationError):
        parsed.open(KEY)


@pytest.mark.parametrize(
    "changes",
    [
        {"alg": 1},  # A128GCM
        {"alg": 31},
        {"alg": True},
        {"alg": "A256GCM"},
        {"alg": None},
        {"value": "k-mk"},
        {"value": None},
        {"value": 1},
        {"family": None},
        {"family": b"SHORT"},
        {"family": b"FAMILY0123"},
        {"family": "FAMILY01"},
        {"extra": 1},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}",
)
def test_bad_protected_header(changes: dict[str, Any]) -> None:
    sv = seal()
    with pytest.raises(FormatError):
        SealedValue.from_bytes(forge(sv, header=header_with(sv, **changes)))


@pytest.mark.parametrize(
    "unprotected",
    [{}, {cose.IV: bytes(11)}, {cose.IV: bytes(13)}, {cose.IV: "iv"}, {cose.IV: NONCE, 4: b"k"}],
    ids=["none", "short", "long", "text", "extra"],
)
def test_bad_unprotected_header(unprotected: dict[Any, Any]) -> None:
    with pytest.raises(FormatError):
        SealedValue.from_bytes(forge(seal(), unprotected=unprotected))


@pytest.mark.parametrize("length", [0, 1, 16, MAX_PLAINTEXT + 17, 500])
def test_ciphertext_length_out_of_range(length: int) -> None:
    with pytest.raises(FormatError, match="ciphertext length"):
        SealedValue.from_bytes(forge(seal(), body=bytes(length)))


@pytest.mark.parametrize("size", [0, MAX_PLAINTEXT + 1])
def test_seal_refuses_plaintext_out_of_range(size: int) -> None:
    with pytest.raises(FormatError):
        seal(plaintext=bytes(size))


def test_size_limit() -> None:
    sv = seal()
    padded = cose.CoseMessage(
        cose.TAG_ENCRYPT0,
        sv.message.protected_bytes,
        sv.message.protected,
        {cose.IV: NONCE, -70000: bytes(1100)},
        sv.message.body,
    ).to_bytes()
    with pytest.raises(FormatError, match="exceeds the limit"):
        SealedValue.from_bytes(padded)


def test_other_cose_messages_are_refused() -> None:
    sv = seal()
    m = sv.message
    mac0 = cose.CoseMessage(cose.TAG_MAC0, m.protected_bytes, m.protected, {}, m.body, b"t" * 16)
    with pytest.raises(FormatError, match="COSE_Encrypt0"):
        SealedValue.from_bytes(mac0.to_bytes())


def test_repr_shows_no_ciphertext() -> None:
    sv = seal()
    text = repr(sv)
    assert sv.message.body.hex() not in text
    assert repr(sv.message.body) not in text


def test_float_alg_is_refused() -> None:
    """alg must be the integer 3 (A256GCM). The parser refuses True, which Python equates with
    1; the float 3.0 (CBOR f9 4200), which Python equates with 3, must be refused the same way."""
    sv = seal()
    with pytest.raises(FormatError):
        SealedValue.from_bytes(forge(sv, header=header_with(sv, alg=3.0)))
