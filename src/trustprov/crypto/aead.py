"""AEAD and MAC algorithms by their COSE identifiers, over pyca/cryptography.

- A256GCM (COSE 3): 12-byte nonce, 16-byte tag.
- AES-CCM-16-128-256 (COSE 31): 13-byte nonce, 16-byte tag, 2-byte length field, so one message
  is at most 65,535 bytes: chunks sealed with CCM must stay below that (claim 6; see protocol.md).
- AES-CMAC-256/128 (private-use COSE id -65537, until COSE registers CMAC): 16-byte tag (claim 7).

Opening raises `VerificationError`; it never returns a flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

from trustprov.errors import VerificationError

TAG_LEN = 16


@dataclass(frozen=True)
class Aead:
    name: str
    cose_id: int
    nonce_len: int
    max_message: int

    def cipher(self, key: bytes) -> AESGCM | AESCCM:
        """The keyed cipher, to reuse over the chunks of one session."""
        return AESGCM(key) if self.cose_id == 3 else AESCCM(key, tag_length=TAG_LEN)

    def seal(
        self, key: bytes | AESGCM | AESCCM, nonce: bytes, plaintext: bytes, aad: bytes
    ) -> bytes:
        if len(nonce) != self.nonce_len:
            raise ValueError(f"{self.name} takes a {self.nonce_len}-byte nonce")
        if len(plaintext) > self.max_message:
            raise ValueError(f"{self.name} seals at most {self.max_message} bytes at once")
        cipher = self.cipher(key) if isinstance(key, bytes) else key
        return cipher.encrypt(nonce, plaintext, aad)

    def open(
        self, key: bytes | AESGCM | AESCCM, nonce: bytes, ciphertext: bytes, aad: bytes
    ) -> bytes:
        if len(nonce) != self.nonce_len or len(ciphertext) < TAG_LEN:
            raise VerificationError(f"{self.name}: bad nonce or ciphertext length", code="bad-aead")
        cipher = self.cipher(key) if isinstance(key, bytes) else key
        try:
            return cipher.decrypt(nonce, ciphertext, aad)
        except InvalidTag as e:
            raise VerificationError(f"{self.name}: authentication failed", code="bad-aead") from e


A256GCM = Aead("A256GCM", 3, 12, 2**36 - 32)
AES_CCM_16_128_256 = Aead("AES-CCM-16-128-256", 31, 13, 2**16 - 1)
AEADS = {a.name: a for a in (A256GCM, AES_CCM_16_128_256)}
AEAD_BY_ID = {a.cose_id: a for a in AEADS.values()}
#: names the asset list accepts
AEAD_ALIASES = {"AES-GCM": A256GCM, "AES-CCM": AES_CCM_16_128_256, **AEADS}

CMAC_ALG_ID = -65537
CMAC_ALG_NAME = "AES-CMAC-256/128"


def cmac_tag(key: bytes, message: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(message)
    return c.finalize()


def cmac_verify(key: bytes, message: bytes, tag: bytes) -> None:
    """Constant-time CMAC check (pyca's `verify`); raises `VerificationError`."""
    c = cmac.CMAC(algorithms.AES(key))
    c.update(message)
    try:
        c.verify(tag)
    except InvalidSignature as e:
        raise VerificationError("CMAC does not verify", code="bad-mac") from e
