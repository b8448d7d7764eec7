"""Key pairs from deterministic material, and the COSE signature algorithms.

EC private keys are derived from KDF output by FIPS 186-5 Appendix A.2.1 ("extra random bits"):
take N+64 bits c, then d = (c mod (n-1)) + 1. Ed25519 keys take 32 bytes as the RFC 8032 secret.
Signatures use COSE's encodings (RFC 9053): ECDSA as the fixed-size r || s, EdDSA as is, ML-DSA
(FIPS 204, pure mode, empty context) as RFC 9964 has it.

A *suite* is what one signed image carries: one algorithm ("ES256") or a hybrid of several
("ES256+ML-DSA-65"), every one of whose signatures is required. Where a private key lives is a
`Signer`'s business: this module signs with in-memory keys only and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from trustprov.errors import FormatError, VerificationError

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | mldsa.MLDSA65PrivateKey
    | mldsa.MLDSA87PrivateKey
)
PublicKey = (
    ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | mldsa.MLDSA65PublicKey
    | mldsa.MLDSA87PublicKey
)
_MLDSA_PRIVATE = mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
_MLDSA_PUBLIC = mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey

CURVES: dict[str, ec.EllipticCurve] = {"ec-p256": ec.SECP256R1(), "ec-p384": ec.SECP384R1()}
_ORDERS = {
    "ec-p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ec-p384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}
#: bytes of KDF output each generated key type needs
MATERIAL_LEN = {"ec-p256": 40, "ec-p384": 56, "ed25519": 32, "aes-256": 32}


def private_key_from_material(key_type: str, material: bytes) -> PrivateKey:
    """An asymmetric private key from uniform bytes (FIPS 186-5 A.2.1; RFC 8032 for Ed25519)."""
    if len(material) != MATERIAL_LEN.get(key_type, -1) or key_type == "aes-256":
        raise ValueError(f"no key pair of type {key_type!r} from {len(material)} bytes")
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(material)
    n = _ORDERS[key_type]
    d = int.from_bytes(material) % (n - 1) + 1
    return ec.derive_private_key(d, CURVES[key_type])


def check_private_scalar(key_type: str, value: bytes) -> None:
    """Raise ValueError unless ``value`` is a valid private scalar 1 <= d < n of the curve."""
    size = (CURVES[key_type].key_size + 7) // 8
    if len(value) != size or not 1 <= int.from_bytes(value) < _ORDERS[key_type]:
        raise ValueError(f"not a {key_type} private key")


def private_key_bytes(key: PrivateKey) -> bytes:
    """The raw private value: the scalar d (big-endian, curve size), the Ed25519 secret or the
    ML-DSA seed."""
    if isinstance(key, ed25519.Ed25519PrivateKey | _MLDSA_PRIVATE):
        return key.private_bytes_raw()
    size = (key.curve.key_size + 7) // 8
    return key.private_numbers().private_value.to_bytes(size)


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_der(key: PrivateKey | PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


SigAlg = Literal["ES256", "ES384", "EdDSA", "ML-DSA-65", "ML-DSA-87"]


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A COSE signature algorithm (RFC 9053 section 2) and the key type it needs."""

    name: SigAlg
    cose_id: int
    key_type: str
    hash: hashes.HashAlgorithm | None

    def sign(self, key: PrivateKey, message: bytes) -> bytes:
        self._check_key(key.public_key())
        if isinstance(key, ed25519.Ed25519PrivateKey | _MLDSA_PRIVATE):
            return key.sign(message)  # ML-DSA: pure mode, empty context (RFC 9964)
        assert self.hash is not None  # noqa: S101 - ECDSA entries always carry a hash
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(self.hash)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size) + s.to_bytes(size)

    def verify(self, key: PublicKey, signature: bytes, message: bytes) -> None:
        """Raise `VerificationError` unless ``signature`` is valid; never return a bool."""
        self._check_key(key)
        try:
            if isinstance(key, ed25519.Ed25519PublicKey | _MLDSA_PUBLIC):
                key.verify(signature, message)
                return
            assert self.hash is not None  # noqa: S101 - ECDSA entries always carry a hash
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature
            der = encode_dss_signature(
                int.from_bytes(signature[:size]), int.from_bytes(signature[size:])
            )
            key.verify(der, message, ec.ECDSA(self.hash))
        except InvalidSignature as e:
            raise VerificationError("signature does not verify", code="bad-signature") from e

    def _check_key(self, key: PublicKey) -> None:
        if key_type_of(key) != self.key_type:
            raise VerificationError(
                f"{self.name} needs a {self.key_type} key, not {key_type_of(key)}",
                code="wrong-key-type",
            )


SIGNATURE_ALGORITHMS: dict[str, SignatureAlgorithm] = {
    "ES256": SignatureAlgorithm("ES256", -7, "ec-p256", hashes.SHA256()),
    "ES384": SignatureAlgorithm("ES384", -35, "ec-p384", hashes.SHA384()),
    "EdDSA": SignatureAlgorithm("EdDSA", -8, "ed25519", None),
    # RFC 9964 (draft-ietf-cose-dilithium-11): ML-DSA-65 = -49, ML-DSA-87 = -50
    "ML-DSA-65": SignatureAlgorithm("ML-DSA-65", -49, "ml-dsa-65", None),
    "ML-DSA-87": SignatureAlgorithm("ML-DSA-87", -50, "ml-dsa-87", None),
}
SIGNATURE_BY_ID = {a.cose_id: a for a in SIGNATURE_ALGORITHMS.values()}

#: what a signed image may carry: a single algorithm, or a hybrid whose every signature is
#: required, classical first. Only these combinations exist, so no other can be negotiated.
SUITES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in SIGNATURE_ALGORITHMS},
    "ES256+ML-DSA-65": ("ES256", "ML-DSA-65"),
}
SUITE_BY_ALGS = {algs: name for name, algs in SUITES.items()}


class Signer(Protocol):
    """One private key, wherever it lives (memory, a file, a token), signing for one algorithm.

    ``sign`` takes the whole ToBeSigned bytes; a signer whose key lives in a token hashes them
    itself and sends the token only the digest (or ML-DSA's mu).
    """

    @property
    def key_type(self) -> str: ...

    def public_key(self) -> PublicKey: ...

    def sign(self, algorithm: SignatureAlgorithm, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeySigner:
    """A `Signer` over a private key held in memory."""

    key: PrivateKey

    def __repr__(self) -> str:
        return f"KeySigner({key_type_of(self.key)})"

    @property
    def key_type(self) -> str:
        return key_type_of(self.key)

    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def sign(self, algorithm: SignatureAlgorithm, message: bytes) -> bytes:
        return algorithm.sign(self.key, message)


def key_type_of(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, mldsa.MLDSA65PublicKey | mldsa.MLDSA65PrivateKey):
        return "ml-dsa-65"
    if isinstance(key, mldsa.MLDSA87PublicKey | mldsa.MLDSA87PrivateKey):
        return "ml-dsa-87"
    if isinstance(key.curve, ec.SECP256R1):
        return "ec-p256"
    if isinstance(key.curve, ec.SECP384R1):
        return "ec-p384"
    return f"ec-{key.curve.name}"


def load_public_key(data: bytes) -> PublicKey:
    """A public key from SubjectPublicKeyInfo PEM or DER; only the types trustprov uses."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise FormatError("not a public key (SubjectPublicKeyInfo PEM or DER)") from e
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | _MLDSA_PUBLIC):
        raise FormatError(
            "public key type not supported (need EC P-256/P-384, Ed25519 or ML-DSA-65/87)"
        )
    return key
