"""The attestation token: what a chip holds, signed by the chip over a host's fresh challenge
(docs/protocol.md 8.8). The boot ROM answers it to `rom.attest`, so a host settles a chip as
already holding a bundle from the chip's own signature, never from an unsigned status that
anything between the host and the chip could rewrite.

    COSE_Sign1 (tag 18) = [ protected: bstr .cbor {1: -7},
                            unprotected: {33: bstr},   ; x5chain: the chip's certificate DER
                            payload: bstr .cbor claims,
                            signature: bstr (64) ]

The receipt's shape (6.8), ES256 under the chip's identity key, with its own EAT profile
(`PROFILE`) and claim set, and the challenge in ``eat_nonce`` (claim 10): a receipt never parses
as an attestation nor an attestation as a receipt, and a token answers one challenge only.

Invariants: the payload is the canonical CBOR of `AttestationClaims` and nothing else is
accepted (every claim present, of its type and bounds, no unknown claim); a token is parsed
within `MAX_TOKEN` bytes and `TOKEN_SHAPE`; `Attestation.verify` raises, never returns a bool.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trustprov.crypto.digest import DIGEST_LEN
from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, PublicKey
from trustprov.crypto.schedule import DOMAIN_ID_LEN
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import BUNDLE_ID_LEN
from trustprov.formats.limits import Shape
from trustprov.formats.receipt import (
    C_BUNDLE_ID,
    C_COUNTER,
    C_DOMAIN,
    C_EPOCH,
    C_INSTALLED_DIGEST,
    C_LIFECYCLE,
    C_LOT,
    C_PROFILE,
    C_UEID,
    UEID_RAND,
    UID_LEN,
    chip_sign1,
    open_chip_sign1,
)

PROFILE = "tag:trustprov.dev,2026:attestation/1"
C_NONCE = 10  # eat_nonce (RFC 9711 section 4.1)
CHALLENGE_LEN = 32
MAX_TOKEN = 6 * 1024  # a certificate of at most 4 KiB and the claims
TOKEN_SHAPE = Shape(items=64, depth=4)
_CLAIMS = frozenset(
    {
        C_PROFILE,
        C_NONCE,
        C_UEID,
        C_LOT,
        C_LIFECYCLE,
        C_COUNTER,
        C_INSTALLED_DIGEST,
        C_BUNDLE_ID,
        C_DOMAIN,
        C_EPOCH,
    }
)
_SIGN1_TAG = frozenset({cose.TAG_SIGN1})


@dataclass(frozen=True)
class AttestationClaims:
    """What a chip holds when it answers: the installed fields are None when nothing is."""

    nonce: bytes
    uid: bytes
    lot: str
    lifecycle: int  # 1 MANUFACTURED, 2 PROVISIONED, 3 LOCKED
    counter: int  # the provisioning counter (OTP)
    installed_digest: bytes | None
    bundle_id: bytes | None
    domain_id: bytes | None
    epoch: int | None

    def to_payload(self) -> bytes:
        return cbor.encode(
            {
                C_PROFILE: PROFILE,
                C_NONCE: self.nonce,
                C_UEID: bytes([UEID_RAND]) + self.uid,
                C_LOT: self.lot,
                C_LIFECYCLE: self.lifecycle,
                C_COUNTER: self.counter,
                C_INSTALLED_DIGEST: self.installed_digest,
                C_BUNDLE_ID: self.bundle_id,
                C_DOMAIN: self.domain_id,
                C_EPOCH: self.epoch,
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> AttestationClaims:
        what = "attestation claims"
        value = cbor.decode(payload, limit=MAX_TOKEN, what=what, shape=TOKEN_SHAPE)
        m = cbor.expect_map(value, what, _CLAIMS)
        if m[C_PROFILE] != PROFILE:
            raise FormatError(f"{what}: not a trustprov attestation token")
        ueid = cbor.expect_bstr(m[C_UEID], f"{what}: ueid", 1 + UID_LEN)
        if ueid[0] != UEID_RAND:
            raise FormatError(f"{what}: ueid must be of type RAND (0x01)")
        installed = (m[C_INSTALLED_DIGEST], m[C_BUNDLE_ID], m[C_DOMAIN], m[C_EPOCH])
        if any(v is None for v in installed) and any(v is not None for v in installed):
            raise FormatError(f"{what}: the installed claims are all null or none is")
        return cls(
            nonce=cbor.expect_bstr(m[C_NONCE], f"{what}: nonce", CHALLENGE_LEN),
            uid=ueid[1:],
            lot=cbor.expect_name(m[C_LOT], f"{what}: lot", 200),
            lifecycle=cbor.expect_uint(m[C_LIFECYCLE], f"{what}: lifecycle", 255),
            counter=cbor.expect_uint(m[C_COUNTER], f"{what}: counter", 2**32 - 1),
            installed_digest=_opt(m[C_INSTALLED_DIGEST], f"{what}: installed digest", DIGEST_LEN),
            bundle_id=_opt(m[C_BUNDLE_ID], f"{what}: bundle id", BUNDLE_ID_LEN),
            domain_id=_opt(m[C_DOMAIN], f"{what}: domain", DOMAIN_ID_LEN),
            epoch=None
            if m[C_EPOCH] is None
            else cbor.expect_uint(m[C_EPOCH], f"{what}: epoch", 2**32 - 1),
        )


def _opt(value: Any, what: str, size: int) -> bytes | None:
    return None if value is None else cbor.expect_bstr(value, what, size)


def make_token(
    claims: AttestationClaims, certificate: bytes, sign: Callable[[bytes], bytes]
) -> bytes:
    """The signed token; ``sign`` is the chip's ES256 over the Sig_structure."""
    return chip_sign1(claims.to_payload(), certificate, sign)


@dataclass(frozen=True)
class Attestation:
    """A parsed token; its signature is not checked until `verify`."""

    claims: AttestationClaims
    certificate: bytes  # DER, from the unprotected x5chain: the chip's word, not an anchor
    message: cose.CoseMessage = field(repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Attestation:
        cert, payload, message = open_chip_sign1(
            data, limit=MAX_TOKEN, shape=TOKEN_SHAPE, what="attestation token"
        )
        return cls(AttestationClaims.from_payload(payload), cert, message)

    def verify(self, key: PublicKey, challenge: bytes) -> None:
        """Raise `VerificationError` unless the chip key ``key`` signed this token over
        ``challenge``: the signature first, then the nonce."""
        SIGNATURE_ALGORITHMS["ES256"].verify(key, self.message.auth, self.message.to_be_signed())
        if not hmac.compare_digest(self.claims.nonce, challenge):
            raise VerificationError(
                "the attestation answers another challenge (a replayed token)",
                code="bad-attestation",
            )
