"""The CM production line: a whole lot, resume, parallel workers, records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Bench,
    assert_holds_world_assets,
    assert_untouched,
    copy_farm,
    farm_rows,
    flip_bit,
    keygen_on,
    world_job,
)

from trustprov.errors import InputError
from trustprov.line.records import RecordStore, sqlite_path
from trustprov.line.station import LotSummary, provision_lot
from trustprov.roles import icm
from trustprov.roles.cm import Job, Outcome


def _lot(world: Any, tmp_path: Path, name: str, count: int) -> Path:
    farm = tmp_path / f"{name}.farm"
    icm.manufacture(world.icm, farm, name, count, tmp_path / f"{name}.json")
    return farm


def _run(world: Any, farm: Path, lot: str, records: str, **kw: Any) -> LotSummary:
    return provision_lot(
        farm_path=farm, lot=lot, job=world_job(world), records_url=records, station="t", **kw
    )


def _results(records: str, lot: str) -> list[tuple[str, str, str | None]]:
    store = RecordStore(records)
    try:
        return store.results(lot)
    finally:
        store.close()


def _chip_rows(farm: Path) -> list[tuple[Any, ...]]:
    return farm_rows(
        farm,
        "SELECT uid, lifecycle, security_counter, installed FROM chips ORDER BY uid",
    )


def test_a_lot_of_50_chips_is_provisioned_and_a_rerun_reprovisions_nothing(
    world: Any, tmp_path: Path
) -> None:
    farm = _lot(world, tmp_path, "LOT-50", 50)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    started: list[int] = []
    outcomes: list[Outcome] = []
    summary = _run(
        world, farm, "LOT-50", records, on_start=started.append, on_outcome=outcomes.append
    )
    assert (summary.chips, summary.provisioned, summary.already_provisioned, summary.failed) == (
        50,
        50,
        0,
        0,
    )
    assert started == [50]
    assert len(outcomes) == 50
    assert all(o.ok and o.error_code is None for o in outcomes)
    job = world_job(world)
    with Bench(farm) as bench:
        uids = bench.uids("LOT-50")
        assert sorted(o.uid for o in outcomes) == sorted(uids)
        for uid in uids:
            r = bench.read(uid)
            assert_holds_world_assets(r, world.public_keys)
            assert (r.bundle_id, r.epoch, r.security_counter) == (job.prepared.bundle_id, 1, 1)
    first = _results(records, "LOT-50")
    assert len(first) == 50
    assert {uid for uid, _, _ in first} == {uid.hex() for uid in uids}
    assert {(result, code) for _, result, code in first} == {("provisioned", None)}
    # two flash regions, stored once for the whole lot
    assert farm_rows(farm, "SELECT COUNT(*) FROM blobs") == [(2,)]

    chips_before = _chip_rows(farm)
    again = _run(world, farm, "LOT-50", records)
    assert (again.provisioned, again.already_provisioned, again.failed) == (0, 50, 0)
    assert _chip_rows(farm) == chips_before  # not a single chip was written
    rows = _results(records, "LOT-50")
    assert rows[:50] == first
    assert {(result, code) for _, result, code in rows[50:]} == {("already-provisioned", None)}
    assert sorted(uid for uid, _, _ in rows[50:]) == sorted(uid.hex() for uid in uids)
    json = again.to_json()
    assert (json["chips"], json["already_provisioned"], json["failures"]) == (50, 50, {})


def test_two_worker_processes(world: Any, tmp_path: Path) -> None:
    farm = _lot(world, tmp_path, "LOT-J2", 6)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    outcomes: list[Outcome] = []
    summary = _run(world, farm, "LOT-J2", records, jobs=2, on_outcome=outcomes.append)
    assert (summary.provisioned, summary.failed) == (6, 0)
    assert len(outcomes) == 6
    with Bench(farm) as bench:
        for uid in bench.uids("LOT-J2"):
            assert_holds_world_assets(bench.read(uid), world.public_keys)
    assert [r for _, r, _ in _results(records, "LOT-J2")] == ["provisioned"] * 6


def test_failures_are_recorded_per_chip_and_the_rest_of_the_lot_goes_on(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    with Bench(cm_farm) as bench:
        uids = bench.uids(world.cm_lot)
    # the CM's own bundle (another domain) was put on three chips earlier
    own = keygen_on(
        copy_farm(cm_farm, tmp_path / "own.farm"), uids[0], world.software, tmp_path, "own"
    )
    own_job = own.job(world.software)
    with Bench(cm_farm) as bench:
        for uid in uids[:3]:
            assert bench.provision(uid, own_job).result == "provisioned"
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    summary = _run(world, cm_farm, world.cm_lot, records)
    assert (summary.provisioned, summary.failed) == (5, 3)
    assert summary.failures == {"domain-mismatch": 3}
    rows = {uid: (result, code) for uid, result, code in _results(records, world.cm_lot)}
    for uid in uids[:3]:
        assert rows[uid.hex()] == ("failed", "domain-mismatch")
    for uid in uids[3:]:
        assert rows[uid.hex()] == ("provisioned", None)
    with Bench(cm_farm) as bench:
        for uid in uids[:3]:
            assert bench.read(uid).domain_id != bench.read(uids[3]).domain_id
        for uid in uids[3:]:
            assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_a_lot_with_a_tampered_bundle_fails_everywhere_and_installs_nothing(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    bundle = world.bundle.read_bytes()
    tampered = tmp_path / "bundle.cbor"
    tampered.write_bytes(flip_bit(bundle, (len(bundle) - 100) * 8))  # inside the last chunk
    job = Job.load(world.software, world.share, tampered)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    summary = provision_lot(
        farm_path=cm_farm, lot=world.cm_lot, job=job, records_url=records, station="t"
    )
    assert (summary.provisioned, summary.failed) == (0, 8)
    assert summary.failures == {"bad-chunk": 8}
    with Bench(cm_farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))
    assert _run(world, cm_farm, world.cm_lot, records).provisioned == 8  # then the good one


def test_provision_lot_refuses_an_unknown_lot_or_records_url(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    with pytest.raises(InputError):
        _run(world, cm_farm, "NO-SUCH-LOT", records)
    for url in ("postgresql://x/y", "sqlite:///", f"sqlite:///{tmp_path / 'missing' / 'r.db'}"):
        with pytest.raises(InputError):
            _run(world, cm_farm, world.cm_lot, url)
    with Bench(cm_farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))
    assert sqlite_path(records) == tmp_path / "records.sqlite"
