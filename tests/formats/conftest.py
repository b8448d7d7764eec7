"""Builders of valid artifacts for the format tests, made without a chip: signed software,
sealed values, a sealed bundle, a lot manifest, link messages.

Exposed as fixtures (tests here have no package to import helpers from): ``builders`` is a
namespace of the functions, ``samples`` a dict of valid artifact bytes built once per session.
"""

from __future__ import annotations

import dataclasses
import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from trustprov.crypto.aead import A256GCM, Aead, cmac_tag
from trustprov.crypto.digest import chain_head
from trustprov.crypto.keys import PrivateKey, public_key_der
from trustprov.formats import cbor, cose
from trustprov.formats import deflate as formats_deflate
from trustprov.formats.bundle import (
    AssetEntry,
    Bundle,
    Manifest,
    SignedManifest,
    chunk_aad,
    chunk_count,
    chunk_nonce,
    chunk_plain_len,
)
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.lot import LotChip, LotManifest, device_ca_common_name
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages

FAMILY = bytes.fromhex("0102030405060708")
BUNDLE_ID = bytes(range(16))
ENCK = bytes([0x11]) * 32
ENCD = bytes([0x22]) * 32
AUTH = bytes([0x33]) * 32
SEAL_KEY = bytes([0x44]) * 32
CODE = cbor.encode({"main.py": b"pass", "pkg/util.py": b"X = 1\n"})  # a code archive

#: (name, kind, plaintext length, key type, slot, region)
DEFAULT_ASSETS: tuple[tuple[str, str, int, str | None, int | None, str | None], ...] = (
    ("k1", "key", 32, "aes-256", 1, None),
    ("fw", "firmware", 700, None, None, "app"),
    ("cfg", "config", 10, None, None, "config"),
)


def signing_key(alg: str) -> PrivateKey:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1())


def sign_software(key: PrivateKey | list[PrivateKey], alg: str, **overrides: Any) -> SignedSoftware:
    fields: dict[str, Any] = {
        "name": "trustprov-prov",
        "version": "1.2.3",
        "security_version": 4,
        "code": CODE,
    }
    fields.update(overrides)
    return SignedSoftware.sign(key, alg=alg, **fields)


def entry(
    name: str = "fw",
    kind: str = "firmware",
    length: int = 700,
    *,
    chunk_size: int = 256,
    key_type: str | None = None,
    slot: int | None = None,
    region: str | None = None,
    aead: Aead = A256GCM,
    **overrides: Any,
) -> AssetEntry:
    """A valid manifest entry (region "r-<name>" for data, unless given)."""
    is_key = kind == "key"
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "length": length,
        "chunks": chunk_count(length, chunk_size),
        "nonce": bytes([0xA5]) * (aead.nonce_len - 5),
        "digest": bytes([0x5A]) * 32,
        "key_type": key_type if is_key else None,
        "slot": slot if is_key else None,
        "region": None if is_key else (region or f"r-{name}"),
    }
    fields.update(overrides)
    return AssetEntry(**fields)


def manifest(assets: tuple[AssetEntry, ...] | None = None, **overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "family_id": FAMILY,
        "bundle_id": BUNDLE_ID,
        "epoch": 1,
        "min_security_version": 0,
        "aead": A256GCM,
        "chunk_size": 256,
        "assets": assets if assets is not None else (entry(),),
    }
    fields.update(overrides)
    return Manifest(**fields)


def mac0(m: Manifest, auth: bytes = AUTH, header_family: bytes | None = None) -> bytes:
    """The manifest as COSE_Mac0, as the firmware's SealingSession.finish makes it."""
    header = SignedManifest.protected_header(header_family or m.family_id)
    protected = cose.encode_protected(header)
    payload = m.to_payload()
    tag = cmac_tag(auth, cose.mac_structure(protected, payload))
    return cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, payload, tag).to_bytes()


def plaintext_of(name: str, length: int) -> bytes:
    seed = sum(name.encode())
    return bytes((seed + i * 13) % 256 for i in range(length))


def seal_bundle(
    assets: tuple[tuple[str, str, int, str | None, int | None, str | None], ...] = DEFAULT_ASSETS,
    *,
    aead: Aead = A256GCM,
    chunk_size: int = 256,
    deflate: int | None = None,
) -> Bundle:
    """A real sealed bundle: chunks under ENCK/ENCD, digests, manifest MACed under AUTH; with
    ``deflate``, its firmware and config assets deflated with that window (protocol.md 6.2)."""
    entries, all_chunks = [], []
    for index, (name, kind, length, key_type, slot, region) in enumerate(assets):
        e = entry(
            name,
            kind,
            length,
            chunk_size=chunk_size,
            key_type=key_type,
            slot=slot,
            region=region,
            aead=aead,
            nonce=bytes([index + 1]) * (aead.nonce_len - 5),
            deflate=deflate if kind in ("firmware", "config") else None,
        )
        data = plaintext_of(name, length)
        chunks, offset = [], 0
        for i in range(e.chunks):
            n = chunk_plain_len(e.length, chunk_size, i)
            nonce = chunk_nonce(e.nonce, i, i == e.chunks - 1)
            key = ENCK if e.is_key else ENCD
            plain = data[offset : offset + n]
            if e.deflate is not None:
                plain = formats_deflate.deflate(plain, e.deflate)
            chunks.append(aead.seal(key, nonce, plain, chunk_aad(BUNDLE_ID, index)))
            offset += n
        entries.append(dataclasses.replace(e, digest=chain_head(chunks)))
        all_chunks.append(tuple(chunks))
    m = manifest(tuple(entries), aead=aead, chunk_size=chunk_size)
    return Bundle(SignedManifest.from_bytes(mac0(m)), tuple(all_chunks))


_CHIP_KEY = ec.generate_private_key(ec.SECP256R1())
_CA_KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(uid: bytes, family: bytes = FAMILY) -> bytes:
    """A chip certificate (DER) bound as a lot manifest requires: subject serialNumber and CN
    are the UID in hex, the issuer is the family's device CA (protocol.md section 7)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.SERIAL_NUMBER, uid.hex()),
            x509.NameAttribute(NameOID.COMMON_NAME, uid.hex()),
        ]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_ca_common_name(family))])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(_CHIP_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(_CA_KEY, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def lot(n_chips: int = 2, name: str = "LOT-1") -> LotManifest:
    uids = [bytes([i]) * 16 for i in range(n_chips)]
    return LotManifest(name, FAMILY, tuple(LotChip(uid, certificate(uid)) for uid in uids))


@pytest.fixture(scope="session")
def builders() -> SimpleNamespace:
    return SimpleNamespace(
        FAMILY=FAMILY,
        BUNDLE_ID=BUNDLE_ID,
        ENCK=ENCK,
        ENCD=ENCD,
        AUTH=AUTH,
        SEAL_KEY=SEAL_KEY,
        CODE=CODE,
        signing_key=signing_key,
        sign_software=sign_software,
        entry=entry,
        manifest=manifest,
        mac0=mac0,
        plaintext_of=plaintext_of,
        seal_bundle=seal_bundle,
        certificate=certificate,
        lot=lot,
    )


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, PrivateKey]:
    return {alg: signing_key(alg) for alg in ("ES256", "ES384", "EdDSA")}


@pytest.fixture(scope="session")
def samples(signing_keys: dict[str, PrivateKey]) -> dict[str, bytes]:
    """One valid instance of every artifact a parser takes from an untrusted peer."""
    bundle = seal_bundle()
    out = {
        f"software-{alg}": sign_software(key, alg).to_bytes() for alg, key in signing_keys.items()
    }
    pq = mldsa.MLDSA65PrivateKey.from_seed_bytes(bytes(range(32)))
    out["software-hybrid"] = sign_software(
        [signing_keys["ES256"], pq], "ES256+ML-DSA-65"
    ).to_bytes()
    out["immutable-hybrid"] = ImmutableMemory(
        FAMILY,
        *(bytes([n]) * 32 for n in (1, 2, 3, 4)),
        software_keys=(public_key_der(signing_keys["ES256"]), public_key_der(pq)),
        software_suite="ES256+ML-DSA-65",
    ).to_bytes()
    out.update(
        {
            "sealed": SealedValue.seal(
                SEAL_KEY, "oem-share", FAMILY, bytes(12), bytes(range(32))
            ).to_bytes(),
            "manifest-mac0": bundle.signed.to_bytes(),
            "manifest-payload": bundle.manifest.to_payload(),
            "bundle": bundle.to_bytes(),
            "lot": lot(1).to_json(),
            "immutable": ImmutableMemory(
                FAMILY,
                bytes([1]) * 32,
                bytes([2]) * 32,
                bytes([3]) * 32,
                bytes([4]) * 32,
                (public_key_der(signing_keys["ES256"]),),
            ).to_bytes(),
            "request": messages.encode_request("seal-chunk", {"index": 1, "data": b"abc"}),
            "response-ok": messages.encode_ok({"chunk": b"\x00" * 20, "n": 3}),
            "response-error": messages.encode_error("bad-request", "no such asset"),
        }
    )
    return out
