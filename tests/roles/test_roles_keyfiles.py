"""Key files in the forms engineers have them (PEM, DER, PKCS#8, SEC1, raw) and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trustprov.crypto.keys import private_key_bytes
from trustprov.errors import FormatError, InputError
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem.assets.keyfiles import read_key_file

Enc = serialization.Encoding
Fmt = serialization.PrivateFormat
NONE = serialization.NoEncryption()


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "key"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("key_type", "make", "encoding", "fmt"),
    [
        ("ec-p256", lambda: ec.generate_private_key(ec.SECP256R1()), Enc.PEM, Fmt.PKCS8),
        ("ec-p256", lambda: ec.generate_private_key(ec.SECP256R1()), Enc.DER, Fmt.PKCS8),
        (
            "ec-p256",
            lambda: ec.generate_private_key(ec.SECP256R1()),
            Enc.PEM,
            Fmt.TraditionalOpenSSL,
        ),
        (
            "ec-p256",
            lambda: ec.generate_private_key(ec.SECP256R1()),
            Enc.DER,
            Fmt.TraditionalOpenSSL,
        ),
        ("ec-p384", lambda: ec.generate_private_key(ec.SECP384R1()), Enc.PEM, Fmt.PKCS8),
        ("ed25519", ed25519.Ed25519PrivateKey.generate, Enc.PEM, Fmt.PKCS8),
        ("ed25519", ed25519.Ed25519PrivateKey.generate, Enc.DER, Fmt.PKCS8),
    ],
    ids=[
        "p256-pkcs8-pem",
        "p256-pkcs8-der",
        "p256-sec1-pem",
        "p256-sec1-der",
        "p384",
        "ed-pem",
        "ed-der",
    ],
)
def test_standard_forms_give_the_raw_private_value(
    tmp_path: Path, key_type: str, make: object, encoding: Enc, fmt: Fmt
) -> None:
    key = make()  # type: ignore[operator]
    path = _write(tmp_path, key.private_bytes(encoding, fmt, NONE))
    assert read_key_file(path, key_type, "asset 'k'") == private_key_bytes(key)


def test_raw_values_pass_as_they_are(tmp_path: Path) -> None:
    assert read_key_file(_write(tmp_path, bytes(range(32))), "aes-256", "a") == bytes(range(32))
    scalar = private_key_bytes(ec.generate_private_key(ec.SECP256R1()))
    assert read_key_file(_write(tmp_path, scalar), "ec-p256", "a") == scalar


@pytest.mark.parametrize(
    ("key_type", "data", "match"),
    [
        ("ec-p256", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PUBLIC KEY"),
        ("aes-256", b"-----BEGIN PRIVATE KEY-----\n", "expected the raw 32 bytes"),
        ("ec-p256", b"\x30" * 70, "expected a ec-p256 private key in PEM or DER"),
    ],
    ids=["public-pem", "aes-as-pem", "garbage-der"],
)
def test_wrong_forms_say_what_was_expected(
    tmp_path: Path, key_type: str, data: bytes, match: str
) -> None:
    with pytest.raises(FormatError, match=match):
        read_key_file(_write(tmp_path, data), key_type, "asset 'k'")


def test_another_curve_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    path = _write(tmp_path, key.private_bytes(Enc.PEM, Fmt.PKCS8, NONE))
    with pytest.raises(FormatError, match="is an ec-p384 key, the asset says ec-p256"):
        read_key_file(path, "ec-p256", "asset 'k'")


def test_encrypted_and_rsa_keys_are_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    enc = key.private_bytes(Enc.PEM, Fmt.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(FormatError, match="encrypted key; decrypt it first"):
        read_key_file(_write(tmp_path, enc), "ec-p256", "asset 'k'")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - a refused input
    pem = rsa_key.private_bytes(Enc.PEM, Fmt.PKCS8, NONE)
    with pytest.raises(FormatError, match="RSA"):
        read_key_file(_write(tmp_path, pem), "ec-p256", "asset 'k'")


def test_an_asset_list_takes_a_pem_key(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "signer.pem").write_bytes(key.private_bytes(Enc.PEM, Fmt.PKCS8, NONE))
    toml = tmp_path / "assets.toml"
    toml.write_text(
        '[[asset]]\nname = "signer"\nkind = "key"\nkey-type = "ec-p256"\nslot = 3\n'
        'file = "signer.pem"\n'
    )
    (spec,) = asset_list.load(toml).assets
    assert spec.value == private_key_bytes(key)
    toml.write_text(toml.read_text().replace("ec-p256", "ed25519"))
    with pytest.raises(InputError, match="the asset says ed25519"):
        asset_list.load(toml)
