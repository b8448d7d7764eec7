"""trustprov.crypto.aead: A256GCM, AES-CCM-16-128-256, AES-CMAC."""

from __future__ import annotations

import pytest

from trustprov.crypto.aead import (
    A256GCM,
    AEAD_ALIASES,
    AEAD_BY_ID,
    AEADS,
    AES_CCM_16_128_256,
    CMAC_ALG_ID,
    TAG_LEN,
    Aead,
    cmac_tag,
    cmac_verify,
)
from trustprov.errors import VerificationError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
AAD = b"associated data"
ALL = [A256GCM, AES_CCM_16_128_256]
ids = [a.name for a in ALL]
# NIST SP 800-38B, Appendix D.3 (AES-256 CMAC examples 9 and 10)
NIST_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
NIST_CASES = [
    (b"", "028962f61b7bf89efc6b551f4667d983"),
    (bytes.fromhex("6bc1bee22e409f96e93d7e117393172a"), "28a7023f452e8f82bd4bf28d8c37c35c"),
]


def nonce_for(aead: Aead, fill: int = 7) -> bytes:
    return bytes([fill]) * aead.nonce_len


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[index] ^= 1 << bit
    return bytes(b)


def test_registry() -> None:
    assert AEAD_BY_ID == {3: A256GCM, 31: AES_CCM_16_128_256}
    assert AEADS["A256GCM"] is A256GCM
    assert AEAD_ALIASES["AES-GCM"] is A256GCM
    assert AEAD_ALIASES["AES-CCM"] is AES_CCM_16_128_256
    assert (A256GCM.nonce_len, AES_CCM_16_128_256.nonce_len) == (12, 13)
    assert A256GCM.max_message == 2**36 - 32
    assert AES_CCM_16_128_256.max_message == 65535
    assert CMAC_ALG_ID == -65537


@pytest.mark.parametrize("aead", ALL, ids=ids)
@pytest.mark.parametrize("size", [0, 1, 16, 1000])
def test_round_trip(aead: Aead, size: int) -> None:
    plaintext = bytes(i % 256 for i in range(size))
    ciphertext = aead.seal(KEY, nonce_for(aead), plaintext, AAD)
    assert len(ciphertext) == size + TAG_LEN
    assert aead.open(KEY, nonce_for(aead), ciphertext, AAD) == plaintext


@pytest.mark.parametrize("aead", ALL, ids=ids)
def test_gcm_and_ccm_differ(aead: Aead) -> None:
    other = A256GCM if aead is AES_CCM_16_128_256 else AES_CCM_16_128_256
    ciphertext = aead.seal(KEY, nonce_for(aead), b"x" * 32, AAD)
    with pytest.raises(VerificationError):
        other.open(KEY, nonce_for(other), ciphertext, AAD)


@pytest.mark.parametrize("aead", ALL, ids=ids)
@pytest.mark.parametrize("index", [0, 5, 31, 32, 47])
def test_tampered_ciphertext_or_tag_raises(aead: Aead, index: int) -> None:
    ciphertext = aead.seal(KEY, nonce_for(aead), b"p" * 32, AAD)
    with pytest.raises(VerificationError) as e:
        aead.open(KEY, nonce_for(aead), flip(ciphertext, index), AAD)
    assert e.value.code == "bad-aead"


@pytest.mark.parametrize("aead", ALL, ids=ids)
def test_wrong_key_nonce_or_aad_raises(aead: Aead) -> None:
    ciphertext = aead.seal(KEY, nonce_for(aead), b"p" * 32, AAD)
    with pytest.raises(VerificationError):
        aead.open(OTHER_KEY, nonce_for(aead), ciphertext, AAD)
    with pytest.raises(VerificationError):
        aead.open(KEY, nonce_for(aead, 8), ciphertext, AAD)
    with pytest.raises(VerificationError):
        aead.open(KEY, nonce_for(aead), ciphertext, AAD + b"!")
    with pytest.raises(VerificationError):
        aead.open(KEY, nonce_for(aead), ciphertext[:-1], AAD)
    with pytest.raises(VerificationError):
        aead.open(KEY, nonce_for(aead), ciphertext + b"\x00", AAD)


@pytest.mark.parametrize("aead", ALL, ids=ids)
@pytest.mark.parametrize("length", [0, 1, 15])
def test_ciphertext_shorter_than_a_tag_raises(aead: Aead, length: int) -> None:
    with pytest.raises(VerificationError):
        aead.open(KEY, nonce_for(aead), bytes(length), AAD)


@pytest.mark.parametrize("aead", ALL, ids=ids)
@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_nonce_length_raises_on_open(aead: Aead, delta: int) -> None:
    ciphertext = aead.seal(KEY, nonce_for(aead), b"p", AAD)
    with pytest.raises(VerificationError):
        aead.open(KEY, bytes(aead.nonce_len + delta), ciphertext, AAD)


def test_ccm_max_message() -> None:
    ccm = AES_CCM_16_128_256
    nonce = nonce_for(ccm)
    big = bytes(ccm.max_message)
    ciphertext = ccm.seal(KEY, nonce, big, AAD)
    assert ccm.open(KEY, nonce, ciphertext, AAD) == big
    with pytest.raises(ValueError, match="at most 65535"):
        ccm.seal(KEY, nonce, bytes(ccm.max_message + 1), AAD)


def test_gcm_takes_more_than_the_ccm_limit() -> None:
    data = bytes(AES_CCM_16_128_256.max_message + 1)
    ciphertext = A256GCM.seal(KEY, nonce_for(A256GCM), data, AAD)
    assert A256GCM.open(KEY, nonce_for(A256GCM), ciphertext, AAD) == data


@pytest.mark.parametrize(("message", "tag"), NIST_CASES)
def test_cmac_known_answer(message: bytes, tag: str) -> None:
    assert cmac_tag(NIST_KEY, message).hex() == tag
    assert cmac_verify(NIST_KEY, message, bytes.fromhex(tag)) is None


def test_cmac_tag_is_16_bytes() -> None:
    assert len(cmac_tag(KEY, b"m" * 100)) == TAG_LEN


@pytest.mark.parametrize("index", [0, 7, 15])
def test_cmac_verify_bad_tag_raises(index: int) -> None:
    tag = cmac_tag(KEY, b"message")
    with pytest.raises(VerificationError) as e:
        cmac_verify(KEY, b"message", flip(tag, index))
    assert e.value.code == "bad-mac"


def test_cmac_verify_wrong_message_key_or_length_raises() -> None:
    tag = cmac_tag(KEY, b"message")
    with pytest.raises(VerificationError):
        cmac_verify(KEY, b"messagE", tag)
    with pytest.raises(VerificationError):
        cmac_verify(OTHER_KEY, b"message", tag)
    with pytest.raises(VerificationError):
        cmac_verify(KEY, b"message", tag[:8])
    with pytest.raises(VerificationError):
        cmac_verify(KEY, b"message", tag + b"\x00")
    with pytest.raises(VerificationError):
        cmac_verify(KEY, b"message", b"")


@pytest.mark.parametrize("aead", [A256GCM, AES_CCM_16_128_256])
def test_seal_refuses_a_nonce_of_the_wrong_length(aead: Aead) -> None:
    for n in (aead.nonce_len - 1, aead.nonce_len + 1):
        with pytest.raises(ValueError, match="nonce"):
            aead.seal(bytes(32), bytes(n), b"x", b"")
