"""`trustprov cm provision` (FIG. 3 on every chip of a lot): summary, records, exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest
from click.testing import Result

from trustprov.formats.software import SignedSoftware
from trustprov.link.farm_link import FarmLink

from .conftest import CliWorld
from .helpers import (
    KEY1,
    KEY2,
    assert_error,
    assert_no_crash,
    copy_farm,
    describe,
    flip,
    lifecycles,
    listing,
    ok,
    run,
    secret_forms,
)

Args = dict[str, str | Path]
SUMMARY_KEYS = {"lot", "chips", "provisioned", "failed"}


def _argv(args: Args) -> list[str | Path]:
    return [x for k, v in args.items() for x in (k, v)]


def _job(cw: CliWorld, farm: Path, **over: str | Path) -> list[str | Path]:
    args: Args = {
        "--farm": farm,
        "--lot": cw.a.cm_lot,
        "--software": cw.a.software,
        "--share": cw.a.share,
        "--bundle": cw.a.bundle,
    }
    args.update({f"--{k}": v for k, v in over.items()})
    return ["cm", "provision", *_argv(args)]


def _records(db: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(db) as c:
        return list(c.execute("SELECT uid, result, error_code FROM records ORDER BY id"))


def _summary(stdout: str) -> dict[str, object]:
    doc = json.loads(stdout)  # the whole of stdout is one JSON object
    assert isinstance(doc, dict)
    assert doc.keys() >= SUMMARY_KEYS
    return doc


# -- success ---------------------------------------------------------------------------------
def test_provision_json(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    result = ok(*_job(cw, farm), "--json")
    assert result.stderr == ""
    s = _summary(result.stdout)
    assert s["lot"] == cw.a.cm_lot
    assert (s["chips"], s["provisioned"], s["failed"]) == (4, 4, 0)
    # records beside the farm by default
    rows = _records(tmp_path / "records.sqlite")
    assert sorted(r[0] for r in rows) == sorted(cw.a.cm_uids)
    assert {r[1] for r in rows} == {"provisioned"}
    assert lifecycles(farm, cw.a.cm_lot) == dict.fromkeys(cw.a.cm_uids, "PROVISIONED")
    for secret in (KEY1, KEY2):
        for form in secret_forms(secret):
            assert form not in result.output


def test_provision_again_settles_by_status(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.provisioned_copy(tmp_path)
    s = _summary(ok(*_job(cw, farm), "--json").stdout)
    assert (s["chips"], s["provisioned"], s["failed"]) == (4, 0, 0)
    assert s.get("already_provisioned", 4) == 4
    assert {r[1] for r in _records(tmp_path / "records.sqlite")} == {"already-provisioned"}


def test_provision_records_url(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path / "farm")
    db = tmp_path / "line" / "records.sqlite"
    db.parent.mkdir()
    s = _summary(ok(*_job(cw, farm), "--records", f"sqlite:///{db}", "--json").stdout)
    assert s["provisioned"] == 4
    assert len(_records(db)) == 4
    assert not (tmp_path / "farm" / "records.sqlite").exists()


def test_provision_text_output(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    result = ok(*_job(cw, farm))
    assert cw.a.cm_lot in result.stdout
    assert "4 provisioned" in result.stdout
    assert result.stderr == ""


def test_provision_jobs(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    s = _summary(ok(*_job(cw, farm), "--jobs", "2", "--json").stdout)
    assert (s["provisioned"], s["failed"]) == (4, 0)
    assert lifecycles(farm, cw.a.cm_lot) == dict.fromkeys(cw.a.cm_uids, "PROVISIONED")


def test_provision_an_update(cw: CliWorld, tmp_path: Path) -> None:
    """An epoch-2 bundle from FIG. 4 replaces the installed epoch 1."""
    farm = cw.provisioned_copy(tmp_path)
    s = _summary(
        ok(
            *_job(
                cw,
                farm,
                share=cw.epoch2_dir / "enc-oem-share.cose",
                bundle=cw.epoch2_dir / "bundle.cbor",
            ),
            "--json",
        ).stdout
    )
    assert (s["provisioned"], s["failed"]) == (4, 0)
    uid = cw.a.cm_uids[0]
    assert (
        json.loads(ok("chip", "show", "--farm", farm, "--chip", uid, "--json").stdout)["installed"][
            "epoch"
        ]
        == 2
    )


def test_a_failed_chip_fails_the_lot(cw: CliWorld, tmp_path: Path) -> None:
    """A blank chip in the lot: the others are provisioned, the exit is non-zero."""
    farm = cw.fresh_farm(tmp_path)
    blank = bytes(range(16))
    with FarmLink(farm) as f:
        f.add_blank(blank, cw.a.cm_lot)
    result = run(*_job(cw, farm), "--json")
    assert_no_crash(result)
    assert result.exit_code == 1, describe(result)
    s = _summary(result.stdout)
    assert (s["chips"], s["provisioned"], s["failed"]) == (5, 4, 1)
    assert [r[0] for r in _records(tmp_path / "records.sqlite") if r[1] == "failed"] == [
        blank.hex()
    ]


# -- chips refuse: the job is well-formed, every chip says no --------------------------------
def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _bundle_with_bad_mac(bundle: Path, tmp: Path) -> Path:
    v = cbor2.loads(bundle.read_bytes())
    v[2] = flip(v[2], -1)  # the manifest's COSE_Mac0: last byte of its CMAC tag
    return _write(tmp, "bundle.cbor", cbor2.dumps(v))


def _locked(cw: CliWorld, tmp: Path) -> Args:
    farm = cw.provisioned_copy(tmp / "locked")
    image = cw.a.software.read_bytes()
    with FarmLink(farm) as f:
        for uid in f.uids(cw.a.cm_lot):
            with f.connect(uid) as chip:
                chip.boot(image)
                chip.lock()
    # the update would be accepted by a provisioned chip; a locked one refuses it
    return {
        "--farm": farm,
        "--share": cw.epoch2_dir / "enc-oem-share.cose",
        "--bundle": cw.epoch2_dir / "bundle.cbor",
    }


REFUSALS: dict[str, Callable[[CliWorld, Path], Args]] = {
    "tampered-software-signature": lambda cw, t: {
        "--software": _write(t, "sw.cose", flip(cw.a.software.read_bytes(), -3))
    },
    "tampered-share": lambda cw, t: {
        "--share": _write(t, "share.cose", flip(cw.a.share.read_bytes(), -3))
    },
    "tampered-bundle-chunk": lambda cw, t: {
        "--bundle": _write(t, "bundle.cbor", flip(cw.a.bundle.read_bytes(), -40))
    },
    "tampered-bundle-manifest-mac": lambda cw, t: {
        "--bundle": _bundle_with_bad_mac(cw.a.bundle, t)
    },
    "other-family-share-and-bundle": lambda cw, _t: {
        "--share": cw.b.share,
        "--bundle": cw.b.bundle,
    },
    "other-family-software": lambda cw, _t: {"--software": cw.b.software},
    "other-family-chips": lambda cw, t: {"--farm": cw.fresh_farm(t / "b", "b")},
    "stale-epoch": lambda cw, t: {
        # epoch 2 installed; the epoch-1 bundle is older
        "--farm": _updated(cw, t),
    },
    "locked-chips": _locked,
}


def _updated(cw: CliWorld, tmp: Path) -> Path:
    farm = cw.provisioned_copy(tmp / "updated")
    ok(
        *_job(
            cw,
            farm,
            share=cw.epoch2_dir / "enc-oem-share.cose",
            bundle=cw.epoch2_dir / "bundle.cbor",
        ),
        record=False,
    )
    return farm


def _refused(
    cw: CliWorld, tmp_path: Path, case: str, *extra: str
) -> tuple[Result, Path, dict[str, str]]:
    work = tmp_path / "work"
    work.mkdir()
    args: Args = {"--farm": cw.fresh_farm(work / "a")}
    args.update(REFUSALS[case](cw, work))
    farm = Path(args["--farm"])
    with FarmLink(farm) as f:
        lot = f.lots()[0]
    before = lifecycles(farm, lot)
    argv = _job(cw, farm, lot=lot, **{k[2:]: v for k, v in args.items() if k != "--farm"})
    return run(*argv, *extra), farm, before


# refused by the host before any chip: the chips' status tells their family and software key
CHECKED_FIRST = {
    "other-family-chips",
    "other-family-share-and-bundle",
    "other-family-software",
    "tampered-software-signature",
}
# refused by the first chip for a reason every chip would repeat: the lot stops there
SYSTEMIC = {"tampered-bundle-chunk", "tampered-bundle-manifest-mac", "tampered-share"}
PER_CHIP = set(REFUSALS) - CHECKED_FIRST - SYSTEMIC  # what each chip holds: every chip is tried


@pytest.mark.parametrize("case", sorted(PER_CHIP))
def test_refusing_chips_fail_the_lot_and_keep_their_state(
    cw: CliWorld, tmp_path: Path, case: str
) -> None:
    result, farm, before = _refused(cw, tmp_path, case, "--json")
    assert_no_crash(result)
    assert result.exit_code == 1, describe(result)
    s = _summary(result.stdout)
    assert s["chips"] == len(before)
    assert (s["provisioned"], s["failed"]) == (0, len(before))
    with FarmLink(farm) as f:
        lot = f.lots()[0]
    assert lifecycles(farm, lot) == before  # nothing installed, nothing advanced
    rows = _records(farm.parent / "records.sqlite")
    assert [r[1] for r in rows[-len(before) :]] == ["failed"] * len(before)
    assert all(r[2] for r in rows[-len(before) :])  # every failure has its error code


@pytest.mark.parametrize("case", sorted(CHECKED_FIRST))
def test_a_job_no_chip_of_the_lot_accepts_is_refused_before_any_chip(
    cw: CliWorld, tmp_path: Path, case: str
) -> None:
    result, farm, before = _refused(cw, tmp_path, case, "--json")
    line = assert_error(result, exit_code=1)
    assert ("family" in line) or ("signed" in line), line
    assert result.stdout == ""
    with FarmLink(farm) as f:
        lot = f.lots()[0]
    assert lifecycles(farm, lot) == before
    assert not (farm.parent / "records.sqlite").exists()  # no chip attempted, nothing recorded


@pytest.mark.parametrize("case", sorted(SYSTEMIC))
def test_a_job_the_first_chip_refuses_for_every_chip_stops_the_lot(
    cw: CliWorld, tmp_path: Path, case: str
) -> None:
    result, farm, before = _refused(cw, tmp_path, case, "--json")
    line = assert_error(result, exit_code=1, match="lot stopped")
    assert "every chip" in line
    s = _summary(result.stdout)
    assert (s["provisioned"], s["failed"], s["pending"]) == (0, 1, len(before) - 1)
    assert s["stopped"]
    with FarmLink(farm) as f:
        lot = f.lots()[0]
    assert lifecycles(farm, lot) == before
    rows = _records(farm.parent / "records.sqlite")
    assert [r[1] for r in rows] == ["failed"]  # one failure record, for the one chip tried
    # the right artifacts finish the lot
    s = _summary(ok(*_job(cw, farm), "--json").stdout)
    assert (s["provisioned"], s["failed"], s["pending"]) == (len(before), 0, 0)


def test_stop_after_stops_a_lot_whose_chips_keep_failing(cw: CliWorld, tmp_path: Path) -> None:
    """A lot whose chips (but the first) refuse for their own state: `--stop-after` ends it."""
    farm = cw.provisioned_copy(tmp_path / "p")
    uids = sorted(cw.a.cm_uids)
    image = cw.a.software.read_bytes()
    with FarmLink(farm) as f:
        for uid in uids[1:]:  # locked: each refuses the update with lifecycle
            with f.connect(bytes.fromhex(uid)) as chip:
                chip.boot(image)
                chip.lock()
    update = {
        "share": cw.epoch2_dir / "enc-oem-share.cose",
        "bundle": cw.epoch2_dir / "bundle.cbor",
    }
    result = run(*_job(cw, farm, **update), "--json", "--stop-after", "2", "--jobs", "1")
    line = assert_error(result, exit_code=1, match="2 chips in a row failed with lifecycle")
    assert "--stop-after" in line
    s = _summary(result.stdout)
    assert (s["provisioned"], s["failed"], s["pending"]) == (1, 2, 1)
    # --stop-after 0 never stops: every chip is tried and has its record
    result = run(*_job(cw, farm, **update), "--json", "--stop-after", "0")
    assert_error(result, exit_code=1, match="3 of 4 chips failed")
    s = _summary(result.stdout)
    assert (s["failed"], s["pending"], s["stopped"]) == (3, 0, None)


def test_stop_after_must_be_a_count(cw: CliWorld, tmp_path: Path) -> None:
    result = run(*_job(cw, cw.fresh_farm(tmp_path)), "--stop-after", "-1")
    assert_no_crash(result)
    assert result.exit_code == 2
    assert listing(tmp_path) == ["cm.farm"]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusing_chips_give_one_error_line(cw: CliWorld, tmp_path: Path, case: str) -> None:
    """The error contract for a tampered or foreign artifact, a wrong chip or lifecycle."""
    result, _, _ = _refused(cw, tmp_path, case)
    assert_error(result, exit_code=1)


def test_refusing_chips_give_one_error_line_with_json(cw: CliWorld, tmp_path: Path) -> None:
    result, _, _ = _refused(cw, tmp_path, "tampered-bundle-chunk", "--json")
    assert_error(result, exit_code=1)
    _summary(result.stdout)  # stdout stays one JSON object


# -- bad input: refused before any chip is touched -------------------------------------------
def _old_software(cw: CliWorld, tmp: Path) -> Args:
    sw = tmp / "sw0.cose"
    ok(
        "icm",
        "sign-software",
        "--icm",
        cw.a.icm,
        "--out",
        sw,
        "--security-version",
        "0",
        record=False,
    )
    assert SignedSoftware.from_bytes(sw.read_bytes()).security_version == 0
    return {"--software": sw}


BAD_JOBS: dict[str, tuple[Callable[[CliWorld, Path], Args], int | None]] = {
    "missing-farm": (lambda _cw, t: {"--farm": t / "none.farm"}, 2),
    "farm-is-not-a-farm": (lambda cw, _t: {"--farm": cw.a.lot_json}, 2),
    "unknown-lot": (lambda _cw, _t: {"--lot": "LOT-Z"}, 2),
    "missing-software": (lambda _cw, t: {"--software": t / "none.cose"}, 2),
    "missing-share": (lambda _cw, t: {"--share": t / "none.cose"}, 2),
    "missing-bundle": (lambda _cw, t: {"--bundle": t / "none.cbor"}, 2),
    "truncated-software": (
        lambda cw, t: {"--software": _write(t, "sw.cose", cw.a.software.read_bytes()[:300])},
        1,
    ),
    "truncated-share": (
        lambda cw, t: {"--share": _write(t, "s.cose", cw.a.share.read_bytes()[:50])},
        1,
    ),
    "truncated-bundle": (
        lambda cw, t: {"--bundle": _write(t, "b.cbor", cw.a.bundle.read_bytes()[:1000])},
        1,
    ),
    "empty-bundle": (lambda _cw, t: {"--bundle": _write(t, "b.cbor", b"")}, 1),
    "bundle-as-share": (lambda cw, _t: {"--share": cw.a.bundle}, None),
    "share-as-bundle": (lambda cw, _t: {"--bundle": cw.a.share}, 1),
    "kept-state-as-share": (lambda cw, _t: {"--share": cw.a.oem_dir / "enc-rnd-share.cose"}, 1),
    "share-and-bundle-of-two-families": (lambda cw, _t: {"--share": cw.b.share}, 1),
    "software-below-the-bundle-minimum": (_old_software, 2),
    "records-unsupported-database": (lambda _cw, _t: {"--records": "mysql://line/records"}, 2),
    "records-server-unreachable": (
        lambda _cw, _t: {"--records": "postgresql://line@127.0.0.1:1/records"},
        2,
    ),
    "records-url-with-a-password": (
        lambda _cw, _t: {"--records": "postgresql://line:secret-pw@127.0.0.1:1/records"},
        2,
    ),
    "records-is-another-database": (
        lambda cw, t: {"--records": f"sqlite:///{copy_farm(cw.a.cm_farm, t / 'other')}"},
        2,
    ),
    "records-in-missing-directory": (
        lambda _cw, t: {"--records": f"sqlite:///{t}/no/records.sqlite"},
        2,
    ),
    # issue 24: an internal error (the SQLite driver's ArgumentError): SQLite has no host
    "records-sqlite-with-a-host": (lambda _cw, _t: {"--records": "sqlite://host/rel.sqlite"}, 2),
}


@pytest.mark.parametrize("case", sorted(BAD_JOBS))
def test_bad_jobs_touch_no_chip(cw: CliWorld, tmp_path: Path, case: str) -> None:
    make, code = BAD_JOBS[case]
    work = tmp_path / "work"
    work.mkdir()
    farm = cw.fresh_farm(tmp_path)
    args = make(cw, work)
    target = Path(args.pop("--farm", farm))
    argv = _job(cw, target, **{k[2:]: v for k, v in args.items()})
    result = run(*argv)
    assert_error(result, exit_code=code)
    assert "secret-pw" not in result.output
    assert lifecycles(farm, cw.a.cm_lot) == dict.fromkeys(cw.a.cm_uids, "MANUFACTURED")
    assert listing(tmp_path) == ["cm.farm", "work"]  # in particular, no records.sqlite
    assert not (work / "no").exists()
    assert not (work / "none.farm").exists()  # provisioning never creates a farm


def test_jobs_out_of_range_is_a_usage_error(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    result = run(*_job(cw, farm), "--jobs", "0")
    assert_no_crash(result)
    assert result.exit_code == 2
    assert listing(tmp_path) == ["cm.farm"]


def test_records_of_two_lots_accumulate(cw: CliWorld, tmp_path: Path) -> None:
    """Two lots (two bundles), one records file: rows accumulate, nothing is overwritten."""
    farm = cw.fresh_farm(tmp_path)
    other = cw.fresh_farm(tmp_path / "second", "b")
    db = tmp_path / "records.sqlite"
    ok(*_job(cw, farm), "--json")
    b = {"software": cw.b.software, "share": cw.b.share, "bundle": cw.b.bundle}
    ok(*_job(cw, other, **b), "--records", f"sqlite:///{db}", "--json")
    assert len(_records(db)) == 4 + 2


# -- resume ----------------------------------------------------------------------------------
def test_provision_again_resumes_and_touches_nothing(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    ok(*_job(cw, farm), "--station", "line-1")
    again = ok(*_job(cw, farm), "--station", "line-1")
    assert "0 provisioned" in again.stdout
    assert "4 settled before" in again.stdout
    assert "line-1" in again.stdout
    s = _summary(ok(*_job(cw, farm), "--json").stdout)
    assert (s["provisioned"], s["settled_before"], s["pending"]) == (0, 4, 0)
    assert len(_records(tmp_path / "records.sqlite")) == 4  # one attempt per chip, no more


def test_a_bad_station_name_is_a_usage_error(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    assert_error(run(*_job(cw, farm), "--station", "x" * 65), exit_code=2)
    assert lifecycles(farm, cw.a.cm_lot) == dict.fromkeys(cw.a.cm_uids, "MANUFACTURED")


# -- report ----------------------------------------------------------------------------------
def _report(url: str, *extra: str | Path) -> dict[str, object]:
    doc = json.loads(ok("cm", "report", "--records", url, "--json", *extra).stdout)
    assert isinstance(doc, dict)
    assert doc.keys() >= {"lot", "chips", "provisioned", "failed", "pending", "stations"}
    return doc


def test_report(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    blank = bytes(range(16))
    with FarmLink(farm) as f:
        f.add_blank(blank, cw.a.cm_lot)
    assert run(*_job(cw, farm), "--station", "line-1", "--json").exit_code == 1
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    doc = _report(url)
    assert (doc["lot"], doc["chips"], doc["provisioned"], doc["failed"], doc["pending"]) == (
        cw.a.cm_lot,
        5,
        4,
        1,
        0,
    )
    assert doc["stations"] == {
        "line-1": {
            "chips": 5,
            "provisioned": 4,
            "already_provisioned": 0,
            "failed": 1,
            "bad_receipt": 0,
        }
    }
    failures = doc["failures"]
    assert isinstance(failures, dict)
    assert sum(failures.values()) == 1
    assert doc["yield_percent"] == 80.0
    assert _report(url, "--lot", cw.a.cm_lot) == doc

    csv_file = tmp_path / "lot.csv"
    text = ok("cm", "report", "--records", url, "--lot", cw.a.cm_lot, "--csv", csv_file)
    assert text.stderr == ""
    for needle in (cw.a.cm_lot, "yield 80.0 %", "station line-1", "throughput", "lot.csv"):
        assert needle in text.stdout
    lines = csv_file.read_text().splitlines()
    assert len(lines) == 1 + 5
    assert sum(line.startswith(blank.hex()) and ",failed," in line for line in lines) == 1


def test_chips_new_to_a_lot_join_its_records(cw: CliWorld, tmp_path: Path) -> None:
    """Chips added to a lot's tray after its first run are provisioned by the next one."""
    farm = cw.fresh_farm(tmp_path)
    ok(*_job(cw, farm), "--json")
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    with FarmLink(farm) as f:  # two more chips arrive in the tray
        f.add_blank(bytes(16), cw.a.cm_lot)
        f.add_blank(bytes([1] * 16), cw.a.cm_lot)
    # the records learn of them when a station next opens the lot
    assert run(*_job(cw, farm), "--station", "late", "--json").exit_code == 1
    doc = _report(url)
    assert (doc["chips"], doc["provisioned"], doc["failed"], doc["pending"]) == (6, 4, 2, 0)
    stations = doc["stations"]
    assert isinstance(stations, dict)
    assert set(stations) == {os.uname().nodename, "late"}


@pytest.mark.parametrize(
    "records",
    ["missing", "postgresql://line:secret-pw@127.0.0.1:1/records", "mysql://x/y", "farm"],
)
def test_report_refuses_a_store_that_is_not_there(
    cw: CliWorld, tmp_path: Path, records: str
) -> None:
    if records == "missing":
        records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    elif records == "farm":
        records = f"sqlite:///{cw.fresh_farm(tmp_path)}"
    result = run("cm", "report", "--records", records)
    assert_error(result, exit_code=2)
    assert "secret-pw" not in result.output
    assert not (tmp_path / "records.sqlite").exists()


def test_report_of_an_unknown_lot(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    ok(*_job(cw, farm), "--json")
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    assert_error(run("cm", "report", "--records", url, "--lot", "LOT-Z"), exit_code=2)
    missing_dir = tmp_path / "no" / "lot.csv"
    assert_error(run("cm", "report", "--records", url, "--csv", missing_dir), exit_code=2)


def test_icm_key_without_a_manifest_is_refused_not_ignored(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    key = cw.a.icm / "lot-signing.pub.pem"
    assert_error(run(*_job(cw, farm), "--icm-key", key), exit_code=2, match="--manifest")
    assert not (tmp_path / "records.sqlite").exists()


def test_baud_max_is_for_a_line_over_the_wire(tmp_path: Path) -> None:
    for name in ("sw", "share", "bundle"):
        (tmp_path / name).write_bytes(b"x")
    result = run(
        "cm", "provision", "--farm", tmp_path / "f.farm", "--lot", "L",
        "--software", tmp_path / "sw", "--share", tmp_path / "share",
        "--bundle", tmp_path / "bundle", "--baud-max", "3000000",
    )  # fmt: skip
    assert_error(result, exit_code=2, match="--baud-max is for a line over the wire")
    too_low = run("cm", "provision", "--farm", tmp_path / "f.farm", "--baud-max", "10")
    assert_error(too_low, exit_code=2)
