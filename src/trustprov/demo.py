"""The whole flow on the embedded default: virtual chips, SQLite, a sample asset set.

ICM init and signing -> an OEM provisioning chip -> OEM keygen (FIG. 2) -> a CM lot of N chips
provisioned (FIG. 3) -> every chip checked through the test-only probe to hold exactly the OEM's
assets -> the chips' receipts exported from the records (`cm receipts`) and reconciled by the
OEM against the chips it authorized (`oem reconcile --auth`): every chip must have returned a
valid receipt. DIR keeps what the parties exchanged, so each step can be repeated by hand with
the CLI.

A finished run leaves a marker, ``DIR/.trustprov-demo.json``, naming every file it made with its
SHA-256. `clear_previous` empties a directory only when it holds exactly those files, unchanged,
and nothing else: a demo never deletes what it did not make (a reader's own files, or a demo's
file changed since), and refuses the whole directory rather than part of it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.chip.model import Lifecycle
from trustprov.chip.probe import Probe
from trustprov.crypto.keys import check_private_scalar, private_key_from_material, public_key_pem
from trustprov.errors import InputError
from trustprov.line.receipts import export_receipts
from trustprov.line.records import RecordStore
from trustprov.line.station import LotSummary, provision_lot
from trustprov.link.farm_link import FarmLink
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.files import PRIVATE, write_file
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem import reconcile
from trustprov.roles.oem.authorize import authorize
from trustprov.roles.oem.reconcile import Reconciliation

FIRMWARE_SIZE = 256 * 1024
MARKER = ".trustprov-demo.json"
MARKER_KIND = "trustprov demo output"
CM_LOT = "LOT-0001"
OEM_LOT = "OEM-PROV"
Random = Callable[[int], bytes]

ASSETS_TOML = """\
# The demo's sample asset set: what an OEM seals on its provisioning chip.
[bundle]
epoch = 1
aead = "AES-GCM"
chunk-size = 16384

[[asset]]
name = "app-aes-key"
kind = "key"
key-type = "aes-256"
slot = 1
file = "app-aes-key.bin"

[[asset]]
name = "storage-aes-key"
kind = "key"
key-type = "aes-256"
slot = 2
file = "storage-aes-key.bin"

[[asset]]
name = "device-common-cert"
kind = "certificate"
region = "cert"
file = "device-common.pem"

[[asset]]
name = "application"
kind = "firmware"
region = "app"
file = "firmware.bin"

[[asset]]
name = "settings"
kind = "config"
region = "config"
file = "config.bin"

[[asset]]
name = "oem-signing-key"
kind = "generate"
key-type = "ec-p256"
slot = 8

[[asset]]
name = "cloud-identity-key"
kind = "device-key"
key-type = "ec-p256"
slot = 9
"""


def _device_common_cert(rng: Random) -> bytes:
    key = private_key_from_material("ec-p256", rng(40))
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101 - ec-p256 gives an EC key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example OEM device-common")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def write_sample_assets(d: Path, rng: Random = os.urandom) -> Path:
    d.mkdir(parents=True)
    write_file(d / "app-aes-key.bin", rng(32), mode=PRIVATE)
    write_file(d / "storage-aes-key.bin", rng(32), mode=PRIVATE)
    write_file(d / "device-common.pem", _device_common_cert(rng))
    write_file(d / "firmware.bin", rng(FIRMWARE_SIZE))
    config = {"product": "example-sensor", "telemetry-interval-s": 60, "region": "eu"}
    write_file(d / "config.bin", json.dumps(config, sort_keys=True).encode())
    write_file(d / "assets.toml", ASSETS_TOML.encode())
    return d / "assets.toml"


@dataclass
class DemoResult:
    summary: LotSummary
    verified: int
    mismatched: list[str]
    reconciliation: Reconciliation

    def to_json(self) -> dict[str, Any]:
        r = self.reconciliation
        return {
            **self.summary.to_json(),
            "verified": self.verified,
            "mismatched": len(self.mismatched),
            "mismatched_chips": self.mismatched[:20],
            "receipts": {**r.counts, "missing": len(r.missing)},
            "missing_chips": [u.hex() for u in r.missing[:20]],
        }


def _expected(assets: asset_list.AssetList, public_keys: dict[str, bytes]) -> dict[str, Any]:
    slots: dict[int, bytes | tuple[str, bytes | None]] = {}
    regions: dict[str, bytes] = {}
    for a in assets.assets:
        if a.kind == "device-key":  # each chip's own: any valid key of its type will do
            assert a.slot is not None  # noqa: S101 - parse checked
            slots[a.slot] = (a.key_type or "", None)
        elif a.kind == "generate":
            assert a.slot is not None  # noqa: S101 - parse checked
            slots[a.slot] = (a.key_type or "", public_keys[a.name])
        elif a.kind == "key":
            assert a.slot is not None  # noqa: S101 - parse checked
            slots[a.slot] = a.read(0, a.length)
        else:
            assert a.region is not None  # noqa: S101 - parse checked
            regions[a.region] = a.read(0, a.length)
    return {"slots": slots, "regions": regions}


def _holds_exactly(probe: Probe, uid: bytes, expected: dict[str, Any]) -> bool:
    r = probe.read(uid)
    if r.lifecycle != Lifecycle.PROVISIONED or r.slots.keys() != expected["slots"].keys():
        return False
    for n, want in expected["slots"].items():
        got = r.slots[n].value
        if isinstance(want, tuple):  # generated: the slot's private key must match the public key
            key_type, pem = want
            if key_type != "ec-p256":
                return False
            try:  # a device key is any valid key: each chip made its own
                check_private_scalar(key_type, got)
            except ValueError:
                return False
            scalar = int.from_bytes(got)
            if (
                pem is not None
                and public_key_pem(ec.derive_private_key(scalar, ec.SECP256R1())) != pem
            ):
                return False
        elif got != want:
            return False
    return bool(r.regions == expected["regions"])


@dataclass(frozen=True)
class Family:
    """What the ICM hands on: its family, the signed software, and the OEM's chip."""

    icm: icm.Icm
    software: Path
    oem_farm: Path
    oem_uid: bytes


def make_family(out: Path, keys: str | None = None) -> Family:
    """ICM: a family in OUT/icm (its keys in the token ``keys`` names, if given), its signed
    software, one chip for the OEM in OUT/oem-chip."""
    made = icm.init(out / "icm", keys=keys)
    software = out / "icm" / "provisioning-software.cose"
    icm.sign_software(made, software)
    (out / "oem-chip").mkdir()
    farm = out / "oem-chip" / "chip.farm"
    oem_lot = icm.manufacture(made, farm, OEM_LOT, 1, out / "oem-chip" / "lot.json")
    return Family(made, software, farm, oem_lot.uids[0])


def seal_bundle(
    out: Path, family: Family, assets: asset_list.AssetList, auth: Path | None = None
) -> oem.SealResult:
    """OEM: FIG. 2 on its chip, sealing ``assets`` into OUT/oem (for the chips of ``auth``)."""
    return oem.keygen(
        family.oem_farm,
        family.oem_uid,
        software_path=family.software,
        assets=assets,
        out=out / "oem",
        auth=auth,
    )


def run(
    out: Path,
    *,
    chips: int = 1000,
    jobs: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    icm_keys: str | None = None,
) -> DemoResult:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not empty; give a new directory")
    if chips < 1:
        raise InputError("--chips must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    toml = write_sample_assets(out / "assets")
    assets = asset_list.load(toml)

    # ICM: the family, the signed software, one chip for the OEM, a lot for the CM
    family = make_family(out, icm_keys)
    (out / "cm").mkdir()
    icm.manufacture(family.icm, out / "cm" / "chips.farm", CM_LOT, chips, out / "cm" / "lot.json")

    # OEM: verify the software, authorize the CM's lot (its ICM signature checked), then
    # FIG. 2 on its provisioning chip, for the authorized chips only
    oem.verify_software(family.software, out / "icm" / "prov-signing.pub.pem")
    auth = out / "cm" / "authorized.cbor"  # the OEM sends it to the CM with the bundle
    authorize([out / "cm" / "lot.json"], auth, out / "icm" / "lot-signing.pub.pem")
    sealed = seal_bundle(out, family, assets, auth)

    # CM: FIG. 3 on every chip of the lot, each with its inclusion proof
    job = Job.load(
        family.software, out / "oem" / "enc-oem-share.cose", out / "oem" / "bundle.cbor", auth
    )
    summary = provision_lot(
        farm_path=out / "cm" / "chips.farm",
        lot=CM_LOT,
        job=job,
        records_url=f"sqlite:///{out / 'cm' / 'records.sqlite'}",
        jobs=jobs,
        station="demo",
        on_start=on_start,
        on_outcome=on_outcome,
    )
    if summary.signum is not None:  # the line stopped cleanly at Ctrl-C: so does the demo
        raise KeyboardInterrupt

    # Check, through the test-only probe, that every chip holds exactly the OEM's assets
    expected = _expected(assets, sealed.public_keys)
    mismatched = []
    with FarmLink(out / "cm" / "chips.farm") as farm:
        uids = farm.uids(CM_LOT)
    with Probe(out / "cm" / "chips.farm") as probe:
        for uid in uids:
            if not _holds_exactly(probe, uid, expected):
                mismatched.append(uid.hex())
    # CM -> OEM: the receipts; the OEM reconciles them against the chips it authorized (the
    # AUTH of `oem authorize`) and its bundle, under the ICM's device CA
    with RecordStore(f"sqlite:///{out / 'cm' / 'records.sqlite'}", create=False) as store:
        export_receipts(store, CM_LOT, out / "cm" / "receipts.cbor", "cbor-seq")
    reconciliation = reconcile.run(
        auth=auth,
        ca=out / "icm" / "device-ca.pem",
        bundle=out / "oem" / "bundle.cbor",
        receipts=out / "cm" / "receipts.cbor",
        jobs=jobs,
    )
    result = DemoResult(summary, len(uids) - len(mismatched), mismatched, reconciliation)
    write_file(out / "cm" / "report.json", json.dumps(result.to_json(), indent=2).encode() + b"\n")
    mark(out)
    return result


# -- the marker: what a demo made, so that the next one replaces that and nothing else --------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files_in(out: Path) -> tuple[dict[str, Path], list[str]]:
    """(every regular file under ``out`` by its relative path, every other entry that is not a
    directory: a symbolic link, a FIFO, ...); symbolic links are never followed."""
    files: dict[str, Path] = {}
    others: list[str] = []
    for top, dirs, names in os.walk(out):
        for name in [*names, *(d for d in dirs if Path(top, d).is_symlink())]:
            path = Path(top, name)
            rel = path.relative_to(out).as_posix()
            if path.is_file() and not path.is_symlink():
                files[rel] = path
            else:
                others.append(rel)
    return files, others


def mark(out: Path) -> None:
    """Write the marker of a finished run: every file under ``out`` with its SHA-256."""
    files, _ = _files_in(out)
    made = {rel: _sha256(path) for rel, path in sorted(files.items()) if rel != MARKER}
    body = {"kind": MARKER_KIND, "files": made}
    write_file(out / MARKER, json.dumps(body, indent=1, sort_keys=True).encode() + b"\n")


def clear_previous(out: Path) -> None:
    """Empty ``out`` if it holds a previous demo's files, unchanged, and nothing else; otherwise
    raise `InputError` naming what is not the demo's, and delete nothing."""
    try:
        marker = json.loads((out / MARKER).read_bytes())
        made = marker["files"] if marker.get("kind") == MARKER_KIND else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        made = None
    if not isinstance(made, dict):
        raise InputError(
            f"{out} is not empty and is not a previous demo's output (no {MARKER}); "
            "give a new or empty directory"
        )
    files, others = _files_in(out)
    files.pop(MARKER, None)
    foreign = sorted(others + [rel for rel in files if rel not in made])
    changed = sorted(
        rel for rel, path in files.items() if rel in made and _sha256(path) != made[rel]
    )
    if foreign or changed:
        names = [*foreign, *(f"{rel} (changed since the demo)" for rel in changed)]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise InputError(
            f"{out} holds more than a previous demo's output: {shown}; "
            "move those, or give another directory"
        )
    for entry in out.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
