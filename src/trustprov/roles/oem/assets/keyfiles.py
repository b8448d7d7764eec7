"""Key files of an asset list, in the forms engineers have them: PEM or DER, or raw bytes.

An asymmetric key (ec-p256, ec-p384, ed25519) may be a PKCS#8 or SEC1 ("EC PRIVATE KEY") file in
PEM or DER, unencrypted, or its raw private value (the big-endian scalar, or the Ed25519 seed);
a symmetric key (aes-256, raw) is its raw bytes. Whatever the form, what goes into the bundle is
the raw private value that a key slot holds.

Invariants: a file is read with a bound; an error says which form was expected and what the file
looks like, never a byte of the key; a key of another type or curve is refused, not converted.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustprov.crypto.keys import CURVES, key_type_of, private_key_bytes
from trustprov.errors import FormatError
from trustprov.formats.bundle import KEY_TYPES
from trustprov.roles.files import read_bytes

MAX_KEY_FILE = 16 * 1024  # a PEM private key of the largest type is well under 1 KiB
ASYMMETRIC = (*CURVES, "ed25519")


def expected(key_type: str) -> str:
    """The forms a key file of ``key_type`` may take, for a person."""
    sizes = " or ".join(map(str, KEY_TYPES[key_type]))
    if key_type in ASYMMETRIC:
        return (
            f"a {key_type} private key in PEM or DER (PKCS#8, or SEC1 for EC), unencrypted, "
            f"or its raw {sizes}-byte private value"
        )
    return f"the raw {sizes} bytes of the key"


def read_key_file(path: Path, key_type: str, what: str) -> bytes:
    """The raw private value of the key in ``path``."""
    data = read_bytes(path, limit=MAX_KEY_FILE, what=f"{what} file")
    if len(data) in KEY_TYPES[key_type]:
        return data
    if key_type not in ASYMMETRIC:
        raise FormatError(
            f"{what}: {path.name} holds {len(data)} bytes; expected {expected(key_type)}"
        )
    pem = data.lstrip().startswith(b"-----BEGIN")
    try:
        if pem:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except TypeError as e:  # encrypted
        raise FormatError(
            f"{what}: {path.name} is an encrypted key; decrypt it first "
            f"(openssl pkey -in FILE -out PLAIN.pem), then keep PLAIN.pem at mode 0600"
        ) from e
    except (ValueError, UnsupportedAlgorithm) as e:
        label = _pem_label(data) if pem else "not DER"
        raise FormatError(
            f"{what}: {path.name} is not a usable private key ({label}); "
            f"expected {expected(key_type)}"
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise FormatError(
            f"{what}: {path.name} is {_other_kind(key)} key; expected {expected(key_type)}"
        )
    found = key_type_of(key)
    if found != key_type:
        raise FormatError(f"{what}: {path.name} is an {found} key, the asset says {key_type}")
    return private_key_bytes(key)


def _pem_label(data: bytes) -> str:
    first = data.lstrip().split(b"\n", 1)[0].decode("ascii", "replace").strip("- \r")
    return f"PEM {first.removeprefix('BEGIN ')!r}"


def _other_kind(key: object) -> str:
    """A private key trustprov does not take, named in words (never its class name)."""
    from cryptography.hazmat.primitives.asymmetric import (  # noqa: PLC0415 - the error path
        dsa,
        ed448,
        rsa,
        x448,
        x25519,
    )

    kinds = (
        (rsa.RSAPrivateKey, "an RSA"),
        (dsa.DSAPrivateKey, "a DSA"),
        (ed448.Ed448PrivateKey, "an Ed448"),
        (x25519.X25519PrivateKey, "an X25519"),
        (x448.X448PrivateKey, "an X448"),
    )
    return next((words for cls, words in kinds if isinstance(key, cls)), "another type of")
