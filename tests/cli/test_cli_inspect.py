"""`trustprov inspect` on every file the demo leaves: recognised, public fields only, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trustprov.formats import cbor

from .helpers import assert_error, ok, run, secret_forms

#: every trustprov artifact the demo leaves, by the kind inspect must recognise it as
DEMO_ARTIFACTS = {
    "icm/icm.json": "icm-metadata",
    "icm/prov-signing.pub.pem": "public-key",
    "icm/device-ca.pem": "certificate",
    "icm/prov-signing.key.pem": "private-key",
    "icm/device-ca.key.pem": "private-key",
    "icm/lot-signing.key.pem": "private-key",
    "icm/lot-signing.pub.pem": "public-key",
    "icm/family-secrets.cbor": "family-secrets",
    "icm/provisioning-software.cose": "software",
    "oem-chip/chip.farm": "farm",
    "oem-chip/lot.json": "lot-manifest",
    "oem-chip/lot.json.cose": "lot-signature",
    "assets/assets.toml": "asset-list",
    "assets/device-common.pem": "certificate",
    "oem/bundle.cbor": "bundle",
    "oem/enc-oem-share.cose": "sealed-value",
    "oem/enc-oem-rnd-input.cose": "sealed-value",
    "oem/enc-rnd-share.cose": "sealed-value",
    "oem/oem.json": "oem-metadata",
    "oem/issued-epochs.json": "issued-epochs",
    "oem/generated/oem-signing-key.pub.pem": "public-key",
    "cm/chips.farm": "farm",
    "cm/lot.json": "lot-manifest",
    "cm/lot.json.cose": "lot-signature",
    "cm/authorized.cbor": "authorized-set",
    "cm/records.sqlite": "records",
    "cm/receipts.cbor": "receipts",
    "cm/report.json": "run-summary",
}
#: the OEM's own input files: no trustprov artifact, and nothing of them may be shown
RAW_INPUTS = ("assets/app-aes-key.bin", "assets/firmware.bin", "assets/config.bin")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inspect") / "demo"
    ok("demo", "--chips", "5", "--out", out)
    return out


def test_the_demo_leaves_nothing_unaccounted(demo: Path) -> None:
    """Every file of the demo is in DEMO_ARTIFACTS or is one of the OEM's raw inputs."""
    files = {
        p.relative_to(demo).as_posix()
        for p in demo.rglob("*")
        if p.is_file() and not p.name.endswith((".lock", "-wal", "-shm"))  # SQLite and leases
    }
    # and the demo's own marker: the files it made, so that the next `make demo` replaces only
    # them (no party's artifact: inspect calls it none)
    marker = ".trustprov-demo.json"
    assert files == {*DEMO_ARTIFACTS, *RAW_INPUTS, "assets/storage-aes-key.bin", marker}
    assert_error(run("inspect", demo / marker), match="not a trustprov artifact")


@pytest.mark.parametrize(("name", "kind"), sorted(DEMO_ARTIFACTS.items()))
def test_every_demo_artifact(demo: Path, name: str, kind: str) -> None:
    path = demo / name
    doc = json.loads(ok("inspect", path, "--json").stdout)
    assert doc["kind"] == kind
    assert doc["file"] == str(path)
    human = ok("inspect", path).stdout
    assert human.startswith(f"{path}: {doc['what']}\n")


def test_bundle_human_output(demo: Path) -> None:
    out = ok("inspect", demo / "oem/bundle.cbor").stdout
    assert "name application, kind firmware, region app, length 262144, chunks 16" in out
    assert "sealed" in out


def test_farm_and_records_counts(demo: Path) -> None:
    farm = json.loads(ok("inspect", demo / "cm/chips.farm", "--json").stdout)
    assert farm["lifecycles"] == {"PROVISIONED": 5}
    records = json.loads(ok("inspect", demo / "cm/records.sqlite", "--json").stdout)
    (job,) = records["jobs"]
    assert (job["lot"], job["chips"], job["done"], job["pending"]) == ("LOT-0001", 5, 5, 0)


def test_a_records_store_is_read_without_the_chips_code(demo: Path) -> None:
    """`inspect records.sqlite` tells a records store from a farm by its tables and never loads
    the chips' code for it (it cost the command a third of its start)."""
    path = str(demo / "cm/records.sqlite")
    probe = (
        "import sys\nfrom trustprov.cli.main import cli\n"
        f"try:\n    cli(['inspect', {path!r}, '--json'], prog_name='trustprov')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout)["jobs"]
    modules = set(done.stderr.split())
    assert "trustprov.line.records" in modules
    assert not {"trustprov.link.farm_link", "trustprov.chip.device"} & modules


def test_secrets_are_never_printed(demo: Path) -> None:
    secrets_file = demo / "icm/family-secrets.cbor"
    shares = cbor.decode(secrets_file.read_bytes(), limit=4096, what="test").values()
    for args in ([], ["--json"]):
        out = ok("inspect", secrets_file, *args).stdout
        assert "SECRET" in out or '"secret": true' in out
        for share in shares:
            assert not any(f in out for f in secret_forms(share))
        for key in ("icm/prov-signing.key.pem", "icm/device-ca.key.pem"):
            text = (demo / key).read_text()
            out = ok("inspect", demo / key, *args).stdout
            assert not any(line in out for line in text.splitlines()[1:-1])


@pytest.mark.parametrize("name", RAW_INPUTS)
def test_raw_files_are_refused_and_not_shown(demo: Path, name: str) -> None:
    line = assert_error(run("inspect", demo / name), exit_code=2, match="not a trustprov artifact")
    assert str(demo / name) in line
    assert (demo / name).read_bytes()[:16].hex() not in line


def test_signature_verdict(demo: Path, tmp_path: Path) -> None:
    software = demo / "icm/provisioning-software.cose"
    good = ok("inspect", software, "--key", demo / "icm/prov-signing.pub.pem").stdout
    assert "signature: verified under" in good
    other = demo / "oem/generated/oem-signing-key.pub.pem"
    assert_error(run("inspect", software, "--key", other), exit_code=1, match="does not verify")


def test_lot_certificates(demo: Path) -> None:
    lot = demo / "cm/lot.json"
    out = ok("inspect", lot, "--verify", demo / "icm/device-ca.pem").stdout
    assert "all 5 issued by the device CA" in out
    wrong_ca = demo / "assets/device-common.pem"
    assert_error(run("inspect", lot, "--verify", wrong_ca), exit_code=1, match="device CA")


def test_damaged_and_misused(demo: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "bundle.cbor"
    damaged.write_bytes((demo / "oem/bundle.cbor").read_bytes()[:1000])
    assert_error(run("inspect", damaged), exit_code=2, match="a damaged bundle")
    assert_error(
        run("inspect", demo / "oem/bundle.cbor", "--key", demo / "icm/prov-signing.pub.pem"),
        exit_code=2,
        match="--key checks signed software",
    )
    assert_error(run("inspect", tmp_path / "none"), exit_code=2, match="no such file")


def test_inspect_refuses_a_fifo_a_device_and_a_directory_without_blocking(tmp_path: Path) -> None:
    """issue 24: inspect of a FIFO waited forever for a writer. Run in a process of its own,
    so that a regression fails on the timeout instead of hanging the suite."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device"), (tmp_path, "directory")):
        proc = subprocess.run(
            [sys.executable, "-m", "trustprov", "inspect", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert what in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
