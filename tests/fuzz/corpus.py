"""Valid artifacts to mutate, made by a small world of the real role tools.

`build_corpus(root)` runs the ICM and OEM tools (as ``tests/conftest.py`` ``build_world`` does,
but smaller, so that mutating the artifacts is fast): a chip family, its signed software, an OEM
chip and a lot of CM chips, two sealed bundles (AES-GCM and AES-CCM, every asset kind and key
type), and the OEM's sealed values. It adds small signed software images (ES256, ES384, EdDSA),
lot manifests, asset lists, link requests and responses. Everything lands in ``root``.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from helpers import ASSET_ENTRIES  # tests/helpers.py: the conftest asset list

from trustprov.crypto.keys import PrivateKey
from trustprov.formats import cbor
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Bundle
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages
from trustprov.roles import icm, oem
from trustprov.roles.oem import assets as asset_list

from .chips import ChipLab, build_chip_lab

KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))
P384_KEY = bytes([0x42] * 48)
FIRMWARE = bytes((i * 7 + 3) % 251 for i in range(700))

ASSETS_GCM = "[bundle]\nepoch = 1\nchunk-size = 256\n" + ASSET_ENTRIES

ASSETS_CCM = """\
[bundle]
epoch = 7
aead = "AES-CCM"
chunk-size = 300
min-security-version = 1

[[asset]]
name = "p384"
kind = "key"
key-type = "ec-p384"
slot = 3
hex = "{p384}"

[[asset]]
name = "raw-16"
kind = "key"
key-type = "raw"
slot = 4
hex = "000102030405060708090a0b0c0d0e0f"

[[asset]]
name = "device-ca"
kind = "certificate"
region = "ca"
file = "ca.pem"

[[asset]]
name = "settings"
kind = "config"
region = "settings"
hex = "0a0b0c"

[[asset]]
name = "ed"
kind = "generate"
key-type = "ed25519"
slot = 9

[[asset]]
name = "aes-gen"
kind = "generate"
key-type = "aes-256"
slot = 10

[[asset]]
name = "p384-gen"
kind = "generate"
key-type = "ec-p384"
slot = 11
"""


@dataclass(repr=False)
class Corpus:
    """Valid artifacts by kind, each a list of bytes, and the chip lab for the link."""

    root: Path
    artifacts: dict[str, list[bytes]]
    assets_dir: Path
    lab: ChipLab


def _small_software(alg: str) -> bytes:
    key: PrivateKey
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1())
    code = cbor.encode({"firmware/main.py": b"pass\n", "errors.py": b"X = 1\n"})
    return SignedSoftware.sign(
        key, alg=alg, name="fuzz-sw", version="0.0.1", security_version=3, code=code
    ).to_bytes()


def _self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz CA")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def build_corpus(root: Path) -> Corpus:
    root.mkdir(parents=True, exist_ok=True)
    made = icm.init(root / "icm")
    software_path = root / "software.cose"
    icm.sign_software(made, software_path)
    oem_lot = icm.manufacture(made, root / "oem.farm", "OEM", 1, root / "oem-lot.json")
    icm.manufacture(made, root / "cm.farm", "LOT-A", 2, root / "lot.json")

    assets_dir = root / "assets"
    assets_dir.mkdir()
    (assets_dir / "key2.bin").write_bytes(KEY2)
    (assets_dir / "fw.bin").write_bytes(FIRMWARE)
    (assets_dir / "ca.pem").write_bytes(_self_signed_pem())
    tomls = {
        "gcm": ASSETS_GCM.format(key1=KEY1.hex()).encode(),
        "ccm": ASSETS_CCM.format(p384=P384_KEY.hex()).encode(),
    }
    bundles: dict[str, Bundle] = {}
    for name, text in tomls.items():
        path = assets_dir / f"{name}.toml"
        path.write_bytes(text)
        result = oem.keygen(
            root / "oem.farm",
            oem_lot.uids[0],
            software_path=software_path,
            assets=asset_list.load(path),
            out=root / f"oem-{name}",
        )
        bundles[name] = result.bundle

    lab = build_chip_lab(root, made, software_path.read_bytes(), oem_lot.uids[0])

    sealed = [
        (root / f"oem-{n}" / f).read_bytes()
        for n in tomls
        for f in ("enc-oem-share.cose", "enc-oem-rnd-input.cose", "enc-rnd-share.cose")
    ]
    mac0 = [b.signed.to_bytes() for b in bundles.values()]
    lots = [(root / "lot.json").read_bytes(), (root / "oem-lot.json").read_bytes()]
    lots.append(json.dumps({"lot": "EMPTY", "family": made.family_id.hex(), "chips": []}).encode())
    requests = sorted({r for _, r in lab.seeds})
    responses = [
        messages.encode_ok({}),
        messages.encode_ok(lab.status_result),
        messages.encode_ok({"security-counter": 1}),
        messages.encode_ok({"assets": 5, "bundle-id": bytes(16), "epoch": 1}),
        messages.encode_error("bad-manifest", "manifest refused: CMAC does not verify"),
        messages.encode_error("internal", "internal fault (ValueError)"),
    ]
    uids = [c["uid"] for c in json.loads(lots[0])["chips"]]
    uids = [bytes.fromhex(u) for u in uids]
    auth = AuthorizedSet.from_uids(uids, made.family_id)
    artifacts: dict[str, list[bytes]] = {
        "software": [
            software_path.read_bytes(),
            *(_small_software(a) for a in ("ES256", "ES384", "EdDSA")),
        ],
        "sealed": sealed,
        "manifest": mac0,
        "payload": [b.manifest.to_payload() for b in bundles.values()],
        "bundle": [b.to_bytes() for b in bundles.values()],
        "immutable": [made.immutable.to_bytes()],
        "lot": lots,
        "request": requests,
        "response": responses,
        "toml": list(tomls.values()),
        "auth": [auth.to_bytes(), AuthorizedSet.from_uids(uids[:1]).to_bytes()],
        "proof": [auth.proof(u).to_bytes() for u in uids[:3]],
        "lotsig": [
            (root / "lot.json.cose").read_bytes(),
            (root / "oem-lot.json.cose").read_bytes(),
        ],
    }
    return Corpus(root=root, artifacts=artifacts, assets_dir=assets_dir, lab=lab)
