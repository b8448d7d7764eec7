"""trustprov.formats.cose: layout of COSE_Sign1, COSE_Encrypt0, COSE_Mac0."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from trustprov.errors import FormatError
from trustprov.formats import cbor, cose

PROTECTED = {cose.ALG: -7, "tp-x": "y"}
P_BYTES = cose.encode_protected(PROTECTED)
ARITY = {cose.TAG_SIGN1: 4, cose.TAG_MAC0: 4, cose.TAG_ENCRYPT0: 3}
TAGS = [cose.TAG_SIGN1, cose.TAG_ENCRYPT0, cose.TAG_MAC0]
NAMES = {
    cose.TAG_SIGN1: "COSE_Sign1",
    cose.TAG_ENCRYPT0: "COSE_Encrypt0",
    cose.TAG_MAC0: "COSE_Mac0",
}


def items(tag: int) -> list[Any]:
    base: list[Any] = [P_BYTES, {cose.IV: b"\x01" * 12}, b"payload"]
    return [*base, b"tag-bytes"] if ARITY[tag] == 4 else base


def raw(tag: int, value: Any) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, value))


def decode(data: bytes, tag: int, limit: int = 4096) -> cose.CoseMessage:
    return cose.decode(data, tag, limit=limit, what="msg")


@pytest.mark.parametrize("tag", TAGS)
def test_round_trip(tag: int) -> None:
    m = decode(raw(tag, items(tag)), tag)
    assert m.tag == tag
    assert m.kind == NAMES[tag]
    assert m.protected_bytes == P_BYTES
    assert m.protected == PROTECTED
    assert m.unprotected == {cose.IV: b"\x01" * 12}
    assert m.body == b"payload"
    assert m.auth == (b"tag-bytes" if ARITY[tag] == 4 else b"")
    assert decode(m.to_bytes(), tag) == m
    assert m.to_bytes() == raw(tag, items(tag))


def test_protected_bytes_are_kept_as_received() -> None:
    """A non-canonical protected header (keys out of order) is kept byte for byte."""
    non_canonical = bytes.fromhex("a2") + cbor2.dumps("tp-x") + cbor2.dumps("y") + b"\x01\x26"
    assert non_canonical != cose.encode_protected({1: -7, "tp-x": "y"})
    value = [non_canonical, {}, b"p", b"s"]
    m = decode(raw(cose.TAG_SIGN1, value), cose.TAG_SIGN1)
    assert m.protected_bytes == non_canonical
    assert m.protected == {1: -7, "tp-x": "y"}
    assert m.to_be_signed() == cbor2.dumps(["Signature1", non_canonical, b"", b"p"])


def test_structures() -> None:
    assert cose.sig_structure(P_BYTES, b"p") == cbor.encode(["Signature1", P_BYTES, b"", b"p"])
    assert cose.mac_structure(P_BYTES, b"p") == cbor.encode(["MAC0", P_BYTES, b"", b"p"])
    m = decode(raw(cose.TAG_ENCRYPT0, items(cose.TAG_ENCRYPT0)), cose.TAG_ENCRYPT0)
    assert m.enc_structure() == cbor.encode(["Encrypt0", P_BYTES, b""])
    assert m.mac_structure() == cose.mac_structure(P_BYTES, b"payload")
    assert m.to_be_signed() == cose.sig_structure(P_BYTES, b"payload")


@pytest.mark.parametrize(
    ("tag", "other"), [(t, o) for t in TAGS for o in (*TAGS, 96, 97, 98, 24, 55799) if o != t]
)
def test_wrong_tag(tag: int, other: int) -> None:
    with pytest.raises(FormatError):
        decode(raw(other, items(tag)), tag)


@pytest.mark.parametrize("tag", TAGS)
def test_untagged(tag: int) -> None:
    with pytest.raises(FormatError, match="CBOR tag"):
        decode(cbor2.dumps(items(tag)), tag)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("delta", [-3, -1, 1, 2])
def test_wrong_arity(tag: int, delta: int) -> None:
    value = items(tag)
    value = value[: len(value) + delta] if delta < 0 else value + [b"x"] * delta
    with pytest.raises(FormatError, match="array of"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("body", [{"a": 1}, b"bytes", "text", 3, None])
def test_not_an_array(tag: int, body: Any) -> None:
    with pytest.raises(FormatError):
        decode(raw(tag, body), tag)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize(
    "protected",
    [PROTECTED, "text", None, 0, [P_BYTES]],
    ids=["map", "text", "null", "int", "array"],
)
def test_protected_not_bstr(tag: int, protected: Any) -> None:
    value = items(tag)
    value[0] = protected
    with pytest.raises(FormatError, match="protected header"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
def test_empty_protected_header(tag: int) -> None:
    value = items(tag)
    value[0] = b""
    with pytest.raises(FormatError, match="empty protected"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize(
    "protected",
    [cbor2.dumps([1, 2]), cbor2.dumps(5), b"\xff", b"\xa1\x01", cbor2.dumps({}) + b"\x00"],
    ids=["array", "int", "break", "truncated", "trailing"],
)
def test_protected_bstr_not_a_map(tag: int, protected: bytes) -> None:
    value = items(tag)
    value[0] = protected
    with pytest.raises(FormatError, match="protected header"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("unprotected", [[], b"", "x", None, 0])
def test_unprotected_not_a_map(tag: int, unprotected: Any) -> None:
    value = items(tag)
    value[1] = unprotected
    with pytest.raises(FormatError, match="unprotected header"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
def test_label_both_protected_and_unprotected(tag: int) -> None:
    value = items(tag)
    value[1] = {cose.ALG: -7}
    with pytest.raises(FormatError, match="both protected and unprotected"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("payload", [None, "text", 1, [b"x"]], ids=["nil", "text", "int", "array"])
def test_payload_not_bstr(tag: int, payload: Any) -> None:
    """Detached payloads (nil) are not part of any trustprov artifact."""
    value = items(tag)
    value[2] = payload
    with pytest.raises(FormatError, match="payload"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", [cose.TAG_SIGN1, cose.TAG_MAC0])
@pytest.mark.parametrize("auth", [None, "sig", 0, []])
def test_signature_or_tag_not_bstr(tag: int, auth: Any) -> None:
    value = items(tag)
    value[3] = auth
    with pytest.raises(FormatError, match="tag"):
        decode(raw(tag, value), tag)


@pytest.mark.parametrize("tag", TAGS)
def test_size_limit(tag: int) -> None:
    data = raw(tag, items(tag))
    assert decode(data, tag, limit=len(data)).tag == tag
    with pytest.raises(FormatError, match="exceeds the limit"):
        decode(data, tag, limit=len(data) - 1)


@pytest.mark.parametrize("tag", TAGS)
def test_trailing_bytes(tag: int) -> None:
    with pytest.raises(FormatError, match="trailing"):
        decode(raw(tag, items(tag)) + b"\x00", tag)


def test_repr_hides_the_body() -> None:
    m = decode(raw(cose.TAG_ENCRYPT0, [P_BYTES, {}, b"SECRET-CIPHERTEXT"]), cose.TAG_ENCRYPT0)
    assert "SECRET-CIPHERTEXT" not in repr(m)
