"""The chip family an ICM directory holds: `Icm` (loaded from it) and `init` (which makes it).

The directory's layout is in the package's docstring (roles/icm/__init__.py).

Invariants:
- `init` makes a family whole or not at all: the directory appears complete (`new_directory`),
  and a family whose making failed leaves no key in a token it made keys in.
- `Icm` never shows a private key or a family secret in its repr; the family secrets stay wrapped
  (in a token) until `Icm.immutable` opens them for one image, each time.
- `Icm.load` refuses a directory that is not an ICM's or is damaged with an `InputError`, never
  a traceback; the family id has its fixed length and the suite is a known one.
- The device CA can sign certificates and CRLs only; every chip certificate of the family comes
  from `chip_certificate_template` (an end entity that only signs, no expiry).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov import __version__
from trustprov.crypto.keys import (
    SUITES,
    PrivateKey,
    public_key_der,
    public_key_pem,
)
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import InputError
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.lot import device_ca_common_name
from trustprov.roles.files import (
    PRIVATE,
    new_directory,
    read_bytes,
    write_file,
)
from trustprov.roles.icm.custody import (
    LOT_PUBLIC_FILE,
    SECRET_NAMES,
    FamilySecrets,
    forget_family,
    load_keys,
    load_secrets,
    make_keys,
    signing_key_files,
    store_secrets,
)
from trustprov.roles.icm.keyref import is_pkcs11

Random = Callable[[int], bytes]
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def unknown_alg(alg: str) -> InputError:
    return InputError(f"unknown signature algorithm {alg!r} ({', '.join(SUITES)})")


def key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a chip's identity key only signs."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Icm:
    path: Path
    family_id: bytes
    alg: str  # the signing suite: one algorithm or a hybrid
    signing_keys: tuple[PrivateKey, ...] = field(repr=False)  # one per algorithm of the suite
    ca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    ca_cert: x509.Certificate
    secrets: FamilySecrets = field(repr=False, compare=False)
    lot_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)

    @property
    def signing_key(self) -> PrivateKey:
        """The (first) software signing key."""
        return self.signing_keys[0]

    @property
    def immutable(self) -> ImmutableMemory:
        """The image every chip of the family is burned with; wrapped family secrets are
        unwrapped in the token for it, each time (roles/icm/custody.py)."""
        s = self.secrets.open()
        return ImmutableMemory(
            family_id=self.family_id,
            hw_share=s["hw-share"],
            rom_share=s["rom-share"],
            k_oem_share=s["k-oem-share"],
            k_oem_master_share=s["k-oem-master-share"],
            software_keys=tuple(public_key_der(k) for k in self.signing_keys),
            software_suite=self.alg,
        )

    @classmethod
    def load(cls, path: Path) -> Icm:
        path = Path(path)
        if not (path / "icm.json").is_file():
            raise InputError(
                f"{path} is not an ICM directory (no icm.json; run 'trustprov icm init')"
            )
        try:
            meta = json.loads(read_bytes(path / "icm.json", limit=4096, what="ICM metadata"))
            family_id = bytes.fromhex(meta["family"])
            alg = meta["alg"]
            if len(family_id) != FAMILY_ID_LEN:
                raise ValueError("family id length")
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: ICM directory is damaged (icm.json)") from e
        if alg not in SUITES:
            raise InputError(f"{path}: ICM directory is damaged (signing suite)")
        secrets = load_secrets(meta, family_id, path)
        keys = load_keys(meta, alg, path)
        signing_keys, ca_key = keys.signing, keys.ca
        try:
            ca_cert = x509.load_pem_x509_certificate(
                read_bytes(path / "device-ca.pem", limit=16 * 1024, what="device CA")
            )
        except ValueError as e:
            raise InputError(f"{path}/device-ca.pem: not a PEM certificate") from e
        return cls(path, family_id, alg, signing_keys, ca_key, ca_cert, secrets, keys.lot)

    @functools.cached_property
    def chip_certificate_template(self) -> x509.CertificateBuilder:
        """What every chip certificate of the family shares, built once rather than per chip:
        issuer, no expiry (RFC 5280 4.1.2.5), and the extensions of an end entity that signs."""
        return (
            x509.CertificateBuilder()
            .issuer_name(self.ca_cert.subject)
            .not_valid_after(datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(ca=False), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )


def init(
    path: Path,
    *,
    alg: str = "ES256",
    keys: str | None = None,
    rng: Random = os.urandom,
    now: Clock = utc_now,
) -> Icm:
    """Create a chip family: its secrets, the software signing key(s) and the device CA, the
    keys in files or, with ``keys`` a ``pkcs11:`` URI of a token, made inside that token."""
    if alg not in SUITES:
        raise unknown_alg(alg)
    family_id = rng(FAMILY_ID_LEN)
    try:
        with new_directory(path) as d:
            _init_into(d, family_id, alg, keys, rng=rng, now=now)
    except BaseException:
        if keys is not None and is_pkcs11(keys):  # no key of a family never made stays in it
            with contextlib.suppress(InputError):  # the first error is the one to report
                forget_family(family_id, keys)
        raise
    return Icm.load(path)


def _init_into(
    d: Path, family_id: bytes, alg: str, keys: str | None, *, rng: Random, now: Clock
) -> None:
    made = make_keys(alg, family_id, keys)
    signing_keys, ca_key = made.signing, made.ca
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov ICM"),
            x509.NameAttribute(NameOID.COMMON_NAME, device_ca_common_name(family_id)),
        ]
    )
    t = now()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t - datetime.timedelta(minutes=5))
        .not_valid_after(t + datetime.timedelta(days=365 * 25))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    secrets = {name: rng(32) for name in SECRET_NAMES}
    secret_files, secrets_name = store_secrets(secrets, family_id, keys, rng)
    for name, data in {**secret_files, **made.files}.items():
        write_file(d / name, data, mode=PRIVATE)
    for key, (_, public) in zip(signing_keys, signing_key_files(alg), strict=True):
        write_file(d / public, public_key_pem(key))
    write_file(d / "device-ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    if made.lot is not None:
        write_file(d / LOT_PUBLIC_FILE, public_key_pem(made.lot))
    meta = {
        "family": family_id.hex(),
        "alg": alg,
        "keys": made.refs,
        "secrets": secrets_name,
        "created-by": f"trustprov {__version__}",
    }
    write_file(d / "icm.json", json.dumps(meta, indent=2).encode() + b"\n")
