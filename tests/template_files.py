"""The files `trustprov oem template`'s example names, for the tests that load or seal it."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.roles.oem.assets.template import EXAMPLE_FILES


def write_example_files(d: Path) -> None:
    """The files the template names, each of the form its comment says."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    (d / "app-key.bin").write_bytes(bytes(range(32)))
    (d / "attest-key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example device")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (d / "device.pem").write_bytes(cert.public_bytes(pem))
    (d / "app.bin").write_bytes(bytes(i % 251 for i in range(40_000)))
    assert set(EXAMPLE_FILES) == {p.name for p in d.iterdir() if p.suffix != ".toml"}
