"""Fail fast: a job no chip of the lot would accept stops before or at the first chip, and a lot
whose chips keep failing the same way stops after ``stop_after`` of them, leaving the rest
pending for a rerun with the right artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Bench,
    Family,
    assert_untouched,
    copy_farm,
    flip_bit,
    keygen_on,
    second_family,
    world_job,
)

from trustprov.errors import InputError, VerificationError
from trustprov.line import station as line_station
from trustprov.line.records import RecordStore
from trustprov.line.station import LotSummary, provision_lot
from trustprov.roles import icm
from trustprov.roles.cm import Job


@pytest.fixture(scope="module")
def family2(tmp_path_factory: pytest.TempPathFactory) -> Family:
    return second_family(tmp_path_factory.mktemp("family2"))


def _run(farm: Path, lot: str, job: Job, records: str, **kw: Any) -> LotSummary:
    return provision_lot(farm_path=farm, lot=lot, job=job, records_url=records, station="t", **kw)


def _rows(records: str, lot: str) -> tuple[list[tuple[str, str, str | None]], dict[str, int]]:
    """(attempt log, chip states) of ``lot``."""
    with RecordStore(records) as store:
        (job,) = store.find_jobs(lot)
        return store.attempts(lot), store.states(job)


@pytest.mark.parametrize("case", ["other-icm-software", "other-family-share-and-bundle"])
def test_a_job_for_another_family_or_icm_is_refused_before_any_chip(
    world: Any, family2: Family, cm_farm: Path, tmp_path: Path, case: str
) -> None:
    if case == "other-icm-software":  # signed by another ICM's K_PRK_ICM_PROV
        job = Job.load(family2.software, world.oem_dir / "enc-oem-share.cose", world.bundle)
        code = "bad-signature"
    else:
        job = family2.oem.job(world.software)
        code = "wrong-family"
    records = tmp_path / "records.sqlite"
    with pytest.raises(VerificationError) as e:
        _run(cm_farm, world.cm_lot, job, f"sqlite:///{records}")
    assert e.value.code == code
    assert len(e.value.message.splitlines()) == 1
    assert not records.exists()  # not even a records store: nothing was attempted
    with Bench(cm_farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))


def test_the_chips_report_the_key_that_checks_their_software(world: Any, cm_farm: Path) -> None:
    with Bench(cm_farm) as bench:
        status = bench.client(bench.uids()[0]).status()
    assert status["prov-keys"] == list(world.icm.immutable.software_keys)
    assert status["prov-suite"] == world.icm.immutable.software_suite
    world_job(world).check_lot(status)  # the world's own job passes
    world_job(world).check_lot({"family": None})  # a blank chip proves nothing


@pytest.mark.parametrize("where", ["share", "manifest-mac", "chunk"])
def test_a_job_every_chip_refuses_stops_at_the_first_chip(
    world: Any, cm_farm: Path, tmp_path: Path, where: str
) -> None:
    share, bundle = (world.oem_dir / "enc-oem-share.cose").read_bytes(), world.bundle.read_bytes()
    if where == "share":
        share = flip_bit(share, (len(share) - 3) * 8)  # the AEAD tag: only a chip can tell
    elif where == "manifest-mac":
        bundle = flip_bit(bundle, _mac_tag_bit(bundle))
    else:
        bundle = flip_bit(bundle, (len(bundle) - 100) * 8)
    job = Job.from_bytes(world.software.read_bytes(), share, bundle)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    summary = _run(cm_farm, world.cm_lot, job, records, jobs=2)
    assert (summary.provisioned, summary.failed, summary.pending) == (0, 1, 7)
    (code,) = summary.failures
    assert code in summary.stopped
    assert "every chip" in summary.stopped
    attempts, states = _rows(records, world.cm_lot)
    assert [r for _, r, _ in attempts] == ["failed"]  # one failure record, not eight
    assert states == {"pending": 7, "claimed": 0, "done": 1}
    with Bench(cm_farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))
    # the right artifacts finish the lot, the canary's chip included
    good = _run(cm_farm, world.cm_lot, world_job(world), records)
    assert (good.retried, good.provisioned, good.failed, good.stopped) == (1, 8, 0, "")


def _mac_tag_bit(bundle: bytes) -> int:
    """A bit of the manifest's CMAC tag: where the manifest ends in the bundle file."""
    import cbor2  # noqa: PLC0415 - only this helper picks the bundle apart

    tagged = cbor2.loads(bundle)[2]
    return (bundle.index(tagged) + len(tagged) - 1) * 8


@pytest.fixture
def half_foreign(world: Any, tmp_path: Path) -> Path:
    """A lot of 40 chips: the first 5 fresh, the other 35 holding another OEM's bundle, which
    each refuses the world's bundle for (domain-mismatch: a refusal of that chip alone)."""
    farm = tmp_path / "half.farm"
    icm.manufacture(world.icm, farm, "LOT-H", 40, tmp_path / "half.json")
    with Bench(farm) as bench:
        uids = bench.uids("LOT-H")
    own_farm = copy_farm(world.oem_farm, tmp_path / "own-oem.farm")
    own = keygen_on(own_farm, world.oem_uid, world.software, tmp_path, "own").job(world.software)
    with Bench(farm) as bench:
        for uid in uids[5:]:
            assert bench.provision(uid, own).result == "provisioned"
    return farm


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_same_refusal_repeated_stops_the_lot(
    world: Any,
    half_foreign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    jobs: int,
) -> None:
    monkeypatch.setattr(line_station, "CHIPS_PER_WORKER", 1)  # workers even for a few chips
    farm = half_foreign
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    summary = _run(farm, "LOT-H", world_job(world), records, jobs=jobs, stop_after=4)
    assert summary.provisioned == 5
    assert summary.failures.keys() == {"domain-mismatch"}
    # one worker: exactly the threshold; two: each stops its batch there too
    assert 4 <= summary.failed <= 4 * jobs
    assert "in a row failed with domain-mismatch" in summary.stopped
    assert "--stop-after" in summary.stopped
    attempts, states = _rows(records, "LOT-H")
    assert len(attempts) == 5 + summary.failed  # no record for a chip not attempted
    assert states == {"pending": 35 - summary.failed, "claimed": 0, "done": 5 + summary.failed}
    assert summary.pending == 35 - summary.failed

    # with the threshold off, the same lot runs to its end: each chip has one final record
    rest = _run(farm, "LOT-H", world_job(world), records, jobs=jobs, stop_after=0)
    assert (rest.stopped, rest.pending, rest.failed) == ("", 0, 35)
    attempts, states = _rows(records, "LOT-H")
    assert states == {"pending": 0, "claimed": 0, "done": 40}
    assert len(attempts) == 40 + summary.failed  # the failed ones were retried, once each


def test_stop_after_must_not_be_negative(world: Any, cm_farm: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        _run(cm_farm, world.cm_lot, world_job(world), f"sqlite:///{tmp_path / 'r'}", stop_after=-1)
