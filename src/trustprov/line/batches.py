"""One station's run over one job: batches of chips claimed from the records store, dispatched
to the chips (in this process, or on worker processes), and settled.

Invariants: a batch's outcomes are recorded in the transaction that releases its claims (and,
while the line goes on, claims the next batch); the chips a stopped batch did not start go back
to the lot; a chip that may be in flight keeps its claim, so the next run settles it from the
chip itself; a stop, a signal or a repeated refusal stops claiming at once, and every worker
stops before its next chip (`line.stopping`).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from trustprov.errors import TrustprovError
from trustprov.line.records import Claim, JobRef, RecordStore
from trustprov.line.stopping import LineAborted, RepeatGuard, Stop, repeats, signals_blocked
from trustprov.line.summary import LotSummary
from trustprov.line.worker import init_worker, provision_one, work
from trustprov.link.farm_link import FarmLink
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.trust import LotTrust

log = logging.getLogger("trustprov.line.station")

IN_FLIGHT = 2  # batches per worker claimed ahead, so no worker waits for the store


class StationError(TrustprovError):
    """The station could not go on (a worker process died or failed unexpectedly)."""

    code = "station"


class LotRun:
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
        trust: LotTrust,
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
        self.trust = trust

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
        same transaction. Each outcome is first verified from what its chip signed
        (`roles.trust.LotTrust.verify`): here, in the station's process, beside the chips'
        work (the wire's hub or the worker processes), never in it."""
        outcomes = [self.trust.verify(o, self.job.expected) for o in outcomes]
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
        raise StationError(f"a worker failed: {e or 'no message'}") from e
