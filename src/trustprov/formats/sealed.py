"""Sealed values: ENC(OEM_SHARE), ENC(OEM_RND_INPUT), ENC(RND_SHARE) as COSE_Encrypt0.

Protected header::

    1 (alg)       3 (A256GCM)
    "tp-value"    "oem-share" | "oem-rnd-input" | "rnd-share"
    "tp-family"   bstr .8     the chip family id

Unprotected header: 5 (IV), 12 random bytes from the chip's TRNG. The protected header is in the
AEAD's associated data (Enc_structure), so one sealed value cannot be passed off as another kind or
as another family's. The key is K_OEM_SHARE for "oem-share" and K_OEM_MASTER_SHARE for the others:
only the chip can open them, and which key opens what is fixed by the value's kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trustprov.crypto.aead import A256GCM
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor, cose
from trustprov.formats.limits import LIMITS

SealedKind = Literal["oem-share", "oem-rnd-input", "rnd-share"]
SEALED_KINDS: tuple[SealedKind, ...] = ("oem-share", "oem-rnd-input", "rnd-share")
H_VALUE, H_FAMILY = "tp-value", "tp-family"
MAX_PLAINTEXT = 64
#: what each kind holds: 32-byte secrets, and OEM_RND_INPUT of 128 or 256 bits
PLAINTEXT_LENS: dict[str, tuple[int, ...]] = {
    "oem-share": (32,),
    "oem-rnd-input": (16, 32),
    "rnd-share": (32,),
}


@dataclass(frozen=True)
class SealedValue:
    kind: SealedKind
    family_id: bytes
    message: cose.CoseMessage = field(repr=False)

    @classmethod
    def seal(
        cls, key: bytes, kind: SealedKind, family_id: bytes, nonce: bytes, plaintext: bytes
    ) -> SealedValue:
        header: dict[Any, Any] = {cose.ALG: A256GCM.cose_id, H_VALUE: kind, H_FAMILY: family_id}
        protected = cose.encode_protected(header)
        unprotected = {cose.IV: nonce}
        shell = cose.CoseMessage(cose.TAG_ENCRYPT0, protected, header, unprotected, b"")
        ciphertext = A256GCM.seal(key, nonce, plaintext, shell.enc_structure())
        return cls.from_message(
            cose.CoseMessage(cose.TAG_ENCRYPT0, protected, header, unprotected, ciphertext)
        )

    @classmethod
    def from_bytes(cls, data: bytes, expected: SealedKind | None = None) -> SealedValue:
        what = f"sealed value{f' ({expected})' if expected else ''}"
        value = cls.from_message(
            cose.decode(
                data,
                cose.TAG_ENCRYPT0,
                limit=LIMITS.sealed_value,
                what=what,
                shape=LIMITS.sealed_value_shape,
            )
        )
        if expected is not None and value.kind != expected:
            raise FormatError(f"{what}: this is {_enc(value.kind)}, not {_enc(expected)}")
        return value

    @classmethod
    def from_message(cls, m: cose.CoseMessage) -> SealedValue:
        what = "sealed value"
        h = cbor.expect_map(m.protected, what, {cose.ALG, H_VALUE, H_FAMILY})
        if h[cose.ALG] != A256GCM.cose_id or isinstance(h[cose.ALG], bool):
            raise FormatError(f"{what}: algorithm must be A256GCM")
        if h[H_VALUE] not in SEALED_KINDS:
            raise FormatError(f"{what}: unknown kind")
        u = cbor.expect_map(m.unprotected, f"{what}: unprotected header", {cose.IV})
        cbor.expect_bstr(u[cose.IV], f"{what}: IV", A256GCM.nonce_len)
        if not 16 < len(m.body) <= MAX_PLAINTEXT + 16:
            raise FormatError(f"{what}: ciphertext length out of range")
        family = cbor.expect_bstr(h[H_FAMILY], f"{what}: family", FAMILY_ID_LEN)
        return cls(kind=h[H_VALUE], family_id=family, message=m)

    def open(self, key: bytes) -> bytes:
        """The plaintext; raises `VerificationError` if the key or any byte is wrong, and
        `FormatError` if what was sealed has the wrong length for its kind."""
        m = self.message
        plaintext = A256GCM.open(key, m.unprotected[cose.IV], m.body, m.enc_structure())
        if len(plaintext) not in PLAINTEXT_LENS[self.kind]:
            raise FormatError(f"sealed {self.kind}: wrong length")
        return plaintext

    def to_bytes(self) -> bytes:
        return self.message.to_bytes()


def _enc(kind: str) -> str:
    """A sealed value's kind as the documents name it: "rnd-share" is ENC(RND_SHARE)."""
    return f"ENC({kind.upper().replace('-', '_')})"
