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
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from trustprov.errors import InputError, TrustprovError
from trustprov.line.records import STATION_MAX, Claim, JobRef, RecordStore
from trustprov.line.stopping import (
    STOP_AFTER,
    LineAborted,
    RepeatGuard,
    Stop,
    catch_signals,
    repeats,
    signals_blocked,
)
from trustprov.line.summary import LotSummary
from trustprov.line.worker import (
    check_job,
    init_worker,
    provision_one,
    warm_allocator,
    work,
)
from trustprov.link.farm import FarmLink
from trustprov.roles.cm import Job, Outcome

__all__ = ["LotSummary", "StationError", "check_station", "default_jobs", "provision_lot"]

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
        stop: Stop,
        stop_after: int,
    ) -> None:
        self.store = store
        self.ref = ref
        self.station = station
        self.job = job
        self.summary = summary
        self.on_outcome = on_outcome
        self.task_size = task_size
        self.backlog: deque[list[Claim]] = deque()
        self.stop = stop
        self.stop_after = stop_after
        self.guard = RepeatGuard(stop, stop_after)

    def queue(self, claims: list[Claim]) -> None:
        for i in range(0, len(claims), self.task_size):
            self.backlog.append(claims[i : i + self.task_size])

    def next_batch(self) -> list[Claim]:
        """Recovered claims first, then pending chips, then the claims of dead stations; none
        once the line is stopping."""
        if self.stop.requested:
            return []
        if self.backlog:
            return self.backlog.popleft()
        batch = self.store.claim(self.ref, self.station, self.task_size)
        if batch:
            return batch
        self.queue(self.store.take_over(self.ref, self.station))
        return self.backlog.popleft() if self.backlog else []

    def settle(
        self,
        batch: list[Claim],
        outcomes: list[Outcome],
        *,
        more: bool = True,
        give_back_rest: bool = True,
    ) -> None:
        """Record a batch's outcomes (possibly fewer than its chips: with ``give_back_rest``
        the chips not settled go back to the lot, as chips never started; without, they stay
        claimed, for chips that may be in flight); with ``more``, claim the next batch in the
        same transaction."""
        self.store.check_lease()
        more = more and not self.stop.requested
        n = self.task_size if more and not self.backlog else 0
        claims = self.store.settle(
            self.ref, self.station, outcomes, self.job.software.version, claim=n
        )
        if claims:
            self.backlog.append(claims)
        settled = {o.uid.hex() for o in outcomes}
        rest = [c.uid for c in batch if c.uid not in settled] if give_back_rest else []
        if rest:  # a worker stopped early: the chips it did not start go back to the lot
            self.store.release(self.ref, self.station, rest)
        recovered = {c.uid for c in batch if c.recovered}
        for o in outcomes:
            self.summary.add(o)
            self.summary.recovered += o.uid.hex() in recovered
            if not o.ok:
                log.info("chip %s failed: %s: %s", o.uid.hex(), o.error_code, o.error)
            self.guard.see(o)
            if self.on_outcome:
                self.on_outcome(o)

    def give_back(self, batches: Iterable[list[Claim]]) -> None:
        uids = [c.uid for batch in [*batches, *self.backlog] for c in batch]
        self.backlog.clear()
        if uids:
            self.store.release(self.ref, self.station, uids)
            log.info("gave %d claimed chips back to the lot", len(uids))

    # -- one process ---------------------------------------------------------------------------
    def canary(self, farm_path: Path) -> None:
        """One pending chip alone, before the others: if it refuses the job for a reason every
        chip would repeat, the line stops having touched one chip (`RepeatGuard`)."""
        if self.stop.requested or not (batch := self.store.claim(self.ref, self.station, 1)):
            return
        with FarmLink(farm_path) as farm:
            self._run_batch(farm, batch, more=False)

    def run_inline(self, farm_path: Path) -> None:
        with FarmLink(farm_path) as farm:
            try:
                while batch := self.next_batch():
                    self._run_batch(farm, batch)
            except LineAborted:
                raise  # record nothing more: the next run settles the claims from the chips
            except BaseException:
                self._stop(lambda: None, [])  # the claims taken ahead go back to the lot
                raise
        self.give_back([])  # stopped: the claims taken ahead go back to the lot

    def _run_batch(self, farm: FarmLink, batch: list[Claim], *, more: bool = True) -> None:
        done: list[Outcome] = []
        try:
            for claim in batch:
                if self.stop.requested or repeats(done, self.stop_after):
                    break  # settle gives back the chips not started
                uid = bytes.fromhex(claim.uid)
                done.append(provision_one(farm, self.job, uid, claim.recovered))
        except LineAborted:
            raise
        except BaseException:
            # the chip in hand may or may not have committed: given back, it is re-read
            self._stop(lambda: self.settle(batch, done, more=False), [batch[len(done) :]])
            raise
        self.settle(batch, done, more=more)

    # -- worker processes ----------------------------------------------------------------------
    def run_pool(self, farm_path: Path, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited connections or threads
        self.stop.flag = flag = ctx.RawValue("b", 0)
        with signals_blocked():  # the pool's threads inherit the mask, and its processes
            pool = ProcessPoolExecutor(
                workers,
                mp_context=ctx,
                initializer=init_worker,
                initargs=(farm_path, self.job, flag, self.stop_after),
            )
        in_flight: dict[Future[list[Outcome]], list[Claim]] = {}
        aborted = False
        try:
            while True:
                while len(in_flight) < IN_FLIGHT * workers and (batch := self.next_batch()):
                    chips = [(bytes.fromhex(c.uid), c.recovered) for c in batch]
                    with signals_blocked():  # a submit may start a worker process
                        in_flight[pool.submit(work, chips)] = batch
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for f in finished:
                    self.settle(in_flight.pop(f), _outcomes(f))
        except LineAborted:
            aborted = True  # record nothing more; the workers stop at their next chip
            flag.value = 1
            raise
        except BaseException:
            flag.value = 1
            self._stop(lambda: self._drain(in_flight), [])
            raise
        finally:
            pool.shutdown(wait=not aborted, cancel_futures=True)
        self.give_back([])

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


def _lot_uids(
    farm_path: Path | None, lot: str, job: Job, lot_uids: list[bytes] | None
) -> list[str]:
    """The lot's UIDs (hex): from the lot manifest over the wire, or from the farm, where the
    job is first checked against the chips' status (`line.worker.check_job`)."""
    if lot_uids is not None:
        return sorted(u.hex() for u in lot_uids)
    assert farm_path is not None  # noqa: S101 - one of the two is given
    with FarmLink(farm_path) as farm:
        if lot not in farm.lots():
            raise InputError(f"no lot {lot!r} in {farm_path}")
        farm_uids = farm.uids(lot)
        check_job(farm, farm_uids, job)
        return [u.hex() for u in farm_uids]


def _run(
    line: _Line, farm_path: Path | None, workers: int, runner: Callable[[_Line], None] | None
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
    runner: Callable[[_Line], None] | None = None,
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
    the lot manifest and ``runner`` drives them, not a farm; the job is then checked by the
    runner's chips themselves (no pre-flight status read, no canary chip).
    """
    station = check_station(os.uname().nodename if station is None else station)
    if jobs < 1:
        raise InputError("jobs must be at least 1")
    if stop_after < 0:
        raise InputError("stop-after must be 0 (never) or more")
    uids = _lot_uids(farm_path, lot, job, lot_uids)
    start = time.perf_counter()
    stop = Stop()
    with catch_signals(stop), RecordStore(records_url) as store:
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
                stop=stop,
                stop_after=stop_after,
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
