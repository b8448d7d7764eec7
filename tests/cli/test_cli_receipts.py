"""`trustprov cm receipts` and `trustprov oem reconcile`: the chips' receipts from the records
to the OEM, in both formats, with the exit codes of the error contract."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from trustprov.formats.authz import AuthorizedSet

from .conftest import CliWorld
from .helpers import assert_error, ok, run


@pytest.fixture
def provisioned(cw: CliWorld, tmp_path: Path) -> Path:
    """A lot provisioned through the CLI; its records store."""
    farm = cw.fresh_farm(tmp_path)
    ok("cm", "provision", "--farm", farm, "--lot", cw.a.cm_lot, "--software", cw.a.software,
       "--share", cw.a.share, "--bundle", cw.a.bundle, "--json")  # fmt: skip
    return tmp_path / "records.sqlite"


def _auth(cw: CliWorld, tmp_path: Path, uids: list[str] | None = None) -> Path:
    path = tmp_path / "auth.cbor"
    chosen = cw.a.cm_uids if uids is None else uids
    path.write_bytes(AuthorizedSet.from_uids(bytes.fromhex(u) for u in chosen).to_bytes())
    return path


def _reconcile(
    cw: CliWorld, tmp_path: Path, receipts: Path, *extra: str | Path
) -> list[str | Path]:
    return ["oem", "reconcile", "--ca", cw.a.icm / "device-ca.pem", "--bundle", cw.a.bundle,
            "--receipts", receipts, "--auth", _auth(cw, tmp_path), *extra]  # fmt: skip


@pytest.mark.parametrize("fmt", ["cbor-seq", "jsonl"])
def test_export_and_reconcile(cw: CliWorld, tmp_path: Path, provisioned: Path, fmt: str) -> None:
    out = tmp_path / f"receipts.{fmt}"
    result = ok("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--lot", cw.a.cm_lot,
                "--out", out, "--format", fmt)  # fmt: skip
    assert f"{len(cw.a.cm_uids)} receipts written" in result.stderr
    csv = tmp_path / "keys.csv"
    doc = json.loads(ok(*_reconcile(cw, tmp_path, out, "--json", "--csv", csv)).stdout)
    assert doc["counts"]["valid"] == len(cw.a.cm_uids)
    assert doc["counts"]["missing"] == 0
    rows = csv.read_text().splitlines()
    assert rows[0] == "uid,counter,slot,name,public_key"
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(cw.a.cm_uids)
    # no overwrite without --force
    assert_error(run("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--out", out),
                 exit_code=2, match="exists")  # fmt: skip
    ok("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--out", out, "--force")
    # a lot the records do not hold is bad input, not an empty file
    assert_error(run("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--lot", "NOPE",
                     "--out", tmp_path / "none.cbor"), exit_code=2, match="no lot")  # fmt: skip
    assert not (tmp_path / "none.cbor").exists()


def test_reconcile_reports_missing_and_fails_on_duplicates(
    cw: CliWorld, tmp_path: Path, provisioned: Path
) -> None:
    out = tmp_path / "r.cbor"
    ok("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--out", out)
    text = ok(*_reconcile(cw, tmp_path, out)).stdout
    assert f"{len(cw.a.cm_uids)} valid" in text
    doubled = tmp_path / "doubled.cbor"
    doubled.write_bytes(out.read_bytes() * 2)
    result = run(*_reconcile(cw, tmp_path, doubled))
    assert result.exit_code == 1
    assert f"{len(cw.a.cm_uids)} duplicate" in result.stdout
    with sqlite3.connect(provisioned) as c:  # a chip whose receipt the CM withholds
        c.execute("UPDATE results SET receipt = NULL WHERE uid = ?", (cw.a.cm_uids[0],))
    ok("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--out", out, "--force")
    text = ok(*_reconcile(cw, tmp_path, out)).stdout
    assert "1 missing" in text
    assert f"missing {cw.a.cm_uids[0]}" in text


def test_reconcile_bad_inputs_exit_2(cw: CliWorld, tmp_path: Path) -> None:
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(b"\xd2\x84\x43")  # the CM's artifact, damaged: exit 1, as a bad bundle
    assert_error(run(*_reconcile(cw, tmp_path, bad)), exit_code=1, match="not a whole receipt")
    assert_error(run(*_reconcile(cw, tmp_path, tmp_path / "none")), exit_code=2)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    argv = [str(a) for a in _reconcile(cw, tmp_path, bad)]
    argv[argv.index("--ca") + 1] = str(ca)
    assert_error(run(*argv), exit_code=2, match="device CA")


def test_receipts_of_an_old_records_store_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE records_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute("INSERT INTO records_meta VALUES ('format', 'trustprov-records-2')")
    result = run("cm", "receipts", "--records", f"sqlite:///{db}", "--out", tmp_path / "r")
    assert_error(result, exit_code=2, match="trustprov-records-2")


def test_provision_a_farm_under_the_lot_manifest_and_reconcile_by_lot(
    cw: CliWorld, tmp_path: Path
) -> None:
    """cm provision --farm takes the ICM's signed lot manifest as the anchor of every receipt;
    oem reconcile --lot counts a receipt whose chip the lots put elsewhere as wrong-lot."""
    farm = cw.fresh_farm(tmp_path)
    job = ["cm", "provision", "--farm", farm, "--lot", cw.a.cm_lot, "--software", cw.a.software,
           "--share", cw.a.share, "--bundle", cw.a.bundle]  # fmt: skip
    other_lot = cw.a.lot_json.parent / "oem-lot.json"
    assert_error(run(*job, "--manifest", other_lot), exit_code=2, match="lot manifest is for lot")
    key = cw.a.icm / "lot-signing.pub.pem"
    doc = json.loads(ok(*job, "--manifest", cw.a.lot_json, "--icm-key", key, "--json").stdout)
    assert (doc["provisioned"], doc["bad_receipt"]) == (len(cw.a.cm_uids), 0)
    out = tmp_path / "receipts.cbor"
    ok("cm", "receipts", "--records", f"sqlite:///{tmp_path / 'records.sqlite'}", "--out", out)
    right = json.loads(ok(*_reconcile(cw, tmp_path, out, "--lot", cw.a.lot_json, "--icm-key",
                                      key, "--json")).stdout)  # fmt: skip
    assert (right["counts"]["valid"], right["counts"]["wrong-lot"]) == (len(cw.a.cm_uids), 0)
    # the OEM's lot does not list the CM's chips: each receipt is wrong-lot, exit 1
    wrong = run(*_reconcile(cw, tmp_path, out, "--lot", other_lot, "--json"))
    assert wrong.exit_code == 1
    assert json.loads(wrong.stdout)["counts"]["wrong-lot"] == len(cw.a.cm_uids)
    assert_error(run(*_reconcile(cw, tmp_path, out, "--icm-key", key)), exit_code=2,
                 match="--icm-key checks the signature of --lot")  # fmt: skip


#: a lot name as a shell passes bytes that are not UTF-8 (Python's surrogateescape of b"\xff\xfe")
NOT_UTF8 = b"LOT-\xff\xfe".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("lot", [NOT_UTF8, "\udcff", "LOT\x00A", "x" * 10_000])
def test_any_lot_name_is_refused_or_found_never_a_crash(
    cw: CliWorld, tmp_path: Path, provisioned: Path, lot: str
) -> None:
    """issue 24: a --lot that is not UTF-8 was an internal error of cm report and cm receipts."""
    records = f"sqlite:///{provisioned}"
    out = tmp_path / "r.cbor"
    for argv in (
        ["cm", "report", "--records", records, "--lot", lot],
        ["cm", "report", "--records", records, "--lot", lot, "--json"],
        ["cm", "receipts", "--records", records, "--lot", lot, "--out", out],
    ):
        assert_error(run(*argv), exit_code=2, match="lot")
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (bytes(1000), "not a receipt stream"),  # issue 24: was "1000 forged", exit 1
        (b"", "empty"),  # issue 24: exited 0
        (b"\x01" * 10, "not a receipt stream"),
        (b"hello, world\n", "not a receipt stream"),
        (b'{"a": 1}\n', "not a receipt line"),
    ],
)
def test_reconcile_refuses_a_file_that_is_not_a_receipt_stream(
    cw: CliWorld, tmp_path: Path, content: bytes, match: str
) -> None:
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(content)
    result = run(*_reconcile(cw, tmp_path, bad))
    assert_error(result, exit_code=1, match=match)
    assert result.stdout == ""
    assert "forged" not in result.output


def test_reconcile_refuses_a_fifo_a_directory_and_a_device_without_blocking(
    cw: CliWorld, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would wait forever
    for path in (fifo, tmp_path, Path("/dev/zero")):
        assert_error(run(*_reconcile(cw, tmp_path, path)), exit_code=2, match="regular file")


def test_reconcile_shows_its_progress_on_stderr(
    cw: CliWorld, tmp_path: Path, provisioned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustprov.cli import oem as cli_oem  # noqa: PLC0415 - only to lower its threshold

    out = tmp_path / "r.cbor"
    ok("cm", "receipts", "--records", f"sqlite:///{provisioned}", "--out", out)
    monkeypatch.setattr(cli_oem, "RECONCILE_PROGRESS_MIN", 0)
    result = ok(*_reconcile(cw, tmp_path, out, "--json"))
    assert "(100 %)" in result.stderr
    assert json.loads(result.stdout)["counts"]["valid"] == len(cw.a.cm_uids)
