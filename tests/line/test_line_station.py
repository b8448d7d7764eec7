"""The CM production line: a whole lot, resume, parallel workers, stations, records."""

from __future__ import annotations

import csv
import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import (
    Bench,
    assert_holds_world_assets,
    assert_untouched,
    copy_farm,
    farm_rows,
    flip_bit,
    keygen_on,
    regen,
    world_job,
)

from trustprov.errors import InputError, TrustprovError
from trustprov.line import records as rec
from trustprov.line import station as line_station
from trustprov.line.records import RecordsError, RecordStore, parse_url, sqlite_path
from trustprov.line.report import buckets, lot_report, write_csv
from trustprov.line.station import LotSummary, check_station, provision_lot
from trustprov.roles import icm
from trustprov.roles.cm import Job, Outcome


def _lot(world: Any, tmp_path: Path, name: str, count: int) -> Path:
    farm = tmp_path / f"{name}.farm"
    icm.manufacture(world.icm, farm, name, count, tmp_path / f"{name}.json")
    return farm


def _run(
    world: Any, farm: Path, lot: str, records: str, station: str = "t", **kw: Any
) -> LotSummary:
    return provision_lot(
        farm_path=farm, lot=lot, job=world_job(world), records_url=records, station=station, **kw
    )


def _results(records: str, lot: str) -> list[tuple[str, str, str | None]]:
    with RecordStore(records) as store:
        return store.results(lot)


def _attempts(records: str, lot: str) -> list[tuple[str, str, str | None]]:
    with RecordStore(records) as store:
        return store.attempts(lot)


def _states(records: str, lot: str) -> dict[str, int]:
    with RecordStore(records) as store:
        (job,) = store.find_jobs(lot)
        return store.states(job)


def _chip_rows(farm: Path) -> list[tuple[Any, ...]]:
    return farm_rows(
        farm,
        "SELECT uid, lifecycle, security_counter, installed_id FROM chips ORDER BY uid",
    )


def _open(world: Any, farm: Path, lot: str, records: str) -> tuple[RecordStore, rec.JobRef]:
    """The store and job as a station would open them, without running the station."""
    store = RecordStore(records)
    with Bench(farm) as bench:
        uids = [u.hex() for u in bench.uids(lot)]
    return store, store.open_job(lot, world_job(world).prepared.bundle_id.hex(), uids)


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
    assert (summary.settled_before, summary.pending, summary.recovered) == (0, 0, 0)
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
    assert len(_attempts(records, "LOT-50")) == 50
    # two flash regions, stored once for the whole lot
    assert farm_rows(farm, "SELECT COUNT(*) FROM blobs") == [(2,)]

    # the same command again: every chip has its final record, nothing is touched
    chips_before = _chip_rows(farm)
    attempts_before = _attempts(records, "LOT-50")
    again = _run(world, farm, "LOT-50", records, on_start=started.append)
    assert (again.provisioned, again.already_provisioned, again.failed) == (0, 0, 0)
    assert (again.settled_before, again.pending) == (50, 0)
    assert started == [50, 0]
    assert _chip_rows(farm) == chips_before  # not a single chip was written
    assert _results(records, "LOT-50") == first
    assert _attempts(records, "LOT-50") == attempts_before
    json = again.to_json()
    assert (json["chips"], json["settled_before"], json["failures"]) == (50, 50, {})

    # a new records store: the chips settle themselves by their own status
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    third = _run(world, farm, "LOT-50", fresh)
    assert (third.provisioned, third.already_provisioned, third.failed) == (0, 50, 0)
    assert _chip_rows(farm) == chips_before
    assert {r for _, r, _ in _results(fresh, "LOT-50")} == {"already-provisioned"}


@pytest.fixture
def small_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes even for a few chips (a station spawns one per 256 chips otherwise)."""
    monkeypatch.setattr(line_station, "CHIPS_PER_WORKER", 1)


def test_a_station_starts_workers_only_for_enough_chips(world: Any, tmp_path: Path) -> None:
    farm = _lot(world, tmp_path, "LOT-FEW", 3)
    summary = _run(world, farm, "LOT-FEW", f"sqlite:///{tmp_path / 'r.sqlite'}", jobs=8)
    assert (summary.provisioned, summary.jobs) == (3, 1)


@pytest.mark.usefixtures("small_pools")
def test_two_worker_processes(world: Any, tmp_path: Path) -> None:
    farm = _lot(world, tmp_path, "LOT-J2", 6)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    outcomes: list[Outcome] = []
    summary = _run(world, farm, "LOT-J2", records, jobs=2, on_outcome=outcomes.append)
    assert (summary.provisioned, summary.failed, summary.jobs) == (6, 0, 2)
    assert len(outcomes) == 6
    with Bench(farm) as bench:
        for uid in bench.uids("LOT-J2"):
            assert_holds_world_assets(bench.read(uid), world.public_keys)
    assert [r for _, r, _ in _results(records, "LOT-J2")] == ["provisioned"] * 6
    assert len(_attempts(records, "LOT-J2")) == 6


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

    # a rerun retries exactly the failed chips; each still has one final record
    again = _run(world, cm_farm, world.cm_lot, records)
    assert (again.retried, again.settled_before, again.failed, again.provisioned) == (3, 5, 3, 0)
    final = _results(records, world.cm_lot)
    assert len(final) == 8
    assert len({uid for uid, _, _ in final}) == 8
    attempts = [uid for uid, _, _ in _attempts(records, world.cm_lot)]
    assert sorted(attempts) == sorted([u.hex() for u in uids] + [u.hex() for u in uids[:3]])


def test_a_lot_with_a_tampered_bundle_stops_at_its_first_chip_and_installs_nothing(
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
    # the canary refuses it for a reason every chip would repeat: the rest stay pending
    assert (summary.provisioned, summary.failed, summary.pending) == (0, 1, 7)
    assert summary.failures == {"bad-chunk": 1}
    assert "bad-chunk" in summary.stopped
    assert summary.signum is None
    assert len(_attempts(records, world.cm_lot)) == 1
    assert _states(records, world.cm_lot) == {"pending": 7, "claimed": 0, "done": 1}
    with Bench(cm_farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))
    good = _run(world, cm_farm, world.cm_lot, records)  # then the good one
    assert (good.retried, good.provisioned, good.stopped) == (1, 8, "")
    assert {r for _, r, _ in _results(records, world.cm_lot)} == {"provisioned"}


def test_provision_lot_refuses_an_unknown_lot_or_records_url(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    with pytest.raises(InputError):
        _run(world, cm_farm, "NO-SUCH-LOT", records)
    for url in (
        "mysql://x/y",
        "not a url",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite://host/rel.sqlite",  # SQLite has no host (issue 24: an internal error)
        "sqlite://line:secret-pw@host/rel.sqlite",
        f"sqlite:///{tmp_path / 'missing' / 'r.db'}",
        f"sqlite:///{cm_farm}",  # another database: the farm itself
        f"sqlite:///{notes}",  # not a database at all
        "postgresql://line:secret-pw@127.0.0.1:1/records",  # no server there
    ):
        with pytest.raises(InputError) as e:
            _run(world, cm_farm, world.cm_lot, url)
        assert "secret-pw" not in str(e.value)
    for name in ("", "x" * 65, "bad\nname"):
        with pytest.raises(InputError):
            _run(world, cm_farm, world.cm_lot, records, station=name)
    with Bench(cm_farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))
    assert sqlite_path(records) == tmp_path / "records.sqlite"
    assert not (tmp_path / "records.sqlite").exists()
    assert check_station("line-1") == "line-1"


def test_urls_map_postgresql_to_psycopg_and_hide_passwords() -> None:
    for text in (
        "postgresql://u:pw@h/db",
        "postgres://u:pw@h/db",
        "postgresql+psycopg://u:pw@h/db",
    ):
        url = parse_url(text)
        assert url.drivername == "postgresql+psycopg"
        assert "pw" not in url.render_as_string(hide_password=True)
    with pytest.raises(InputError):
        parse_url("postgresql+psycopg2://u:pw@h/db")


def test_a_records_store_of_another_format_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    RecordStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.update(rec.meta).values(value="trustprov-records-1"))
    engine.dispose()
    with pytest.raises(InputError, match="format"):
        RecordStore(url)
    with pytest.raises(InputError, match="no records store"):
        RecordStore(f"sqlite:///{tmp_path / 'none.sqlite'}", create=False)
    assert not (tmp_path / "none.sqlite").exists()


# -- claims, leases, resume: the same on SQLite and PostgreSQL -------------------------------------
def test_the_final_record_is_unique_per_chip(world: Any, cm_farm: Path, records_url: str) -> None:
    _run(world, cm_farm, world.cm_lot, records_url)
    store = RecordStore(records_url)
    try:
        (job,) = store.find_jobs(world.cm_lot)
        uid = _results(records_url, world.cm_lot)[0][0]
        with pytest.raises(RecordsError), store.transaction() as c:
            c.execute(
                sa.insert(rec.results).values(
                    job_id=job.id,
                    uid=uid,
                    lot=job.lot,
                    station="x",
                    bundle_id=job.bundle_id,
                    software_version="1",
                    result="provisioned",
                    duration_us=1,
                    time=datetime.datetime.now(datetime.UTC),
                )
            )
    finally:
        store.close()


def test_a_claim_is_given_to_one_station_only(world: Any, cm_farm: Path, records_url: str) -> None:
    store, job = _open(world, cm_farm, world.cm_lot, records_url)
    other = RecordStore(records_url)
    try:
        a = store.claim(job, "a", 3)
        b = other.claim(job, "b", 100)
        assert len(a) == 3
        assert len(b) == 5
        assert not {c.uid for c in a} & {c.uid for c in b}
        assert store.claim(job, "a", 1) == []
        assert store.states(job) == {"pending": 0, "claimed": 8, "done": 0}
    finally:
        other.close()
        store.close()


def test_a_rerun_settles_the_claims_of_its_interrupted_run_from_the_chips(
    world: Any, cm_farm: Path, records_url: str
) -> None:
    """The state a SIGKILL leaves: chips claimed, some provisioned, no result recorded."""
    store, job = _open(world, cm_farm, world.cm_lot, records_url)
    try:
        claimed = store.claim(job, "line", 5)
    finally:
        store.close()
    with Bench(cm_farm) as bench:
        for c in claimed[:2]:  # these two committed on the chip before the line died
            assert bench.provision(bytes.fromhex(c.uid), world_job(world)).result == "provisioned"
    chips_before = _chip_rows(cm_farm)

    summary = _run(world, cm_farm, world.cm_lot, records_url, station="line")
    assert (summary.recovered, summary.already_provisioned, summary.provisioned) == (5, 2, 6)
    assert (summary.failed, summary.pending) == (0, 0)
    after = {row[0]: row for row in _chip_rows(cm_farm)}
    for row in chips_before:
        if bytes.fromhex(claimed[0].uid) == row[0] or bytes.fromhex(claimed[1].uid) == row[0]:
            assert after[row[0]] == row  # settled from its status, never written again
    final = {uid: result for uid, result, _ in _results(records_url, world.cm_lot)}
    assert len(final) == 8
    assert {final[c.uid] for c in claimed[:2]} == {"already-provisioned"}
    assert [final[c.uid] for c in claimed[2:]] == ["provisioned"] * 3
    attempts = _attempts(records_url, world.cm_lot)
    interrupted = sorted(uid for uid, result, _ in attempts if result == "interrupted")
    assert interrupted == sorted(c.uid for c in claimed)
    provisioned = [uid for uid, result, _ in attempts if result == "provisioned"]
    assert len(provisioned) == len(set(provisioned)) == 6
    with Bench(cm_farm) as bench:
        for uid in bench.uids(world.cm_lot):
            assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_a_running_station_keeps_its_claims_and_a_dead_one_loses_them(
    world: Any, cm_farm: Path, records_url: str
) -> None:
    store, job = _open(world, cm_farm, world.cm_lot, records_url)
    try:
        with store.lease("busy"):
            busy = store.claim(job, "busy", 3)
            # the same name cannot run twice
            with pytest.raises(InputError, match="already running"):
                _run(world, cm_farm, world.cm_lot, records_url, station="busy", lease_wait=0.3)
            # another station leaves a live station's claims alone
            first = _run(world, cm_farm, world.cm_lot, records_url, station="other")
            assert (first.provisioned, first.recovered, first.pending) == (5, 0, 3)
            assert _states(records_url, world.cm_lot) == {"pending": 0, "claimed": 3, "done": 5}
            with RecordStore(records_url, create=False) as reader:
                report = lot_report(reader, world.cm_lot)
            assert (report.pending, report.in_progress, report.total.chips) == (3, 3, 5)
        # "busy" is gone (its lease is free): its claims are taken over and settled
        second = _run(world, cm_farm, world.cm_lot, records_url, station="other")
        assert (second.provisioned, second.recovered, second.pending) == (3, 3, 0)
    finally:
        store.close()
    final = {uid: result for uid, result, _ in _results(records_url, world.cm_lot)}
    assert {final[c.uid] for c in busy} == {"provisioned"}
    interrupted = [a for a in _attempts(records_url, world.cm_lot) if a[1] == "interrupted"]
    assert sorted(uid for uid, _, _ in interrupted) == sorted(c.uid for c in busy)


@pytest.mark.usefixtures("small_pools")
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stopped_line_records_what_finished_and_gives_back_the_rest(
    world: Any, tmp_path: Path, jobs: int
) -> None:
    farm = _lot(world, tmp_path, "LOT-STOP", 300)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    seen: list[Outcome] = []

    def stop_after_40(o: Outcome) -> None:
        seen.append(o)
        if len(seen) == 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(world, farm, "LOT-STOP", records, jobs=jobs, on_outcome=stop_after_40)
    states = _states(records, "LOT-STOP")
    assert states["claimed"] == 0  # nothing left dangling
    assert states["done"] >= 40
    assert states["done"] == len(_results(records, "LOT-STOP"))
    rest = _run(world, farm, "LOT-STOP", records, jobs=jobs)
    assert rest.recovered == 0
    assert rest.settled_before == states["done"]
    assert rest.provisioned == 300 - states["done"]
    assert rest.pending == 0
    assert {r for _, r, _ in _attempts(records, "LOT-STOP")} == {"provisioned"}


def test_an_update_bundle_is_a_new_job_of_the_same_lot(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    assert _run(world, cm_farm, world.cm_lot, records).provisioned == 8
    update = regen(world, tmp_path, "epoch2", epoch=2).job(world.software)
    summary = provision_lot(
        farm_path=cm_farm, lot=world.cm_lot, job=update, records_url=records, station="t"
    )
    assert (summary.provisioned, summary.settled_before) == (8, 0)
    with RecordStore(records) as store:
        assert len(store.find_jobs(world.cm_lot)) == 2
        report = lot_report(store, world.cm_lot)
    assert (report.bundle_id, report.total.provisioned) == (update.prepared.bundle_id.hex(), 8)
    assert report.other_bundles == [world_job(world).prepared.bundle_id.hex()]


# -- reports -------------------------------------------------------------------------------------
def test_the_report_counts_every_chip_once(
    world: Any, cm_farm: Path, tmp_path: Path, records_url: str
) -> None:
    with Bench(cm_farm) as bench:
        uids = bench.uids(world.cm_lot)
    own = keygen_on(
        copy_farm(cm_farm, tmp_path / "own.farm"), uids[0], world.software, tmp_path, "own"
    )
    with Bench(cm_farm) as bench:
        assert bench.provision(uids[0], own.job(world.software)).result == "provisioned"
    _run(world, cm_farm, world.cm_lot, records_url, station="s1")
    _run(world, cm_farm, world.cm_lot, records_url, station="s2")  # retries the failed chip
    with RecordStore(records_url, create=False) as store:
        report = lot_report(store)
        rows = write_csv(store, world.cm_lot, tmp_path / "lot.csv")
    doc = report.to_json()
    assert doc.keys() >= {"lot", "chips", "provisioned", "failed", "pending", "stations"}
    assert (doc["lot"], doc["chips"], doc["provisioned"], doc["failed"]) == (
        world.cm_lot,
        8,
        7,
        1,
    )
    assert (doc["pending"], doc["failures"]) == (0, {"domain-mismatch": 1})
    assert doc["stations"] == {
        "s1": {
            "chips": 7,
            "provisioned": 7,
            "already_provisioned": 0,
            "failed": 0,
            "bad_receipt": 0,
        },
        "s2": {
            "chips": 1,
            "provisioned": 0,
            "already_provisioned": 0,
            "failed": 1,
            "bad_receipt": 0,
        },
    }
    assert sum(b["chips"] for b in doc["throughput"]) == 7  # the failed chip is no throughput
    assert report.yield_percent == 87.5
    lines = (tmp_path / "lot.csv").read_text().splitlines()
    assert rows == 8
    assert len(lines) == 9
    assert lines[0].startswith("uid,lot,bundle_id,state,station")
    assert sum(",failed,domain-mismatch," in line for line in lines) == 1


def test_the_csv_shows_formula_like_text_as_text(tmp_path: Path) -> None:
    """A station name, software version or error text that a spreadsheet would run as a
    formula is written with a leading apostrophe; the rest of the row is untouched."""
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    uids = [bytes([i]) * 16 for i in (1, 2)]
    station = "=HYPERLINK(1)"
    with RecordStore(records) as store:
        ref = store.open_job("LOT-CSV", "ab" * 16, [u.hex() for u in uids])
        with store.lease(station):
            assert len(store.claim(ref, station, 2)) == 2
            outcomes = [
                Outcome(uids[0], "provisioned", None, None, 10, 1.0),
                Outcome(uids[1], "failed", "@bad", "-1+1 refused", 20, 2.0),
            ]
            store.settle(ref, station, outcomes, "+1.0")
        write_csv(store, "LOT-CSV", tmp_path / "lot.csv")
    with (tmp_path / "lot.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["station"] for r in rows] == ["'=HYPERLINK(1)"] * 2
    assert [r["software_version"] for r in rows] == ["'+1.0"] * 2
    assert [(r["result"], r["error_code"], r["error"]) for r in rows] == [
        ("provisioned", "", ""),
        ("failed", "'@bad", "'-1+1 refused"),
    ]
    assert [r["uid"] for r in rows] == [u.hex() for u in uids]


def test_the_report_needs_a_lot_when_there_are_several(world: Any, tmp_path: Path) -> None:
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    for name in ("L1", "L2"):
        _run(world, _lot(world, tmp_path, name, 1), name, records)
    with RecordStore(records, create=False) as store:
        with pytest.raises(InputError, match="--lot"):
            lot_report(store)
        with pytest.raises(InputError, match="no lot"):
            lot_report(store, "L3")
        assert lot_report(store, "L2").total.provisioned == 1


def test_throughput_buckets() -> None:
    t0 = 1_700_000_000
    assert buckets([]) == []
    one = buckets([(t0, 5)])
    assert [(b.seconds, b.chips) for b in one] == [(1, 5)]
    spread = buckets([(t0, 10), (t0 + 30, 20), (t0 + 299, 1)])
    assert sum(b.chips for b in spread) == 31
    assert len(spread) <= 24
    assert spread[0].start == datetime.datetime.fromtimestamp(t0, datetime.UTC)
    assert all(b.seconds == spread[0].seconds for b in spread[:-1])
    assert 0 in {b.chips for b in spread}  # a gap in production shows as an empty bucket


def test_records_errors_are_trustprov_errors() -> None:
    assert issubclass(RecordsError, TrustprovError)
    assert RecordsError("x").code == "records"


def test_switching_a_new_store_to_wal_waits_out_another_stations_lock() -> None:
    """Four stations opening one new SQLite store together: the switch to WAL needs the file to
    itself and SQLite answered "database is locked" to one of them, which then ended in a
    traceback. The switch is retried while the store says locked, and skipped once in WAL."""
    import sqlite3  # noqa: PLC0415 - the driver's own error, as SQLite raises it

    class Driver:
        def __init__(self, locked: int) -> None:
            self.locked, self.mode, self.switches = locked, "delete", 0

        def execute(self, sql: str) -> Any:
            if sql == "PRAGMA journal_mode":
                return type("Row", (), {"fetchone": lambda _s: (self.mode,)})()
            self.switches += 1
            if self.locked:
                self.locked -= 1
                raise sqlite3.OperationalError("database is locked")
            self.mode = "wal"
            return None

    driver = Driver(locked=3)
    rec._use_wal(driver)
    assert (driver.mode, driver.switches) == ("wal", 4)
    rec._use_wal(driver)  # already in WAL: nothing to switch
    assert driver.switches == 4

    class Broken(Driver):
        def execute(self, sql: str) -> Any:
            raise sqlite3.OperationalError(f"disk I/O error ({sql})")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        rec._use_wal(Broken(locked=0))  # anything but "locked" is not waited out
