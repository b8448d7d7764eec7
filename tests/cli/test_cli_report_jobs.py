"""`cm report`: the records found where `cm provision` puts them, an earlier job by its bundle,
and a yield that says it is of the chips done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CliWorld
from .helpers import assert_error, ok, run


def _bundle_id(bundle: Path) -> str:
    """The bundle id as the records hold it, read as `inspect --json` reads it."""
    doc = json.loads(ok("inspect", bundle, "--json", record=False).stdout)
    return str(doc["bundle_id"])


@pytest.fixture
def two_jobs(cw: CliWorld, tmp_path: Path) -> Path:
    """A lot provisioned with the epoch-1 bundle, then updated with the epoch-2 bundle."""
    farm = cw.fresh_farm(tmp_path / "line")
    for d in (cw.a.oem_dir, cw.epoch2_dir):
        share, bundle = d / "enc-oem-share.cose", d / "bundle.cbor"
        ok("cm", "provision", "--farm", farm, "--lot", cw.a.cm_lot, "--software", cw.a.software,
           "--share", share, "--bundle", bundle, "--json")  # fmt: skip
    return farm


def test_report_finds_the_records_beside_the_farm_as_provision_does(
    cw: CliWorld, two_jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_farm = json.loads(ok("cm", "report", "--farm", two_jobs, "--json").stdout)
    monkeypatch.chdir(two_jobs.parent)
    in_cwd = json.loads(ok("cm", "report", "--json").stdout)
    url = f"sqlite:///{two_jobs.parent / 'records.sqlite'}"
    assert by_farm == in_cwd == json.loads(ok("cm", "report", "--records", url, "--json").stdout)
    assert by_farm["bundle_id"] == _bundle_id(cw.epoch2_dir / "bundle.cbor")  # the latest


def test_report_without_records_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = assert_error(run("cm", "report"), exit_code=2, match="--records")
    assert str(tmp_path / "records.sqlite") in line
    assert not (tmp_path / "records.sqlite").exists()


def test_report_of_an_earlier_job_by_its_bundle(cw: CliWorld, two_jobs: Path) -> None:
    first = _bundle_id(cw.a.bundle)
    latest = _bundle_id(cw.epoch2_dir / "bundle.cbor")
    text = ok("cm", "report", "--farm", two_jobs).stdout
    assert f"bundle {latest}" in text
    assert first in text  # listed among the lot's other bundles
    for given in (first, first[:8], str(cw.a.bundle)):
        doc = json.loads(ok("cm", "report", "--farm", two_jobs, "--bundle", given, "--json").stdout)
        assert doc["bundle_id"] == first
        assert doc["provisioned"] == len(cw.a.cm_uids)
        assert doc["other_bundles"] == [latest]
    csv_file = two_jobs.parent / "first.csv"
    ok("cm", "report", "--farm", two_jobs, "--bundle", first[:8], "--csv", csv_file)
    rows = csv_file.read_text().splitlines()[1:]
    assert len(rows) == len(cw.a.cm_uids)
    assert all(f",{first}," in r for r in rows)


@pytest.mark.parametrize("given", ["ffffffff", "not-hex"])
def test_report_of_a_bundle_the_records_do_not_hold(two_jobs: Path, given: str) -> None:
    assert_error(run("cm", "report", "--farm", two_jobs, "--bundle", given), exit_code=2)


def test_report_bundle_file_that_is_no_bundle_is_named(
    cw: CliWorld, two_jobs: Path, tmp_path: Path
) -> None:
    line = assert_error(run("cm", "report", "--farm", two_jobs, "--bundle", cw.a.software))
    assert f"{cw.a.software}: this is signed provisioning software, not a sealed bundle" in line
    garbage = tmp_path / "garbage"
    garbage.write_bytes(bytes(range(256)))
    line = assert_error(run("cm", "report", "--farm", two_jobs, "--bundle", garbage), exit_code=2)
    assert f"{garbage}: not a sealed bundle" in line


def test_report_says_the_yield_is_of_the_chips_done(cw: CliWorld, two_jobs: Path) -> None:
    text = ok("cm", "report", "--farm", two_jobs).stdout
    n = len(cw.a.cm_uids)
    assert f"yield 100.0 % of the {n} chips done ({n} good)" in text
    assert "pending" in text
