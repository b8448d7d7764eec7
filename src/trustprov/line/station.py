"""A station provisions the chips of a lot with N worker processes, sharing the lot with any
number of other stations through the records store.

The station process alone talks to the store: it claims batches of chips, hands them to its
workers (each with its own sockets on the farm), and settles each batch's results in the
transaction that releases its claims. Workers touch only chips. So the store never holds a
result that the chips contradict, and a station that dies (SIGKILL, power) leaves claims that
its next run, or another station, settles from the chips themselves (`line.records`).

A clean stop (Ctrl-C) lets the batches already running finish, records them, and gives the
claims not yet started back to the lot.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustprov.errors import InputError, TrustprovError
from trustprov.line.records import STATION_MAX, Claim, JobRef, RecordStore
from trustprov.link.farm import FarmLink
from trustprov.roles.cm import Job, Outcome, provision_chip

log = logging.getLogger(__name__)

TASK_SIZE = 64  # chips per claim: few enough to share a lot evenly, many per commit
IN_FLIGHT = 2  # batches per worker claimed ahead, so no worker waits for the store
# a worker process costs about as much to start as a few hundred chips take to provision: a
# station starts one per CHIPS_PER_WORKER chips still to settle, up to --jobs
CHIPS_PER_WORKER = 256
LEASE_WAIT = 5.0  # seconds a rerun waits for the lease of the run it resumes to be dropped


class StationError(TrustprovError):
    """The station could not go on (a worker process died or failed unexpectedly)."""

    code = "station"


@dataclass
class LotSummary:
    """What one run of one station did to a lot (the lot as a whole: `line.report`)."""

    lot: str
    station: str
    chips: int = 0  # chips of the lot
    provisioned: int = 0  # settled by this run, per result
    already_provisioned: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    settled_before: int = 0  # had their final record before this run began: not touched
    retried: int = 0  # failed final records of earlier runs put back to pending by this run
    recovered: int = 0  # claims of a dead run that this run settled from the chips
    pending: int = 0  # chips of the lot with no final record when this run ended
    jobs: int = 1
    bundle_id: str = ""
    seconds: float = 0.0
    records: str = ""

    def add(self, outcome: Outcome) -> None:
        if outcome.result == "provisioned":
            self.provisioned += 1
        elif outcome.result == "already-provisioned":
            self.already_provisioned += 1
        else:
            self.failed += 1
            self.failures[outcome.error_code or "unknown"] += 1

    @property
    def settled(self) -> int:
        return self.provisioned + self.already_provisioned + self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "station": self.station,
            "bundle_id": self.bundle_id,
            "chips": self.chips,
            "provisioned": self.provisioned,
            "already_provisioned": self.already_provisioned,
            "failed": self.failed,
            "failures": dict(sorted(self.failures.items())),
            "settled_before": self.settled_before,
            "retried": self.retried,
            "recovered": self.recovered,
            "pending": self.pending,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 3),
            "chips_per_s": round(self.settled / self.seconds, 1) if self.seconds else None,
            "records": self.records,
        }


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


# -- worker side ---------------------------------------------------------------------------------
_worker: tuple[FarmLink, Job, int] | None = None


def _init_worker(farm_path: Path, job: Job) -> None:
    global _worker  # noqa: PLW0603 - one farm connection per worker process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the station stops its workers itself
    _worker = (FarmLink(farm_path), job, os.getppid())


def _provision_one(farm: FarmLink, job: Job, uid: bytes, recovered: bool = False) -> Outcome:
    start = time.perf_counter()
    try:
        with farm.connect(uid) as chip:
            return provision_chip(chip, uid, job, status_first=recovered)
    except TrustprovError as e:  # the chip could not even be powered on (e.g. not in the farm)
        duration = int((time.perf_counter() - start) * 1e6)
        return Outcome(uid, "failed", e.code, e.message, duration, time.time())


def _work(chips: list[tuple[bytes, bool]]) -> list[Outcome]:
    """Provision (uid, recovered) pairs in order."""
    assert _worker is not None  # noqa: S101 - set by the pool initializer
    farm, job, parent = _worker
    outcomes = []
    for uid, recovered in chips:
        if os.getppid() != parent:
            # the station died: stop before the next chip, so whoever settles its claims
            # next is the only one touching them
            os._exit(1)
        outcomes.append(_provision_one(farm, job, uid, recovered))
    return outcomes


# -- station side --------------------------------------------------------------------------------
class _Line:
    """One station's run over one job: claims, dispatch, settlement."""

    def __init__(
        self,
        *,
        store: RecordStore,
        ref: JobRef,
        station: str,
        job: Job,
        summary: LotSummary,
        on_outcome: Callable[[Outcome], None] | None,
        task_size: int,
    ) -> None:
        self.store = store
        self.ref = ref
        self.station = station
        self.job = job
        self.summary = summary
        self.on_outcome = on_outcome
        self.task_size = task_size
        self.backlog: deque[list[Claim]] = deque()

    def queue(self, claims: list[Claim]) -> None:
        for i in range(0, len(claims), self.task_size):
            self.backlog.append(claims[i : i + self.task_size])

    def next_batch(self) -> list[Claim]:
        """Recovered claims first, then pending chips, then the claims of dead stations."""
        if self.backlog:
            return self.backlog.popleft()
        batch = self.store.claim(self.ref, self.station, self.task_size)
        if batch:
            return batch
        self.queue(self.store.take_over(self.ref, self.station))
        return self.backlog.popleft() if self.backlog else []

    def settle(self, batch: list[Claim], outcomes: list[Outcome], *, more: bool = True) -> None:
        """Record a batch; with ``more``, claim the next one in the same transaction."""
        self.store.check_lease()
        n = self.task_size if more and not self.backlog else 0
        claims = self.store.settle(
            self.ref, self.station, outcomes, self.job.software.version, claim=n
        )
        if claims:
            self.backlog.append(claims)
        recovered = {c.uid for c in batch if c.recovered}
        for o in outcomes:
            self.summary.add(o)
            self.summary.recovered += o.uid.hex() in recovered
            if not o.ok:
                log.info("chip %s failed: %s: %s", o.uid.hex(), o.error_code, o.error)
            if self.on_outcome:
                self.on_outcome(o)

    def give_back(self, batches: Iterable[list[Claim]]) -> None:
        uids = [c.uid for batch in [*batches, *self.backlog] for c in batch]
        self.backlog.clear()
        if uids:
            self.store.release(self.ref, self.station, uids)
            log.info("gave %d claimed chips back to the lot", len(uids))

    # -- one process ---------------------------------------------------------------------------
    def run_inline(self, farm_path: Path) -> None:
        with FarmLink(farm_path) as farm:
            try:
                while batch := self.next_batch():
                    self._run_batch(farm, batch)
            except BaseException:
                self._stop(lambda: None, [])  # the claims taken ahead go back to the lot
                raise

    def _run_batch(self, farm: FarmLink, batch: list[Claim]) -> None:
        done: list[Outcome] = []
        try:
            for claim in batch:
                uid = bytes.fromhex(claim.uid)
                done.append(_provision_one(farm, self.job, uid, claim.recovered))
        except BaseException:
            # the chip in hand may or may not have committed: given back, it is re-read
            self._stop(lambda: self.settle(batch, done, more=False), [batch[len(done) :]])
            raise
        self.settle(batch, done)

    # -- worker processes ----------------------------------------------------------------------
    def run_pool(self, farm_path: Path, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited connections or threads
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(farm_path, self.job)
        )
        in_flight: dict[Future[list[Outcome]], list[Claim]] = {}
        try:
            while True:
                while len(in_flight) < IN_FLIGHT * workers and (batch := self.next_batch()):
                    chips = [(bytes.fromhex(c.uid), c.recovered) for c in batch]
                    in_flight[pool.submit(_work, chips)] = batch
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for f in finished:
                    self.settle(in_flight.pop(f), _outcomes(f))
        except BaseException:
            self._stop(lambda: self._drain(in_flight), [])
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _drain(self, in_flight: dict[Future[list[Outcome]], list[Claim]]) -> None:
        """Cancel the batches not started, record the ones running, give back the rest."""
        unstarted = [batch for f, batch in in_flight.items() if f.cancel()]
        for f, batch in in_flight.items():
            if f.cancelled():
                continue
            try:
                outcomes = f.result()
            except BaseException:  # noqa: BLE001 - its claims stay; the next run settles them
                log.warning("a batch of %d chips did not finish; claims kept", len(batch))
                continue
            self.settle(batch, outcomes, more=False)
        self.give_back(unstarted)

    def _stop(self, record: Callable[[], None], unstarted: list[list[Claim]]) -> None:
        """Record what finished and give back what did not start; never mask the cause."""
        try:
            record()
            self.give_back(unstarted)
        except BaseException as e:  # noqa: BLE001 - the original error is re-raised
            log.warning("could not record the stopped line (%s); the next run settles it", e)


def _outcomes(f: Future[list[Outcome]]) -> list[Outcome]:
    try:
        return f.result()
    except BrokenProcessPool as e:
        raise StationError("a worker process died; rerun the same command to resume the lot") from e
    except TrustprovError:
        raise
    except Exception as e:
        raise StationError(f"a worker failed: {type(e).__name__}: {e}") from e


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
    lot_uids: list[bytes] | None = None,
    runner: Callable[[_Line], None] | None = None,
) -> LotSummary:
    """Provision the chips of ``lot`` that have no final record yet, alongside any other
    stations on the same records store; record each result; return this run's summary.

    ``on_start`` receives the number of chips of the lot still to settle; ``on_outcome`` each
    outcome once it is recorded. A station name held by a running process is refused after
    ``lease_wait`` seconds. A rerun of the same command resumes: it settles the claims an
    interrupted run left, retries the chips that failed, and skips the settled ones. With
    ``lot_uids`` and ``runner`` (the line over the wire, `line.boards`) the chips come from the
    lot manifest and ``runner`` drives them, not a farm.
    """
    station = check_station(os.uname().nodename if station is None else station)
    if jobs < 1:
        raise InputError("jobs must be at least 1")
    if lot_uids is not None:
        uids = sorted(u.hex() for u in lot_uids)
    else:
        assert farm_path is not None  # noqa: S101 - one of the two is given
        with FarmLink(farm_path) as farm:
            if lot not in farm.lots():
                raise InputError(f"no lot {lot!r} in {farm_path}")
            uids = [u.hex() for u in farm.uids(lot)]
    start = time.perf_counter()
    with RecordStore(records_url) as store:
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
            line = _Line(
                store=store,
                ref=ref,
                station=station,
                job=job,
                summary=summary,
                on_outcome=on_outcome,
                task_size=task_size,
            )
            line.queue(recovered)
            try:
                if runner is not None:
                    runner(line)
                elif workers == 1:
                    assert farm_path is not None  # noqa: S101 - given without a runner
                    line.run_inline(farm_path)
                else:
                    assert farm_path is not None  # noqa: S101 - given without a runner
                    line.run_pool(farm_path, workers)
            finally:
                summary.seconds = time.perf_counter() - start
            states = store.states(ref)
            summary.pending = states["pending"] + states["claimed"]
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
