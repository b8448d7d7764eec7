"""trustprov.crypto.keys: deterministic key pairs and the COSE signature algorithms."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from trustprov.crypto.keys import (
    MATERIAL_LEN,
    SIGNATURE_ALGORITHMS,
    SIGNATURE_BY_ID,
    SUITES,
    KeySigner,
    PrivateKey,
    SignatureAlgorithm,
    key_type_of,
    load_public_key,
    private_key_bytes,
    private_key_from_material,
    public_key_der,
    public_key_pem,
)
from trustprov.errors import FormatError, VerificationError

MESSAGE = b"the ToBeSigned bytes"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SIG_LEN = {"ES256": 64, "ES384": 96, "EdDSA": 64, "ML-DSA-65": 3309, "ML-DSA-87": 4627}
KEY_TYPES = ("ec-p256", "ec-p384", "ed25519", "ec-p521", "ml-dsa-65", "ml-dsa-87")
ALG_NAMES = list(SIGNATURE_ALGORITHMS)


def new_key(key_type: str) -> PrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ml-dsa-65":
        return mldsa.MLDSA65PrivateKey.generate()
    if key_type == "ml-dsa-87":
        return mldsa.MLDSA87PrivateKey.generate()
    curve = {"ec-p256": ec.SECP256R1(), "ec-p384": ec.SECP384R1(), "ec-p521": ec.SECP521R1()}
    return ec.generate_private_key(curve[key_type])


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    return {t: new_key(t) for t in KEY_TYPES}


def flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def test_registry() -> None:
    assert {a: (s.cose_id, s.key_type) for a, s in SIGNATURE_ALGORITHMS.items()} == {
        "ES256": (-7, "ec-p256"),
        "ES384": (-35, "ec-p384"),
        "EdDSA": (-8, "ed25519"),
        # RFC 9964 (draft-ietf-cose-dilithium-11)
        "ML-DSA-65": (-49, "ml-dsa-65"),
        "ML-DSA-87": (-50, "ml-dsa-87"),
    }
    assert {i: s.name for i, s in SIGNATURE_BY_ID.items()} == {
        -7: "ES256",
        -35: "ES384",
        -8: "EdDSA",
        -49: "ML-DSA-65",
        -50: "ML-DSA-87",
    }
    assert SUITES["ES256+ML-DSA-65"] == ("ES256", "ML-DSA-65")
    assert {n for n, algs in SUITES.items() if len(algs) > 1} == {"ES256+ML-DSA-65"}


@pytest.mark.parametrize("name", ALG_NAMES)
def test_sign_verify_round_trip(name: str, keys: dict[str, PrivateKey]) -> None:
    alg = SIGNATURE_ALGORITHMS[name]
    key = keys[alg.key_type]
    signature = alg.sign(key, MESSAGE)
    assert len(signature) == SIG_LEN[name]
    result = alg.verify(key.public_key(), signature, MESSAGE)
    assert result is None  # raises or returns nothing: never a bool


@pytest.mark.parametrize("name", ALG_NAMES)
def test_bad_signature_raises(name: str, keys: dict[str, PrivateKey]) -> None:
    alg = SIGNATURE_ALGORITHMS[name]
    key = keys[alg.key_type]
    signature = alg.sign(key, MESSAGE)
    for index in (0, len(signature) // 2, len(signature) - 1):
        with pytest.raises(VerificationError) as e:
            alg.verify(key.public_key(), flip(signature, index), MESSAGE)
        assert e.value.code == "bad-signature"
    with pytest.raises(VerificationError):
        alg.verify(key.public_key(), signature, MESSAGE + b".")
    with pytest.raises(VerificationError):
        alg.verify(new_key(alg.key_type).public_key(), signature, MESSAGE)


@pytest.mark.parametrize(
    ("name", "length"),
    [(n, x) for n in ALG_NAMES for x in (0, 1, 63, 64, 65, 95, 96, 97, 128) if x != SIG_LEN[n]],
)
def test_wrong_length_signature_raises(name: str, length: int, keys: dict[str, PrivateKey]) -> None:
    alg = SIGNATURE_ALGORITHMS[name]
    with pytest.raises(VerificationError):
        alg.verify(keys[alg.key_type].public_key(), bytes([1]) * length, MESSAGE)


def test_zero_ecdsa_signature_raises(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(VerificationError):
        SIGNATURE_ALGORITHMS["ES256"].verify(keys["ec-p256"].public_key(), bytes(64), MESSAGE)


@pytest.mark.parametrize(
    ("name", "other"),
    [(n, t) for n in ALG_NAMES for t in KEY_TYPES if t != SIGNATURE_ALGORITHMS[n].key_type],
)
def test_wrong_key_type_raises(name: str, other: str, keys: dict[str, PrivateKey]) -> None:
    alg: SignatureAlgorithm = SIGNATURE_ALGORITHMS[name]
    signature = alg.sign(keys[alg.key_type], MESSAGE)
    with pytest.raises(VerificationError) as e:
        alg.verify(keys[other].public_key(), signature, MESSAGE)
    assert e.value.code == "wrong-key-type"
    with pytest.raises(VerificationError) as e:
        alg.sign(keys[other], MESSAGE)
    assert e.value.code == "wrong-key-type"


def test_key_type_of(keys: dict[str, PrivateKey]) -> None:
    for key_type in ("ec-p256", "ec-p384", "ed25519", "ml-dsa-65", "ml-dsa-87"):
        assert key_type_of(keys[key_type]) == key_type
        assert key_type_of(keys[key_type].public_key()) == key_type
    assert key_type_of(keys["ec-p521"]) == "ec-secp521r1"


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "ed25519"])
def test_private_key_from_material_is_deterministic(key_type: str) -> None:
    material = bytes(range(MATERIAL_LEN[key_type]))
    a = private_key_from_material(key_type, material)
    b = private_key_from_material(key_type, material)
    assert private_key_bytes(a) == private_key_bytes(b)
    assert public_key_der(a) == public_key_der(b)
    assert key_type_of(a) == key_type
    other = private_key_from_material(key_type, bytes(range(1, MATERIAL_LEN[key_type] + 1)))
    assert private_key_bytes(other) != private_key_bytes(a)


def test_private_key_bytes_sizes() -> None:
    for key_type, size in (("ec-p256", 32), ("ec-p384", 48), ("ed25519", 32)):
        key = private_key_from_material(key_type, bytes([9]) * MATERIAL_LEN[key_type])
        assert len(private_key_bytes(key)) == size


def test_ed25519_material_is_the_secret() -> None:
    material = bytes(range(32))
    assert private_key_bytes(private_key_from_material("ed25519", material)) == material


@pytest.mark.parametrize(
    ("material", "d"),
    [
        (bytes(40), 1),  # c = 0 -> d = 1
        ((P256_ORDER - 1).to_bytes(40, "big"), 1),  # c = n - 1 -> d = 1
        ((P256_ORDER - 2).to_bytes(40, "big"), P256_ORDER - 1),  # the largest scalar
        (b"\xff" * 40, (2**320 - 1) % (P256_ORDER - 1) + 1),
    ],
)
def test_ec_scalar_reduction_edges(material: bytes, d: int) -> None:
    """FIPS 186-5 A.2.1: d = (c mod (n - 1)) + 1 is always in [1, n - 1]."""
    key = private_key_from_material("ec-p256", material)
    assert int.from_bytes(private_key_bytes(key), "big") == d


@pytest.mark.parametrize(
    ("key_type", "length"),
    [
        ("ec-p256", 32),
        ("ec-p256", 41),
        ("ec-p384", 48),
        ("ed25519", 31),
        ("ed25519", 33),
        ("aes-256", 32),
        ("rsa-2048", 32),
        ("ec-p521", 74),
    ],
)
def test_private_key_from_material_refuses(key_type: str, length: int) -> None:
    with pytest.raises(ValueError, match="no key pair"):
        private_key_from_material(key_type, bytes(length))


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "ed25519", "ml-dsa-65", "ml-dsa-87"])
def test_load_public_key_pem_and_der(key_type: str, keys: dict[str, PrivateKey]) -> None:
    key = keys[key_type]
    for data in (public_key_pem(key), public_key_der(key), b"\n  " + public_key_pem(key)):
        loaded = load_public_key(data)
        assert public_key_der(loaded) == public_key_der(key)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"\x30\x03\x02\x01\x00",
    ],
)
def test_load_public_key_garbage_raises(data: bytes) -> None:
    with pytest.raises(FormatError):
        load_public_key(data)


def test_load_public_key_refuses_rsa() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(FormatError, match="not supported"):
        load_public_key(pem)


def test_load_public_key_refuses_a_private_key(keys: dict[str, PrivateKey]) -> None:
    pem = keys["ec-p256"].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(FormatError):
        load_public_key(pem)


@pytest.mark.parametrize("name", ["ML-DSA-65", "ML-DSA-87"])
def test_ml_dsa_is_pure_with_an_empty_context(name: str, keys: dict[str, PrivateKey]) -> None:
    """RFC 9964: pure ML-DSA over the whole message, context empty; a signature made with a
    context (or over the pre-hashed message) does not verify."""
    alg = SIGNATURE_ALGORITHMS[name]
    key = keys[alg.key_type]
    assert isinstance(key, mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey)
    alg.verify(key.public_key(), key.sign(MESSAGE), MESSAGE)
    with pytest.raises(VerificationError) as e:
        alg.verify(key.public_key(), key.sign(MESSAGE, b"ctx"), MESSAGE)
    assert e.value.code == "bad-signature"


def test_key_signer_signs_like_the_algorithm(keys: dict[str, PrivateKey]) -> None:
    signer = KeySigner(keys["ec-p256"])
    assert signer.key_type == "ec-p256"
    assert "PrivateKey" not in repr(signer)
    alg = SIGNATURE_ALGORITHMS["ES256"]
    alg.verify(signer.public_key(), signer.sign(alg, MESSAGE), MESSAGE)
