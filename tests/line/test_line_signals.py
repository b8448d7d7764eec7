"""SIGINT and SIGTERM stop `trustprov cm provision` cleanly, as a process of its own.

The station (and, for a terminal's Ctrl-C, its whole process group: the workers too) is
signalled once some chips are done, or while its workers start; it must exit 130 or 143 without
a traceback, leave every chip either done with exactly one final record or pending (none
claimed), print its summary, and a rerun of the same command must finish the lot with every chip
provisioned exactly once. A second signal aborts at once; the rerun then settles the chips that
were in flight from the chips themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import farm_rows, provision_command

from trustprov.line.records import RecordStore
from trustprov.link.farm_link import FarmLink
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list

CHIPS = 800  # enough that 2 workers are still busy when the signal comes, quick to make
LOT = "LOT-SIG"
TIMEOUT = 60.0
START_DELAY = float(os.environ.get("TRUSTPROV_SIGNAL_DELAY", "0.05"))  # s after a worker appears
TINY_ASSETS = f"""
[bundle]
epoch = 1

[[asset]]
name = "sig-key"
kind = "key"
key-type = "aes-256"
slot = 1
hex = "{bytes(range(1, 33)).hex()}"
"""


@dataclass(frozen=True)
class SignalWorld:
    software: Path
    share: Path
    bundle: Path
    farm: Path  # a template: each test provisions a copy
    bundle_id: bytes

    def command(self, farm: Path) -> list[str]:
        return provision_command(
            farm=farm,
            lot=LOT,
            software=self.software,
            share=self.share,
            bundle=self.bundle,
            station="sig",
            jobs=2,
        )


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> SignalWorld:
    root = tmp_path_factory.mktemp("signals")
    made = icm.init(root / "icm")
    software = root / "software.cose"
    icm.sign_software(made, software)
    oem_lot = icm.manufacture(made, root / "oem.farm", "OEM", 1, root / "oem.json")
    farm = root / "template.farm"
    icm.manufacture(made, farm, LOT, CHIPS, root / "lot.json")
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
    return SignalWorld(
        software, share, bundle, farm, Job.load(software, share, bundle).prepared.bundle_id
    )


def _done(records: Path) -> int:
    """Chips done so far, read without any lock the line needs (0 before the store exists)."""
    if not records.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{records}?mode=ro", uri=True, timeout=1) as c:
            return int(
                c.execute("SELECT COUNT(*) FROM lot_chips WHERE state = 'done'").fetchone()[0]
            )
    except sqlite3.Error:  # not created yet, or busy
        return 0


def _workers(pid: int) -> list[int]:
    """The station's worker processes (multiprocessing spawns them with "spawn_main")."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _wait_for(what: str, ready: object, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None, f"the line ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} in {TIMEOUT} s"
        time.sleep(0.002)


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, out.decode(), err.decode()


def _check_stopped(farm: Path, summary: dict[str, object]) -> tuple[int, int]:
    """Every chip done with exactly one final record, or pending; none claimed."""
    with RecordStore(f"sqlite:///{farm.parent / 'records.sqlite'}", create=False) as store:
        (job,) = store.find_jobs(LOT)
        states = store.states(job)
        final = store.results(LOT)
        attempts = store.attempts(LOT)
    assert states["claimed"] == 0, states
    assert states["done"] + states["pending"] == CHIPS
    assert len(final) == states["done"] == len({u for u, _, _ in final})
    assert {r for _, r, _ in final} <= {"provisioned", "already-provisioned"}
    assert summary["pending"] == states["pending"]
    return states["done"], len(attempts)


def _check_finished(sw: SignalWorld, farm: Path) -> None:
    """The rerun's lot: every chip holds the bundle and was provisioned exactly once."""
    with RecordStore(f"sqlite:///{farm.parent / 'records.sqlite'}", create=False) as store:
        (job,) = store.find_jobs(LOT)
        assert store.states(job) == {"pending": 0, "claimed": 0, "done": CHIPS}
        final = store.results(LOT)
        attempts = store.attempts(LOT)
    assert len(final) == CHIPS
    assert [
        a for a in attempts if a[1] not in ("provisioned", "already-provisioned", "interrupted")
    ] == []
    provisioned = Counter(u for u, r, _ in attempts if r == "provisioned")
    assert max(provisioned.values()) == 1  # never twice
    # every chip (the farm holds this lot only) holds one and the same installed state (the farm
    # stores it once): the bundle's
    rows = farm_rows(
        farm,
        "SELECT COUNT(*), COUNT(installed_id), COUNT(DISTINCT installed_id) FROM chips",
    )
    assert rows == [(CHIPS, CHIPS, 1)]
    with FarmLink(farm) as f, f.connect(f.uids(LOT)[-1]) as chip:
        assert chip.status()["installed"]["bundle-id"] == sw.bundle_id


def _assert_quiet(err: str) -> None:
    assert "Traceback" not in err, err
    assert "leaked" not in err, err  # no resource-tracker warning
    assert "KeyboardInterrupt" not in err, err


@pytest.mark.parametrize(
    ("sig", "group", "code"),
    [
        (signal.SIGINT, True, 130),  # Ctrl-C on a terminal: the station and its workers
        (signal.SIGTERM, False, 143),  # kill PID
        (signal.SIGTERM, True, 143),  # a service manager stopping the whole group
    ],
)
def test_a_signal_mid_lot_stops_the_line_cleanly_and_a_rerun_finishes_it(
    sw: SignalWorld, tmp_path: Path, sig: signal.Signals, group: bool, code: int
) -> None:
    farm = tmp_path / "line.farm"
    shutil.copyfile(sw.farm, farm)
    records = tmp_path / "records.sqlite"
    proc = subprocess.Popen(
        sw.command(farm), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_for("chips done", lambda: _done(records) >= 100, proc)
    (os.killpg if group else os.kill)(proc.pid, sig)
    rc, out, err = _finish(proc)
    _assert_quiet(err)
    assert rc == code, err
    summary = json.loads(out)  # the summary of what was done, on stdout
    assert summary["stopped"] == f"stopped by {sig.name}"
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: stopped by {sig.name};"), err
    done, attempts = _check_stopped(farm, summary)
    assert 100 <= done < CHIPS, "the lot ended before the signal: make it bigger"
    assert summary["provisioned"] == done == attempts  # one attempt per chip done
    rc, out, err = _finish(
        subprocess.Popen(sw.command(farm), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    )
    assert rc == 0, err
    again = json.loads(out)
    assert (again["settled_before"], again["provisioned"], again["recovered"]) == (
        done,
        CHIPS - done,
        0,
    )
    _check_finished(sw, farm)


def test_ctrl_c_while_the_workers_start_prints_no_traceback(
    sw: SignalWorld, tmp_path: Path
) -> None:
    farm = tmp_path / "line.farm"
    shutil.copyfile(sw.farm, farm)
    proc = subprocess.Popen(
        sw.command(farm), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_for("worker process", lambda: _workers(proc.pid), proc)
    # a few tens of milliseconds in, the worker's interpreter is importing multiprocessing and
    # unpickling its initializer: where an unprotected worker prints a KeyboardInterrupt
    time.sleep(START_DELAY)
    os.killpg(proc.pid, signal.SIGINT)
    rc, out, err = _finish(proc)
    _assert_quiet(err)
    assert rc == 130, err
    _check_stopped(farm, json.loads(out))
    rc, _, err = _finish(
        subprocess.Popen(sw.command(farm), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    )
    assert rc == 0, err
    _check_finished(sw, farm)


def test_a_second_signal_aborts_at_once_and_a_rerun_settles_the_chips_in_flight(
    sw: SignalWorld, tmp_path: Path
) -> None:
    farm = tmp_path / "line.farm"
    shutil.copyfile(sw.farm, farm)
    records = tmp_path / "records.sqlite"
    proc = subprocess.Popen(
        sw.command(farm), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_for("chips done", lambda: _done(records) >= 100, proc)
    os.kill(proc.pid, signal.SIGINT)  # asks for a clean stop...
    os.kill(proc.pid, signal.SIGTERM)  # ...and the second signal cuts it short
    rc, out, err = _finish(proc)
    _assert_quiet(err)
    assert rc == 143, err
    assert out == ""  # no summary: nothing more was recorded
    assert len(err.splitlines()) == 1, err
    assert "aborted" in err, err
    rc, out, err = _finish(
        subprocess.Popen(sw.command(farm), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    )
    assert rc == 0, err
    assert json.loads(out)["pending"] == 0
    _check_finished(sw, farm)
