"""Our COSE artifacts checked by an independent implementation, pycose (RFC 9052/9053).

pycose verifies our COSE_Sign1 software images and decrypts our COSE_Encrypt0 sealed values;
pycose-made messages parse and verify with our code. pycose accepts our text header labels
("tp-name", "tp-family"...) as they are. It does not know AES-CMAC (COSE has not registered it;
we use the private-use id -65537) and refuses to decode our manifest's COSE_Mac0 at all, so the
test registers a CMAC algorithm with pycose, built on pyca/cryptography's CMAC, and lets pycose
build the MAC_structure and check the tag.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.hazmat.primitives.ciphers import algorithms as cipher_algorithms
from pycose import algorithms, headers
from pycose.algorithms import CoseAlgorithm
from pycose.exceptions import CoseException
from pycose.keys import CoseKey, SymmetricKey
from pycose.messages import Enc0Message, Mac0Message, Sign1Message, SignMessage

from trustprov.crypto.aead import cmac_verify
from trustprov.crypto.digest import sha256
from trustprov.crypto.keys import PrivateKey, public_key_pem
from trustprov.errors import VerificationError
from trustprov.formats.bundle import MANIFEST_CONTENT_TYPE, SignedManifest
from trustprov.formats.sealed import SEALED_KINDS, SealedValue
from trustprov.formats.software import CONTENT_TYPE, SignedSoftware

ALGS = ["ES256", "ES384", "EdDSA"]
PYCOSE_ALG = {"ES256": algorithms.Es256, "ES384": algorithms.Es384, "EdDSA": algorithms.EdDSA}
KEY = bytes(range(32))
FAMILY = b"FAMILY01"
NONCE = bytes(range(50, 62))


class AesCmac256(CoseAlgorithm):
    """AES-CMAC with a 256-bit key and a 128-bit tag, as trustprov's private-use COSE id."""

    identifier = -65537
    fullname = "TRUSTPROV-AES-CMAC-256/128"

    @classmethod
    def compute_tag(cls, key: SymmetricKey, data: bytes) -> bytes:
        c = cmac.CMAC(cipher_algorithms.AES(key.k))
        c.update(data)
        return c.finalize()

    @classmethod
    def verify_tag(cls, key: SymmetricKey, tag: bytes, data: bytes) -> bool:
        return cls.compute_tag(key, data) == tag


@pytest.fixture(scope="module")
def cmac_in_pycose() -> Any:
    """Register AES-CMAC with pycose for this module's tests, then take it out again."""
    registry = CoseAlgorithm.get_registered_classes()
    saved = {k: registry[k] for k in (AesCmac256.identifier, AesCmac256.fullname) if k in registry}
    CoseAlgorithm.register_attribute()(AesCmac256)
    yield AesCmac256
    for k in (AesCmac256.identifier, AesCmac256.fullname.upper()):
        registry.pop(k, None)
    registry.update(saved)


def pycose_public(key: PrivateKey) -> CoseKey:
    return CoseKey.from_pem_public_key(public_key_pem(key).decode("ascii"))


def pycose_private(key: PrivateKey) -> CoseKey:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return CoseKey.from_pem_private_key(pem.decode("ascii"))


# -- COSE_Sign1: the provisioning software ---------------------------------------------------
@pytest.mark.parametrize("alg", ALGS)
def test_pycose_verifies_our_software(
    alg: str, builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> None:
    sw = builders.sign_software(signing_keys[alg], alg)
    msg = Sign1Message.decode(sw.to_bytes())
    assert msg.get_attr(headers.Algorithm) is PYCOSE_ALG[alg]
    assert msg.get_attr(headers.ContentType) == CONTENT_TYPE
    assert msg.phdr["tp-name"] == sw.name
    assert msg.phdr["tp-svn"] == sw.security_version
    assert msg.phdr["tp-code"] == sha256(msg.payload)
    assert msg.payload == builders.CODE
    msg.key = pycose_public(signing_keys[alg])
    assert msg.verify_signature() is True


@pytest.mark.parametrize("alg", ALGS)
def test_pycose_rejects_our_tampered_software(
    alg: str, builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> None:
    data = bytearray(builders.sign_software(signing_keys[alg], alg).to_bytes())
    data[-1] ^= 0x01  # the last byte of the signature
    msg = Sign1Message.decode(bytes(data))
    msg.key = pycose_public(signing_keys[alg])
    assert msg.verify_signature() is False


@pytest.mark.parametrize("alg", ALGS)
def test_pycose_rejects_our_software_under_another_key(
    alg: str, builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> None:
    msg = Sign1Message.decode(builders.sign_software(signing_keys[alg], alg).to_bytes())
    msg.key = pycose_public(builders.signing_key(alg))
    assert msg.verify_signature() is False


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_pycose_signed_software(
    alg: str, builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> None:
    code = builders.CODE
    msg = Sign1Message(
        phdr={
            headers.Algorithm: PYCOSE_ALG[alg],
            headers.ContentType: CONTENT_TYPE,
            "tp-name": "made-by-pycose",
            "tp-version": "0.0.1",
            "tp-svn": 9,
            "tp-code": sha256(code),
        },
        payload=code,
    )
    msg.key = pycose_private(signing_keys[alg])
    sw = SignedSoftware.from_bytes(msg.encode())
    assert (sw.name, sw.version, sw.security_version, sw.alg) == (
        "made-by-pycose",
        "0.0.1",
        9,
        alg,
    )
    assert sw.verify(signing_keys[alg].public_key()) is None
    with pytest.raises(VerificationError):
        sw.verify(builders.signing_key(alg).public_key())


# -- COSE_Encrypt0: sealed values --------------------------------------------------------------
@pytest.mark.parametrize("kind", SEALED_KINDS)
def test_pycose_decrypts_our_sealed_value(kind: str) -> None:
    plaintext = bytes(range(32))
    sv = SealedValue.seal(KEY, kind, FAMILY, NONCE, plaintext)
    msg = Enc0Message.decode(sv.to_bytes())
    assert msg.get_attr(headers.Algorithm) is algorithms.A256GCM
    assert msg.get_attr(headers.IV) == NONCE
    assert msg.phdr["tp-value"] == kind
    assert msg.phdr["tp-family"] == FAMILY
    msg.key = SymmetricKey(k=KEY)
    assert msg.decrypt() == plaintext


def test_pycose_refuses_our_sealed_value_under_another_key() -> None:
    sv = SealedValue.seal(KEY, "oem-share", FAMILY, NONCE, bytes(32))
    msg = Enc0Message.decode(sv.to_bytes())
    msg.key = SymmetricKey(k=bytes(32))
    with pytest.raises(InvalidTag):  # pycose lets pyca's exception through
        msg.decrypt()


def pycose_sealed(kind: str, plaintext: bytes) -> bytes:
    msg = Enc0Message(
        phdr={headers.Algorithm: algorithms.A256GCM, "tp-value": kind, "tp-family": FAMILY},
        uhdr={headers.IV: NONCE},
        payload=plaintext,
    )
    msg.key = SymmetricKey(k=KEY)
    return msg.encode()


@pytest.mark.parametrize("kind", SEALED_KINDS)
def test_we_open_pycose_sealed_values(kind: str) -> None:
    plaintext = bytes(range(16, 48))
    sv = SealedValue.from_bytes(pycose_sealed(kind, plaintext), kind)
    assert sv.family_id == FAMILY
    assert sv.open(KEY) == plaintext
    with pytest.raises(VerificationError):
        sv.open(bytes(32))


def test_pycose_and_we_seal_to_the_same_bytes() -> None:
    """Same key, nonce and header order: byte-identical COSE_Encrypt0 (our encoding is the
    canonical one, and pycose keeps insertion order, which here is canonical too)."""
    plaintext = bytes(range(32))
    ours = SealedValue.seal(KEY, "rnd-share", FAMILY, NONCE, plaintext).to_bytes()
    assert pycose_sealed("rnd-share", plaintext) == ours


# -- COSE_Mac0: the manifest -------------------------------------------------------------------
def test_pycose_does_not_know_aes_cmac(builders: SimpleNamespace) -> None:
    """Why the Mac0 tests register CMAC: stock pycose refuses the private-use alg id."""
    registry = CoseAlgorithm.get_registered_classes()
    if AesCmac256.identifier in registry:
        pytest.skip("AES-CMAC is registered with pycose in this process")
    with pytest.raises(CoseException, match="-65537"):
        Mac0Message.decode(builders.seal_bundle().signed.to_bytes())


def test_pycose_verifies_our_manifest_mac(builders: SimpleNamespace, cmac_in_pycose: Any) -> None:
    signed = builders.seal_bundle().signed
    msg = Mac0Message.decode(signed.to_bytes())
    assert msg.get_attr(headers.Algorithm) is cmac_in_pycose
    assert msg.get_attr(headers.ContentType) == MANIFEST_CONTENT_TYPE
    assert msg.phdr["tp-family"] == builders.FAMILY
    msg.key = SymmetricKey(k=builders.AUTH)
    assert msg.verify_tag() is True
    msg.key = SymmetricKey(k=builders.ENCK)
    assert msg.verify_tag() is False


def test_we_verify_a_pycose_made_manifest_mac(
    builders: SimpleNamespace, cmac_in_pycose: Any
) -> None:
    manifest = builders.manifest()
    msg = Mac0Message(
        phdr={
            headers.Algorithm: cmac_in_pycose,
            headers.ContentType: MANIFEST_CONTENT_TYPE,
            "tp-family": builders.FAMILY,
        },
        payload=manifest.to_payload(),
    )
    msg.key = SymmetricKey(k=builders.AUTH)
    signed = SignedManifest.from_bytes(msg.encode())
    assert signed.manifest == manifest
    assert cmac_verify(builders.AUTH, signed.message.mac_structure(), signed.message.auth) is None


# -- COSE_Sign: the hybrid ES256+ML-DSA-65 software ---------------------------------------------
class MlDsa65(CoseAlgorithm):
    """Only a name for RFC 9964's -49, so that pycose parses the signer (it signs nothing)."""

    identifier = -49
    fullname = "ML_DSA_65"


@pytest.fixture
def ml_dsa_in_pycose() -> Any:
    registry = CoseAlgorithm.get_registered_classes()
    saved = {k: registry[k] for k in (MlDsa65.identifier, MlDsa65.fullname) if k in registry}
    CoseAlgorithm.register_attribute()(MlDsa65)
    yield MlDsa65
    for k in (MlDsa65.identifier, MlDsa65.fullname.upper()):
        registry.pop(k, None)
    registry.update(saved)


def test_pycose_reads_our_hybrid_software_and_verifies_its_es256_signature(
    builders: SimpleNamespace, signing_keys: dict[str, PrivateKey], ml_dsa_in_pycose: Any
) -> None:
    """pycose 1.1 knows no ML-DSA (it refuses alg -49 even to parse, so the test registers the
    name alone): it parses our COSE_Sign, verifies the ES256 signature itself, and builds the
    ML-DSA signer's Sig_structure, which pyca/cryptography's ML-DSA then verifies."""
    pq = mldsa.MLDSA65PrivateKey.generate()
    sw = SignedSoftware.sign(
        [signing_keys["ES256"], pq],
        alg="ES256+ML-DSA-65",
        name="trustprov-provisioning",
        version="1.0",
        security_version=1,
        code=builders.CODE,
    )
    msg = SignMessage.decode(sw.to_bytes())
    assert msg.payload == builders.CODE
    assert msg.phdr["tp-code"] == sha256(msg.payload)
    classical, post_quantum = msg.signers
    assert classical.get_attr(headers.Algorithm) is algorithms.Es256
    assert post_quantum.get_attr(headers.Algorithm) is ml_dsa_in_pycose
    classical.key = pycose_public(signing_keys["ES256"])
    assert classical.verify_signature() is True
    tbs = post_quantum._create_sig_structure()
    assert tbs == sw.message.to_be_signed_by(sw.message.signatures[1])
    pq.public_key().verify(post_quantum.signature, tbs)
