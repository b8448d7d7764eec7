"""Where the ICM's private keys live: PEM files in ICM_DIR, or a PKCS#11 token (`icm init --keys`).

icm.json records a key reference (roles/keyref.py) per key, never a key or a PIN::

    "keys": {"prov-signing": [REF, ...],   one per algorithm of the suite, in its order
             "device-ca": REF}

A directory made before key references existed has no "keys": its keys are the files of
`signing_key_files` and ``device-ca.key.pem``. With ``--keys pkcs11:token=...`` every EC key is
made inside the token (sensitive, not extractable) under the label
``trustprov-<FAMILY_ID hex>-<role>``; a key type the token cannot hold (ML-DSA: SoftHSM2 2.6 has
no ML-DSA mechanism; Ed25519 is signed over the whole message, which would send the token whole
images) is made in a file of mode 0600 beside icm.json, and its reference says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, SUITES, PrivateKey
from trustprov.errors import InputError
from trustprov.roles.keyref import Pkcs11Uri, parse_pkcs11_uri
from trustprov.roles.signer import TOKEN_CURVES, generate_token_key, load_private_key

CA_FILE = "device-ca.key.pem"


def signing_key_files(alg: str) -> list[tuple[str, str]]:
    """(private, public) file names of the suite's signing keys, in the suite's order."""
    return [
        (f"prov-signing{suffix}.key.pem", f"prov-signing{suffix}.pub.pem")
        for suffix in ("", *(f"-{n}" for n in range(2, len(SUITES[alg]) + 1)))
    ]


def new_file_key(key_type: str) -> PrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ml-dsa-65":
        return mldsa.MLDSA65PrivateKey.generate()
    if key_type == "ml-dsa-87":
        return mldsa.MLDSA87PrivateKey.generate()
    return ec.generate_private_key(TOKEN_CURVES[key_type][1])


def pkcs8(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class IcmKeys:
    """The ICM's private keys, with the references icm.json records and the private files
    (mode 0600) that hold the ones kept in files."""

    signing: tuple[PrivateKey, ...] = field(repr=False)
    ca: ec.EllipticCurvePrivateKey = field(repr=False)
    refs: dict[str, Any]
    files: dict[str, bytes] = field(repr=False)


def make_keys(alg: str, family_id: bytes, keys: str | None) -> IcmKeys:
    """Make the suite's signing keys and the device CA key, in files or in the token ``keys``."""
    uri = parse_pkcs11_uri(keys) if keys is not None else None
    if uri is not None and uri.object is not None:
        raise InputError("--keys names the token only; trustprov labels the keys it makes")
    files: dict[str, bytes] = {}

    def make(key_type: str, file: str, role: str) -> tuple[PrivateKey, str]:
        if uri is not None and key_type in TOKEN_CURVES:
            label = f"trustprov-{family_id.hex()}-{role}"
            target: Pkcs11Uri = uri.with_object(label)
            return generate_token_key(target, key_type), str(target)
        key = new_file_key(key_type)
        files[file] = pkcs8(key)
        return key, file

    signing, refs = [], []
    for n, (name, (file, _)) in enumerate(zip(SUITES[alg], signing_key_files(alg), strict=True)):
        role = "prov-signing" if n == 0 else f"prov-signing-{n + 1}"
        key, ref = make(SIGNATURE_ALGORITHMS[name].key_type, file, role)
        signing.append(key)
        refs.append(ref)
    ca, ca_ref = make("ec-p256", CA_FILE, "device-ca")
    assert isinstance(ca, ec.EllipticCurvePrivateKey)  # noqa: S101 - ec-p256 makes an EC key
    return IcmKeys(tuple(signing), ca, {"prov-signing": refs, "device-ca": ca_ref}, files)


def load_keys(meta: dict[str, Any], alg: str, base: Any) -> IcmKeys:
    """The keys icm.json's references name (or the files of a directory made without them)."""
    refs = meta.get("keys")
    if refs is None:
        refs = {"prov-signing": [f for f, _ in signing_key_files(alg)], "device-ca": CA_FILE}
    signing_refs, ca_ref = refs.get("prov-signing"), refs.get("device-ca")
    if (
        not isinstance(signing_refs, list)
        or len(signing_refs) != len(SUITES[alg])
        or not all(isinstance(r, str) for r in signing_refs)
        or not isinstance(ca_ref, str)
    ):
        raise InputError(f"{base}: ICM directory is damaged (key references)")
    signing = tuple(load_private_key(r, base) for r in signing_refs)
    ca = load_private_key(ca_ref, base)
    if not isinstance(ca, ec.EllipticCurvePrivateKey):
        raise InputError(f"{base}: ICM directory is damaged (keys)")
    return IcmKeys(signing, ca, refs, {})
