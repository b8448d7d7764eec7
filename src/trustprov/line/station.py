"""A station provisions the chips of a lot with N worker processes, sharing the lot with any
number of other stations through the records store.

The station process alone talks to the store: it claims batches of chips, hands them to its
workers (each with its own sockets on the farm), and settles each batch's results in the
transaction that releases its claims. Workers touch only chips. So the store never holds a
result that the chips contradict, and a station that dies (SIGKILL, power) leaves claims that
its next run, or another station, settles from the chips themselves (`line.records`).

A clean stop (Ctrl-C) lets the batches already running finish, records them, and gives the
claims not yet started back to the lot.

Fail fast: before any chip, the job is checked against a chip's public status
(`roles.cm.Job.check_lot`); then one chip goes first, alone (the canary), and the lot stops if it
refuses for a reason every chip would repeat, or when chips fail with one code ``stop_after``
times in a row. A stop, by a signal or by those rules, stops claiming, lets each worker finish
the chip in hand, records what finished and gives back the rest (`line.stopping`).

This module opens the job and the station's lease and decides the workers; the run itself
(claims, dispatch, settlement) is `line.batches`, the chip side of it `line.worker`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from trustprov.errors import InputError
from trustprov.line.batches import IN_FLIGHT, LotRun, StationError
from trustprov.line.records import STATION_MAX, RecordStore
from trustprov.line.stopping import STOP_AFTER, Stop, catch_signals
from trustprov.line.summary import LotSummary
from trustprov.line.worker import check_job, warm_allocator
from trustprov.link.farm_link import FarmLink
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.trust import LotTrust

__all__ = ["LotSummary", "StationError", "check_station", "default_jobs", "provision_lot"]

log = logging.getLogger(__name__)

TASK_SIZE = 64  # chips per claim: few enough to share a lot evenly, many per commit
# a worker process costs about as much to start as a few hundred chips take to provision: a
# station starts one per CHIPS_PER_WORKER chips still to settle, up to --jobs
CHIPS_PER_WORKER = 256
LEASE_WAIT = 5.0  # seconds a rerun waits for the lease of the run it resumes to be dropped


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_station(name: str) -> str:
    if not 1 <= len(name) <= STATION_MAX or not name.isprintable():
        raise InputError(f"station name must be 1 to {STATION_MAX} printable characters")
    return name


def _lot_uids(
    farm_path: Path | None, lot: str, job: Job, lot_uids: list[bytes] | None
) -> list[str]:
    """The lot's UIDs (hex): from the lot manifest over the wire, or from the farm, where the
    job is first checked against the chips' status (`line.worker.check_job`)."""
    if lot_uids is not None:
        job.check_authorized(lot_uids)
        return sorted(u.hex() for u in lot_uids)
    assert farm_path is not None  # noqa: S101 - one of the two is given
    with FarmLink(farm_path) as farm:
        if lot not in farm.lots():
            raise InputError(f"no lot {lot!r} in {farm_path}")
        farm_uids = farm.uids(lot)
        check_job(farm, farm_uids, job)
        job.check_authorized(farm_uids)
        return [u.hex() for u in farm_uids]


def _run(
    line: LotRun, farm_path: Path | None, workers: int, runner: Callable[[LotRun], None] | None
) -> None:
    """Drive the chips: a runner over the wire, or a canary chip then this process or a pool."""
    if runner is not None:
        if not line.stop.requested:
            runner(line)
        line.give_back([])
        return
    assert farm_path is not None  # noqa: S101 - given without a runner
    warm_allocator()  # the canary, and with one worker every chip, run in this process
    line.canary(farm_path)
    if line.stop.requested:
        line.give_back([])
    elif workers == 1:
        line.run_inline(farm_path)
    else:
        line.run_pool(farm_path, workers)


def provision_lot(
    *,
    farm_path: Path | None,
    lot: str,
    job: Job,
    records_url: str,
    jobs: int = 1,
    station: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    lease_wait: float = LEASE_WAIT,
    stop_after: int = STOP_AFTER,
    lot_uids: list[bytes] | None = None,
    runner: Callable[[LotRun], None] | None = None,
    records_password: str | None = None,
    trust: LotTrust | None = None,
) -> LotSummary:
    """Provision the chips of ``lot`` that have no final record yet, alongside any other
    stations on the same records store; record each result; return this run's summary.

    ``on_start`` receives the number of chips of the lot still to settle; ``on_outcome`` each
    outcome once it is recorded. A station name held by a running process is refused after
    ``lease_wait`` seconds. A rerun of the same command resumes: it settles the claims an
    interrupted run left, retries the chips that failed, and skips the settled ones.

    Before any chip is touched the job is checked against the lot's chips
    (`line.worker.check_job`); the line then stops, with ``summary.stopped`` saying why, when
    the first chip refuses for a systemic reason, when ``stop_after`` chips in a row (0: never)
    fail with one code, or on SIGINT or SIGTERM (``summary.signum``); a second signal raises
    `LineAborted`.

    With ``lot_uids`` and ``runner`` (the line over the wire, `line.boards`) the chips come from
    the lot manifest and ``runner`` drives them, not a farm; the caller checks the job against
    a chip's status first (`line.boards.check_job`) and the runner runs the canary chip.

    ``records_password`` goes to the records store's driver only (`RecordStore`).

    ``trust``: the certificates of the lot's chips, from the ICM's signed lot manifest
    (`roles.trust.LotTrust`); every outcome is recorded as its chip's signature allows. None
    (in-process chips only): each chip's own certificate, read from the chip.
    """
    if trust is None and runner is not None:
        raise InputError("a line over the wire needs the lot manifest's certificates")
    trust = trust or LotTrust(lot, None)
    if trust.lot != lot:
        raise InputError(f"the lot manifest is for lot {trust.lot!r}, not {lot!r}")
    station = check_station(os.uname().nodename if station is None else station)
    if jobs < 1:
        raise InputError("jobs must be at least 1")
    if stop_after < 0:
        raise InputError("stop-after must be 0 (never) or more")
    uids = _lot_uids(farm_path, lot, job, lot_uids)
    start = time.perf_counter()
    stop = Stop()
    with catch_signals(stop), RecordStore(records_url, password=records_password) as store:
        ref = store.open_job(lot, job.prepared.bundle_id.hex(), uids)
        summary = LotSummary(
            lot=lot, station=station, chips=ref.chips, bundle_id=ref.bundle_id, records=store.url
        )
        with store.lease(station, wait=lease_wait):
            summary.retried = store.retry_failed(ref)
            recovered = store.recover(ref, station)
            if recovered:
                log.warning(
                    "station %r: %d chips were claimed by its interrupted run; "
                    "settling them from the chips",
                    station,
                    len(recovered),
                )
            states = store.states(ref)
            summary.settled_before = states["done"]
            to_do = ref.chips - states["done"]
            workers = max(1, min(jobs, math.ceil(to_do / CHIPS_PER_WORKER)))
            summary.jobs = workers
            task_size = max(1, min(TASK_SIZE, math.ceil(to_do / (IN_FLIGHT * 2 * workers))))
            log.info(
                "station %r on lot %s (bundle %s): %d chips, %d settled before, %d to settle, "
                "%d worker(s); records %s",
                station,
                lot,
                ref.bundle_id,
                ref.chips,
                states["done"],
                to_do,
                workers,
                store.url,
            )
            if on_start:
                on_start(to_do)
            line = LotRun(
                store=store,
                ref=ref,
                station=station,
                job=job,
                summary=summary,
                on_outcome=on_outcome,
                task_size=task_size,
                stop=stop,
                stop_after=stop_after,
                trust=trust,
            )
            line.queue(recovered)
            try:
                _run(line, farm_path, workers, runner)
            finally:
                summary.seconds = time.perf_counter() - start
            states = store.states(ref)
            summary.pending = states["pending"] + states["claimed"]
            summary.stopped, summary.signum = stop.reason, stop.signum
    log.info(
        "station %r: %d provisioned, %d already provisioned, %d failed in %.1f s; "
        "%d chips of the lot pending",
        station,
        summary.provisioned,
        summary.already_provisioned,
        summary.failed,
        summary.seconds,
        summary.pending,
    )
    return summary
