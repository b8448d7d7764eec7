"""The line as it runs in a factory: separate processes, shared lots, sudden death.

- Four stations (separate processes) provision one lot of 5,000 chips together.
- One line (a station and its two workers) is SIGKILLed at five random points, rerun each time
  with the same command, and finally left to finish.

Both against SQLite and against a real PostgreSQL (see ``conftest.py``). Afterwards every
invariant of docs/protocol.md section 9 is checked against the records *and* against the chips
themselves, read through the link like any host: every chip holds the bundle and has exactly one
final record, none was provisioned twice, none skipped, none left claimed.

A kill point is random; the seed is in every failure message (``TRUSTPROV_CRASH_SEED`` replays
it). The bundle is one AES key, so that 5,000 chips take seconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import provision_command

from trustprov.line.records import RecordStore, lot_chips, parse_url
from trustprov.line.report import lot_report
from trustprov.link.farm_link import FarmLink
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list

CHIPS = 5000
LOT = "LOT-LINE"
KILLS = 5
STATIONS = 4
TIMEOUT = 300  # seconds any one process may take
TINY_ASSETS = f"""
[bundle]
epoch = 1

[[asset]]
name = "line-key"
kind = "key"
key-type = "aes-256"
slot = 1
hex = "{bytes(range(100, 132)).hex()}"
"""


@dataclass(frozen=True)
class LineWorld:
    software: Path
    share: Path
    bundle: Path
    farm: Path  # a template: copy it before provisioning
    bundle_id: bytes
    uids: tuple[bytes, ...]

    def farm_copy(self, dest: Path) -> Path:
        target = dest / "line.farm"
        shutil.copyfile(self.farm, target)
        return target

    def command(self, farm: Path, records: str, station: str, jobs: int) -> list[str]:
        """`trustprov cm provision ...` as a process of its own."""
        return provision_command(
            farm=farm,
            lot=LOT,
            software=self.software,
            share=self.share,
            bundle=self.bundle,
            station=station,
            jobs=jobs,
            records=records,
        )


@pytest.fixture(scope="module")
def line_world(tmp_path_factory: pytest.TempPathFactory) -> LineWorld:
    root = tmp_path_factory.mktemp("line")
    made = icm.init(root / "icm")
    software = root / "software.cose"
    icm.sign_software(made, software)
    oem_lot = icm.manufacture(made, root / "oem.farm", "OEM", 1, root / "oem.json")
    farm = root / "template.farm"
    lot = icm.manufacture(made, farm, LOT, CHIPS, root / "lot.json")
    (root / "assets").mkdir()
    (root / "assets" / "assets.toml").write_text(TINY_ASSETS)
    oem.keygen(
        root / "oem.farm",
        oem_lot.uids[0],
        software_path=software,
        assets=asset_list.load(root / "assets" / "assets.toml"),
        out=root / "oem",
    )
    share, bundle = root / "oem" / "enc-oem-share.cose", root / "oem" / "bundle.cbor"
    job = Job.load(software, share, bundle)
    uids = lot.uids
    return LineWorld(software, share, bundle, farm, job.prepared.bundle_id, uids)


class Watcher:
    """Reads how many chips are done, without taking any lock the line needs."""

    def __init__(self, records: str) -> None:
        url = parse_url(records)
        self._file = Path(url.database or "") if url.get_backend_name() == "sqlite" else None
        self._url = url
        self._engine: sa.Engine | None = None

    def done(self) -> int:
        if self._file is not None and not self._file.exists():
            return 0
        if self._engine is None:
            self._engine = sa.create_engine(self._url, poolclass=sa.NullPool)
        q = sa.select(sa.func.count()).select_from(lot_chips).where(lot_chips.c.state == "done")
        try:
            with self._engine.connect() as c:
                return int(c.execute(q).scalar_one())
        except sa.exc.DBAPIError:  # not created yet
            return 0

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def check_invariants(world: LineWorld, farm: Path, records: str) -> dict[str, int]:
    """Every invariant of a finished lot, from the records and from the chips."""
    with RecordStore(records, create=False) as store:
        (job,) = store.find_jobs(LOT)
        states = store.states(job)
        final = store.results(LOT)
        attempts = store.attempts(LOT)
        report = lot_report(store, LOT)
    uids = {u.hex() for u in world.uids}
    assert (job.chips, job.bundle_id) == (CHIPS, world.bundle_id.hex())
    # every chip settled, none left claimed or pending
    assert states == {"pending": 0, "claimed": 0, "done": CHIPS}
    # exactly one final record per chip of the lot, and none for anything else
    assert len(final) == CHIPS
    assert {u for u, _, _ in final} == uids
    result = {u: r for u, r, _ in final}
    assert set(result.values()) <= {"provisioned", "already-provisioned"}
    # never provisioned twice, never refused (a second provisioning would be a stale epoch)
    provisioned = Counter(u for u, r, _ in attempts if r == "provisioned")
    assert max(provisioned.values()) == 1
    assert [
        a for a in attempts if a[1] not in ("provisioned", "already-provisioned", "interrupted")
    ] == []
    interrupted = {u for u, r, _ in attempts if r == "interrupted"}
    for u, r in result.items():
        if r == "already-provisioned":
            # on a fresh lot, only a run that died after the chip's commit explains it
            assert u in interrupted
        else:
            assert provisioned[u] == 1
    # the chips themselves hold the bundle
    with FarmLink(farm) as f:
        for uid in world.uids:
            with f.connect(uid) as chip:
                status = chip.status()
            assert status["lifecycle"] == "PROVISIONED", uid.hex()
            assert status["installed"]["bundle-id"] == world.bundle_id, uid.hex()
            assert (status["installed"]["epoch"], status["security-counter"]) == (1, 1)
    doc = report.to_json()
    assert (doc["chips"], doc["pending"], doc["failed"]) == (CHIPS, 0, 0)
    assert doc["provisioned"] + doc["already_provisioned"] == CHIPS
    return {
        "interrupted": len(interrupted),
        "already_provisioned": doc["already_provisioned"],
        "attempts": len(attempts),
    }


def test_four_stations_provision_one_lot_together(
    line_world: LineWorld, records_url: str, tmp_path: Path
) -> None:
    farm = line_world.farm_copy(tmp_path)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            line_world.command(farm, records_url, f"station-{i}", jobs=1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(STATIONS)
    ]
    outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    seconds = time.perf_counter() - start
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    summaries = [json.loads(out) for out, _ in outputs]
    assert sum(s["provisioned"] for s in summaries) == CHIPS
    assert [(s["already_provisioned"], s["failed"]) for s in summaries] == [(0, 0)] * STATIONS
    assert all(s["provisioned"] > 0 for s in summaries), summaries  # every station took part
    stats = check_invariants(line_world, farm, records_url)
    assert (stats["interrupted"], stats["attempts"]) == (0, CHIPS)  # one attempt per chip
    with RecordStore(records_url, create=False) as store:
        stations = lot_report(store, LOT).stations
    assert {name: s.provisioned for name, s in stations.items()} == {
        s["station"]: s["provisioned"] for s in summaries
    }
    print(f"{STATIONS} stations, {CHIPS} chips: {seconds:.1f} s")  # shown with -s


def test_the_line_survives_sigkill_at_five_random_points(
    line_world: LineWorld, records_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("TRUSTPROV_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    note = f"seed {seed} (TRUSTPROV_CRASH_SEED={seed} replays it)"
    farm = line_world.farm_copy(tmp_path)
    command = line_world.command(farm, records_url, "line", jobs=2)
    watcher = Watcher(records_url)
    points = []
    start = time.perf_counter()
    try:
        for k in range(KILLS):
            # a session of its own: the kill takes the station and its workers at once
            proc = subprocess.Popen(
                command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                if k == 0:  # during start-up: schema, inventory, lease, workers, first claims
                    delay = rng.uniform(0.0, 1.0)
                    time.sleep(delay)
                    points.append(f"{delay:.2f} s after start")
                else:  # mid-lot, at a random number of chips done
                    base = watcher.done()
                    target = base + rng.randint(20, max(21, (CHIPS - base) // (KILLS - k + 1)))
                    deadline = time.monotonic() + TIMEOUT
                    while watcher.done() < target and proc.poll() is None:
                        assert time.monotonic() < deadline, f"no progress; {note}"
                        time.sleep(0.005)
                    points.append(f"{target} chips done")
                alive = proc.poll() is None
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate(timeout=TIMEOUT)
            assert alive, f"the line ended before kill {k + 1}: {err.decode()}; {note}"
        final = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False)
    finally:
        watcher.close()
    seconds = time.perf_counter() - start
    assert final.returncode == 0, f"{final.stderr.decode()}; {note}"
    summary = json.loads(final.stdout)
    assert (summary["pending"], summary["failed"]) == (0, 0), note
    stats = check_invariants(line_world, farm, records_url)
    assert stats["interrupted"] >= 1, f"no kill caught a claim; {note}"
    print(f"killed at {points}; {stats}; {seconds:.1f} s in all; {note}")  # shown with -s
