"""line.stopping in one process: the repeat rules, a stop by signal with one worker (the
station's own process), a second signal, and worker processes that start with SIGINT and
SIGTERM blocked and then ignore them."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import world_job

from trustprov.line.records import RecordStore
from trustprov.line.station import provision_lot
from trustprov.line.stopping import (
    LineAborted,
    RepeatGuard,
    Stop,
    catch_signals,
    ignore_signals,
    repeats,
    signals_blocked,
)
from trustprov.roles import icm
from trustprov.roles.cm import SYSTEMIC, Outcome


def _o(code: str | None, uid: int = 0) -> Outcome:
    result = "failed" if code else "provisioned"
    return Outcome(bytes([uid]) * 16, result, code, code and f"{code} here", 1, 0.0)


def test_a_systemic_refusal_stops_only_as_the_first_outcome() -> None:
    assert "bad-share" in SYSTEMIC
    assert "lifecycle" not in SYSTEMIC
    stop = Stop()
    RepeatGuard(stop, 10).see(_o("bad-share", 7))
    assert "07070707" in stop.reason
    assert "every chip" in stop.reason
    later = Stop()
    guard = RepeatGuard(later, 10)
    guard.see(_o(None))
    guard.see(_o("bad-share"))  # after a chip took the job: that chip's own fault
    assert not later.requested
    per_chip = Stop()
    RepeatGuard(per_chip, 10).see(_o("lifecycle"))
    assert not per_chip.requested


@pytest.mark.parametrize(
    ("codes", "stops"),
    [
        ([None, "lifecycle", "lifecycle", "lifecycle"], True),
        ([None, "lifecycle", "lifecycle", None, "lifecycle"], False),  # not in a row
        ([None, "lifecycle", "stale-epoch", "lifecycle"], False),  # not the same code
    ],
)
def test_the_same_failure_in_a_row_stops(codes: list[str | None], stops: bool) -> None:
    stop = Stop()
    guard = RepeatGuard(stop, 3)
    for c in codes:
        guard.see(_o(c))
    assert stop.requested is stops
    outcomes = [_o(c) for c in codes]
    assert repeats(outcomes, 3) is stops
    assert not repeats(outcomes, 0)  # 0: never
    never = Stop()
    guard = RepeatGuard(never, 0)
    for c in codes:
        guard.see(_o(c))
    assert not never.requested


def test_a_second_signal_aborts_and_the_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = Stop()
    aborted: LineAborted | None = None
    with catch_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between two bytecodes
        assert stop.reason == "stopped by SIGTERM"
        assert stop.signum == signal.SIGTERM
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        except LineAborted as e:
            aborted = e
    assert aborted is not None
    assert aborted.exit_code == 128 + signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) == before


def _mask_and_handlers() -> tuple[bool, bool, Any, Any]:
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return (
        signal.SIGINT in blocked,
        signal.SIGTERM in blocked,
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGTERM),
    )


def _started_blocked(q: Any) -> None:
    q.put(_mask_and_handlers())


def test_a_process_started_with_signals_blocked_starts_with_them_blocked() -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.SimpleQueue()
    with signals_blocked():
        p = ctx.Process(target=_started_blocked, args=(q,))
        p.start()
    p.join(30)
    assert q.get()[:2] == (True, True)  # through the child's whole start-up
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # ours again


def test_a_worker_ignores_sigint_and_sigterm_once_started() -> None:
    ctx = multiprocessing.get_context("spawn")
    with signals_blocked():
        pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=ignore_signals)
    with pool:
        with signals_blocked():
            future = pool.submit(_mask_and_handlers)
        assert future.result(30) == (False, False, signal.SIG_IGN, signal.SIG_IGN)


def _lot(world: Any, tmp_path: Path, count: int) -> Path:
    farm = tmp_path / "sig.farm"
    icm.manufacture(world.icm, farm, "LOT-SIGI", count, tmp_path / "sig.json")
    return farm


def _states(records: str) -> dict[str, int]:
    with RecordStore(records) as store:
        (job,) = store.find_jobs("LOT-SIGI")
        return store.states(job)


def test_one_worker_stops_at_a_signal_records_what_it_did_and_resumes(
    world: Any, tmp_path: Path
) -> None:
    farm = _lot(world, tmp_path, 120)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    seen: list[Outcome] = []

    def signal_at_30(o: Outcome) -> None:
        seen.append(o)
        if len(seen) == 30:
            os.kill(os.getpid(), signal.SIGINT)

    summary = provision_lot(
        farm_path=farm,
        lot="LOT-SIGI",
        job=world_job(world),
        records_url=records,
        station="t",
        on_outcome=signal_at_30,
    )
    assert (summary.signum, summary.stopped) == (signal.SIGINT, "stopped by SIGINT")
    states = _states(records)
    assert states["claimed"] == 0
    assert 30 <= states["done"] < 120
    assert summary.provisioned == states["done"] == 120 - summary.pending
    rest = provision_lot(
        farm_path=farm, lot="LOT-SIGI", job=world_job(world), records_url=records, station="t"
    )
    assert (rest.provisioned, rest.recovered, rest.pending, rest.stopped) == (
        120 - states["done"],
        0,
        0,
        "",
    )


def test_one_worker_aborts_at_a_second_signal_and_a_rerun_settles_its_claims(
    world: Any, tmp_path: Path
) -> None:
    farm = _lot(world, tmp_path, 60)
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    seen: list[Outcome] = []

    def two_signals(o: Outcome) -> None:
        seen.append(o)
        if len(seen) == 10:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(LineAborted):
        provision_lot(
            farm_path=farm,
            lot="LOT-SIGI",
            job=world_job(world),
            records_url=records,
            station="t",
            on_outcome=two_signals,
        )
    rest = provision_lot(
        farm_path=farm, lot="LOT-SIGI", job=world_job(world), records_url=records, station="t"
    )
    assert rest.pending == 0
    assert rest.settled_before + rest.provisioned + rest.already_provisioned == 60
    assert _states(records) == {"pending": 0, "claimed": 0, "done": 60}
