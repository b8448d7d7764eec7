"""The ICM's signature on a lot manifest: LOT_JSON.cose beside LOT_JSON.

A COSE_Sign1 (RFC 9052 section 4.2), ES256 under the ICM's lot-signing key, whose payload is the
SHA-256 of the lot manifest file's exact bytes (the idea of the COSE "hash envelope"): the
manifest names the lot, the family and every chip's UID and certificate, so the signature binds
them all, and neither writing nor checking it holds more than a hash state. A payload carried
whole would need its length before its first byte (the Sig_structure encodes it first), which a
writer streaming a lot of 2,000,000 chips learns only at the end::

    protected = {1: -7 (ES256), 3: "application/vnd.trustprov.lot-manifest-sha256",
                 4: kid = SHA-256(lot-signing public key, SubjectPublicKeyInfo DER),
                 "tp-lot": tstr, "tp-family": bstr .8, "tp-chips": uint}
    unprotected = {"tp-key": bstr}     the SubjectPublicKeyInfo DER the kid names
    payload = bstr .32                 SHA-256 of the manifest file
    signature = r || s                 32 bytes each

The header repeats the lot, family and chip count so that a reader can name the lot before it
parses the manifest; a reader checks them against the parsed manifest too. Invariant:
`LotSignature.verify` raises unless the signature verifies under the key given and that key is
the one the kid names; the embedded "tp-key" proves integrity only, never origin.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.crypto.digest import DIGEST_LEN, sha256
from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, PublicKey, load_public_key, public_key_der
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor, cose
from trustprov.formats.limits import Shape

CONTENT_TYPE = "application/vnd.trustprov.lot-manifest-sha256"
SUFFIX = ".cose"  # LOT_JSON.cose
KID = 4
ALG = SIGNATURE_ALGORITHMS["ES256"]
MAX_CHIPS = 2**32 - 1
_LIMIT = 4096
_SHAPE = Shape(items=32, depth=3)


def key_id(key: PublicKey | ec.EllipticCurvePrivateKey) -> bytes:
    return sha256(public_key_der(key))


class ManifestHash:
    """SHA-256 of a manifest's bytes as they stream past (written or read)."""

    def __init__(self) -> None:
        self._h = hashes.Hash(hashes.SHA256())
        self.size = 0

    def update(self, data: bytes) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> bytes:
        return self._h.finalize()

    @classmethod
    def of_chunks(cls, chunks: Iterable[bytes]) -> bytes:
        h = cls()
        for c in chunks:
            h.update(c)
        return h.digest()


class HashingWriter:
    """A binary writer that hashes what passes through it to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = ManifestHash()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self._out.write(data)


@dataclass(frozen=True)
class LotSignature:
    lot: str
    family_id: bytes
    chips: int
    digest: bytes
    kid: bytes
    public_key: bytes  # SPKI DER, as embedded
    message: cose.CoseMessage = field(repr=False)

    @classmethod
    def sign(
        cls,
        key: ec.EllipticCurvePrivateKey,
        *,
        lot: str,
        family_id: bytes,
        chips: int,
        digest: bytes,
    ) -> LotSignature:
        protected: dict[Any, Any] = {
            cose.ALG: ALG.cose_id,
            cose.CONTENT_TYPE: CONTENT_TYPE,
            KID: key_id(key),
            "tp-lot": lot,
            "tp-family": family_id,
            "tp-chips": chips,
        }
        pb = cose.encode_protected(protected)
        unprotected = {"tp-key": public_key_der(key)}
        signature = ALG.sign(key, cose.sig_structure(pb, digest))
        m = cose.CoseMessage(cose.TAG_SIGN1, pb, protected, unprotected, digest, signature)
        return cls.from_message(m)

    @classmethod
    def from_bytes(cls, data: bytes) -> LotSignature:
        what = "lot manifest signature"
        m = cose.decode(data, cose.TAG_SIGN1, limit=_LIMIT, what=what, shape=_SHAPE)
        return cls.from_message(m)

    @classmethod
    def from_message(cls, m: cose.CoseMessage) -> LotSignature:
        what = "lot manifest signature"
        h = cbor.expect_map(
            m.protected,
            f"{what}: protected header",
            {cose.ALG, cose.CONTENT_TYPE, KID, "tp-lot", "tp-family", "tp-chips"},
        )
        if h[cose.ALG] != ALG.cose_id or h[cose.CONTENT_TYPE] != CONTENT_TYPE:
            raise FormatError(f"{what}: not a trustprov lot signature (ES256 COSE_Sign1)")
        u = cbor.expect_map(m.unprotected, f"{what}: unprotected header", {"tp-key"})
        public = cbor.expect_bstr(u["tp-key"], f"{what}: key", max_len=1024)
        kid = cbor.expect_bstr(h[KID], f"{what}: kid", DIGEST_LEN)
        if not hmac.compare_digest(sha256(public), kid):
            raise FormatError(f"{what}: the embedded key is not the one its kid names")
        if len(m.auth) != 64:
            raise FormatError(f"{what}: an ES256 signature is 64 bytes")
        return cls(
            lot=cbor.expect_name(h["tp-lot"], f"{what}: lot", 64),
            family_id=cbor.expect_bstr(h["tp-family"], f"{what}: family", FAMILY_ID_LEN),
            chips=cbor.expect_uint(h["tp-chips"], f"{what}: chips", MAX_CHIPS),
            digest=cbor.expect_bstr(m.body, f"{what}: digest", DIGEST_LEN),
            kid=kid,
            public_key=public,
            message=m,
        )

    def to_bytes(self) -> bytes:
        return self.message.to_bytes()

    def embedded_key(self) -> PublicKey:
        try:
            return load_public_key(self.public_key)
        except (FormatError, ValueError) as e:
            raise FormatError("lot manifest signature: the embedded key does not load") from e

    def verify(self, key: PublicKey, digest: bytes) -> None:
        """Raise unless this signs ``digest`` (the manifest file's SHA-256) under ``key``."""
        if not hmac.compare_digest(key_id(key), self.kid):
            raise VerificationError(
                "the lot manifest is signed by another key than the ICM's lot-signing key",
                code="bad-signature",
            )
        ALG.verify(key, self.message.auth, self.message.to_be_signed())
        if not hmac.compare_digest(digest, self.digest):
            raise VerificationError(
                "the lot manifest is not the one its signature covers (changed, or another "
                "lot's signature)",
                code="bad-signature",
            )
