"""COSE structures (RFC 9052): Sign1 (tag 18), Encrypt0 (tag 16), Mac0 (tag 17), and Sign (tag
98) with one to `MAX_SIGNATURES` signatures, each ``[protected, unprotected, signature]``.

Only the layout lives here: the protected header as a bstr-wrapped map, the unprotected map, the
payload, and the ToBeSigned / Enc_structure / MAC_structure that the cryptography runs over.
Artifact classes (software, sealed values, manifest) give the header fields their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cbor2

from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS, Shape

TAG_SIGN1 = 18
TAG_ENCRYPT0 = 16
TAG_MAC0 = 17
TAG_SIGN = 98
_NAMES = {
    TAG_SIGN1: "COSE_Sign1",
    TAG_ENCRYPT0: "COSE_Encrypt0",
    TAG_MAC0: "COSE_Mac0",
    TAG_SIGN: "COSE_Sign",
}
#: a COSE_Sign carries at most this many signatures (a hybrid has two)
MAX_SIGNATURES = 4
COSE_TAGS = frozenset(_NAMES)

# header labels (RFC 9052 section 3.1)
ALG = 1
CONTENT_TYPE = 3
IV = 5


@dataclass(frozen=True)
class CoseSignature:
    """One COSE_Signature of a COSE_Sign: its own protected header names its algorithm."""

    protected_bytes: bytes
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    signature: bytes

    def to_cbor(self) -> list[Any]:
        return [self.protected_bytes, self.unprotected, self.signature]


@dataclass(frozen=True)
class CoseMessage:
    """A decoded COSE message. ``protected_bytes`` are kept exactly as received (they are what
    the signature, MAC or AEAD covers); ``body`` is the payload or ciphertext."""

    tag: int
    protected_bytes: bytes
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    body: bytes = field(repr=False)
    auth: bytes = b""  # signature or MAC tag; empty for Encrypt0 and Sign
    signatures: tuple[CoseSignature, ...] = ()  # COSE_Sign only

    @property
    def kind(self) -> str:
        return _NAMES[self.tag]

    def to_bytes(self) -> bytes:
        items: list[Any] = [self.protected_bytes, self.unprotected, self.body]
        if self.tag == TAG_SIGN:
            items.append([s.to_cbor() for s in self.signatures])
        elif self.tag != TAG_ENCRYPT0:
            items.append(self.auth)
        return cbor.encode(cbor2.CBORTag(self.tag, items))

    # the structures the cryptography runs over (external_aad is always empty here)
    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected_bytes, self.body)

    def to_be_signed_by(self, signature: CoseSignature) -> bytes:
        """COSE_Sign: the Sig_structure of one of its signatures."""
        return sign_structure(self.protected_bytes, signature.protected_bytes, self.body)

    def enc_structure(self) -> bytes:
        return cbor.encode(["Encrypt0", self.protected_bytes, b""])

    def mac_structure(self) -> bytes:
        return mac_structure(self.protected_bytes, self.body)


def sig_structure(protected_bytes: bytes, payload: bytes) -> bytes:
    return cbor.encode(["Signature1", protected_bytes, b"", payload])


def sign_structure(body_protected: bytes, sign_protected: bytes, payload: bytes) -> bytes:
    return cbor.encode(["Signature", body_protected, sign_protected, b"", payload])


def mac_structure(protected_bytes: bytes, payload: bytes) -> bytes:
    return cbor.encode(["MAC0", protected_bytes, b"", payload])


def encode_protected(header: dict[Any, Any]) -> bytes:
    return cbor.encode(header)


def decode(
    data: bytes, tag: int, *, limit: int, what: str, shape: Shape = LIMITS.cbor_default_shape
) -> CoseMessage:
    """Parse a tagged COSE message of kind ``tag``, of at most ``limit`` bytes and ``shape``;
    anything else is a `FormatError`."""
    # any COSE tag passes the scan, so that the wrong one is named as such below
    value = cbor.decode(data, limit=limit, what=what, shape=shape, tags=COSE_TAGS)
    if not isinstance(value, cbor2.CBORTag) or value.tag != tag:
        raise FormatError(f"{what}: not a {_NAMES[tag]} (CBOR tag {tag})")
    items = value.value
    size = 3 if tag == TAG_ENCRYPT0 else 4
    if not isinstance(items, list) or len(items) != size:
        raise FormatError(f"{what}: {_NAMES[tag]} must be an array of {size}")
    protected_bytes, protected, unprotected = _headers(items, limit=limit, what=what)
    body = cbor.expect_bstr(items[2], f"{what}: payload")
    if tag == TAG_SIGN:
        signatures = _signatures(items[3], limit=limit, what=what)
        return CoseMessage(tag, protected_bytes, protected, unprotected, body, b"", signatures)
    auth = cbor.expect_bstr(items[3], f"{what}: tag") if tag != TAG_ENCRYPT0 else b""
    return CoseMessage(tag, protected_bytes, protected, unprotected, body, auth)


# the head of each signed kind's tag, in its shortest form (RFC 8949 section 4.2.1)
_SIGNED_HEADS = ((b"\xd2", TAG_SIGN1), (b"\xd8\x62", TAG_SIGN))


def decode_signed(
    data: bytes, *, limit: int, what: str, shape: Shape = LIMITS.cbor_default_shape
) -> CoseMessage:
    """A COSE_Sign1 or a COSE_Sign, whichever the tag says; anything else is a `FormatError`.
    The tag is read from the first bytes, so the message is decoded once."""
    for head, tag in _SIGNED_HEADS:
        if data.startswith(head):
            return decode(data, tag, limit=limit, what=what, shape=shape)
    raise FormatError(f"{what}: not a COSE_Sign1 (tag 18) or COSE_Sign (tag 98)")


def _headers(
    items: list[Any], *, limit: int, what: str
) -> tuple[bytes, dict[Any, Any], dict[Any, Any]]:
    """The protected header (bstr-wrapped, non-empty, bounded) and the unprotected map of a
    COSE message or COSE_Signature, which may not share a label."""
    protected_bytes = cbor.expect_bstr(items[0], f"{what}: protected header")
    if not protected_bytes:
        raise FormatError(f"{what}: empty protected header")
    protected = cbor.expect(
        cbor.decode(
            protected_bytes,
            limit=limit,
            what=f"{what}: protected header",
            shape=LIMITS.protected_header_shape,
        ),
        dict,
        f"{what}: protected header",
    )
    unprotected = cbor.expect(items[1], dict, f"{what}: unprotected header")
    if protected.keys() & unprotected.keys():
        raise FormatError(f"{what}: a header label is both protected and unprotected")
    return protected_bytes, protected, unprotected


def _signatures(value: Any, *, limit: int, what: str) -> tuple[CoseSignature, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SIGNATURES:
        raise FormatError(f"{what}: COSE_Sign needs 1..{MAX_SIGNATURES} signatures")
    out = []
    for n, item in enumerate(value):
        w = f"{what}: signature {n}"
        if not isinstance(item, list) or len(item) != 3:
            raise FormatError(f"{w}: COSE_Signature must be an array of 3")
        protected_bytes, protected, unprotected = _headers(item, limit=limit, what=w)
        signature = cbor.expect_bstr(item[2], f"{w}: signature")
        out.append(CoseSignature(protected_bytes, protected, unprotected, signature))
    return tuple(out)
