"""Where the ICM's private keys live: PEM files in ICM_DIR, or a PKCS#11 token (`icm init --keys`).

icm.json records a key reference (roles/icm/keyref.py) per key, never a key or a PIN::

    "keys": {"prov-signing": [REF, ...],   one per algorithm of the suite, in its order
             "device-ca": REF,
             "lot-signing": REF}             P-256, signs lot manifests (formats/lotsig.py)

A directory made before key references existed has no "keys": its keys are the files of
`signing_key_files` and ``device-ca.key.pem``, and no lot-signing key (it cannot sign lots:
`IcmKeys.lot` is None). With ``--keys pkcs11:token=...`` every EC key is
made inside the token (sensitive, not extractable) under the label
``trustprov-<FAMILY_ID hex>-<role>``; a key type the token cannot hold (ML-DSA: SoftHSM2 2.6 has
no ML-DSA mechanism; Ed25519 is signed over the whole message, which would send the token whole
images) is made in a file of mode 0600 beside icm.json, and its reference says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, SUITES, PrivateKey
from trustprov.errors import FormatError, InputError
from trustprov.formats import cbor
from trustprov.roles.files import read_bytes
from trustprov.roles.icm.keyref import Pkcs11Uri, parse_pkcs11_uri
from trustprov.roles.icm.signer import (
    TOKEN_CURVES,
    destroy_labelled,
    generate_token_aes_key,
    generate_token_key,
    load_private_key,
    token_gcm_decrypt,
    token_gcm_encrypt,
)

CA_FILE = "device-ca.key.pem"
LOT_FILE = "lot-signing.key.pem"
LOT_PUBLIC_FILE = "lot-signing.pub.pem"
SECRETS_FILE = "family-secrets.cbor"
WRAPPED_FILE = "family-secrets.wrapped.cbor"
SECRET_NAMES = ("hw-share", "rom-share", "k-oem-share", "k-oem-master-share")
GCM_NONCE_LEN = 12
_WRAP_AAD = b"trustprov family secrets/"


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
    lot: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)


def label_prefix(family_id: bytes) -> str:
    """What the label of every token object of a family begins with."""
    return f"trustprov-{family_id.hex()}-"


def forget_family(family_id: bytes, keys: str) -> None:
    """Remove from the token whatever a failed init of this family made there."""
    destroy_labelled(parse_pkcs11_uri(keys), label_prefix(family_id))


def make_keys(alg: str, family_id: bytes, keys: str | None) -> IcmKeys:
    """Make the suite's signing keys and the device CA key, in files or in the token ``keys``."""
    uri = parse_pkcs11_uri(keys) if keys is not None else None
    if uri is not None and uri.object is not None:
        raise InputError("--keys names the token only; trustprov labels the keys it makes")
    files: dict[str, bytes] = {}

    def make(key_type: str, file: str, role: str) -> tuple[PrivateKey, str]:
        if uri is not None and key_type in TOKEN_CURVES:
            label = label_prefix(family_id) + role
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
    lot, lot_ref = make("ec-p256", LOT_FILE, "lot-signing")
    assert isinstance(ca, ec.EllipticCurvePrivateKey)  # noqa: S101 - ec-p256 makes an EC key
    assert isinstance(lot, ec.EllipticCurvePrivateKey)  # noqa: S101 - ec-p256 makes an EC key
    refs_map = {"prov-signing": refs, "device-ca": ca_ref, "lot-signing": lot_ref}
    return IcmKeys(tuple(signing), ca, refs_map, files, lot)


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
    lot_ref = refs.get("lot-signing")
    if lot_ref is not None and not isinstance(lot_ref, str):
        raise InputError(f"{base}: ICM directory is damaged (key references)")
    ca = load_private_key(ca_ref, base)
    lot = None if lot_ref is None else load_private_key(lot_ref, base)
    if not isinstance(ca, ec.EllipticCurvePrivateKey) or not isinstance(
        lot, ec.EllipticCurvePrivateKey | None
    ):
        raise InputError(f"{base}: ICM directory is damaged (keys)")
    return IcmKeys(signing, ca, refs, {}, lot)


# -- the family secrets --------------------------------------------------------------------------
@dataclass(frozen=True)
class FamilySecrets:
    """HW_SHARE, ROM_SHARE, K_OEM_SHARE and K_OEM_MASTER_SHARE, opened only when asked for.

    In a file (``family-secrets.cbor``, 0600) they are read when the ICM directory is loaded;
    wrapped (``family-secrets.wrapped.cbor``) they are decrypted inside the token by each
    `open`, that is while a lot is being made, and never kept."""

    _open: Callable[[], dict[str, bytes]] = field(repr=False)
    wrapped: bool

    def open(self) -> dict[str, bytes]:
        return self._open()


def _parse_secrets(data: bytes, what: str) -> dict[str, bytes]:
    m = cbor.expect_map(cbor.decode(data, limit=4096, what=what), what, set(SECRET_NAMES))
    return {n: cbor.expect_bstr(m[n], f"{what}: {n}", 32) for n in SECRET_NAMES}


def store_secrets(
    secrets: dict[str, bytes], family_id: bytes, keys: str | None, rng: Callable[[int], bytes]
) -> tuple[dict[str, bytes], str]:
    """The private file(s) that keep the secrets, and the name icm.json records: in clear in a
    0600 file, or with a token encrypted under a new AES key made in it (CKM_AES_GCM, the AAD
    naming the family, the nonce from ``rng``)::

        family-secrets.wrapped.cbor = {"key": URI of the AES key, "nonce": bstr .size 12,
                                       "ciphertext": bstr (GCM ciphertext || 16-byte tag)}
    """
    plain = cbor.encode(secrets)
    if keys is None:
        return {SECRETS_FILE: plain}, SECRETS_FILE
    uri = parse_pkcs11_uri(keys).with_object(label_prefix(family_id) + "family-wrap")
    generate_token_aes_key(uri)
    nonce = rng(GCM_NONCE_LEN)
    ciphertext = token_gcm_encrypt(uri, nonce, plain, _WRAP_AAD + family_id)
    wrapped = {"key": str(uri), "nonce": nonce, "ciphertext": ciphertext}
    return {WRAPPED_FILE: cbor.encode(wrapped)}, WRAPPED_FILE


def load_secrets(meta: dict[str, Any], family_id: bytes, base: Path) -> FamilySecrets:
    """The family secrets icm.json names (``family-secrets.cbor`` if it names none)."""
    name = meta.get("secrets", SECRETS_FILE)
    if name not in (SECRETS_FILE, WRAPPED_FILE):
        raise InputError(f"{base}: ICM directory is damaged (family secrets)")
    what = "family secrets"
    try:
        data = read_bytes(base / name, limit=4096, what=what)
        if name == SECRETS_FILE:
            values = _parse_secrets(data, what)
            return FamilySecrets(lambda: dict(values), wrapped=False)
        w = cbor.expect_map(
            cbor.decode(data, limit=4096, what=what), what, {"key", "nonce", "ciphertext"}
        )
        uri = parse_pkcs11_uri(cbor.expect(w["key"], str, f"{what}: key"))
        nonce = cbor.expect_bstr(w["nonce"], f"{what}: nonce", GCM_NONCE_LEN)
        ciphertext = cbor.expect_bstr(w["ciphertext"], f"{what}: ciphertext")
    except FormatError as e:
        raise InputError(f"{base}: ICM directory is damaged ({e.message})") from e

    def unwrap() -> dict[str, bytes]:
        plain = token_gcm_decrypt(uri, nonce, ciphertext, _WRAP_AAD + family_id)
        try:
            return _parse_secrets(plain, what)
        except FormatError as e:
            raise InputError(f"{base}: ICM directory is damaged (family secrets)") from e

    return FamilySecrets(unwrap, wrapped=True)
