"""A station provisions the chips of a lot, with N worker processes.

Workers each open the farm (the sockets) and provision the UIDs they are handed; the station
process alone writes records, as results arrive, so a worker that dies loses nothing that a
rerun cannot settle from the chips themselves.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustprov.errors import InputError
from trustprov.line.records import RecordStore
from trustprov.link.farm import FarmLink
from trustprov.roles.cm import Job, Outcome, provision_chip

TASK_SIZE = 64


@dataclass
class LotSummary:
    lot: str
    station: str
    chips: int = 0
    provisioned: int = 0
    already_provisioned: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
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

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "station": self.station,
            "chips": self.chips,
            "provisioned": self.provisioned,
            "already_provisioned": self.already_provisioned,
            "failed": self.failed,
            "failures": dict(sorted(self.failures.items())),
            "seconds": round(self.seconds, 3),
            "chips_per_s": round(self.chips / self.seconds, 1) if self.seconds else None,
            "records": self.records,
        }


# -- worker side ---------------------------------------------------------------------------------
_worker: tuple[FarmLink, Job] | None = None


def _init_worker(farm_path: Path, job: Job) -> None:
    global _worker  # noqa: PLW0603 - one farm connection per worker process
    _worker = (FarmLink(farm_path), job)


def _provision_uids(farm: FarmLink, job: Job, uids: list[bytes]) -> list[Outcome]:
    outcomes = []
    for uid in uids:
        with farm.connect(uid) as chip:
            outcomes.append(provision_chip(chip, uid, job))
    return outcomes


def _work(uids: list[bytes]) -> list[Outcome]:
    assert _worker is not None  # noqa: S101 - set by the pool initializer
    return _provision_uids(*_worker, uids)


def _tasks(uids: list[bytes], size: int) -> Iterator[list[bytes]]:
    for i in range(0, len(uids), size):
        yield uids[i : i + size]


# -- station side --------------------------------------------------------------------------------
def provision_lot(
    *,
    farm_path: Path,
    lot: str,
    job: Job,
    records_url: str,
    jobs: int = 1,
    station: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> LotSummary:
    """Provision every chip of ``lot``; record each result; return the summary."""
    station = station or os.uname().nodename
    with FarmLink(farm_path) as farm:
        if lot not in farm.lots():
            raise InputError(f"no lot {lot!r} in {farm_path}")
        uids = farm.uids(lot)
    records = RecordStore(records_url)
    summary = LotSummary(lot=lot, station=station, chips=len(uids), records=records_url)
    if on_start:
        on_start(len(uids))
    start = time.perf_counter()

    def settle(outcomes: list[Outcome]) -> None:
        records.add(
            outcomes,
            lot=lot,
            station=station,
            bundle_id=job.prepared.bundle_id,
            software_version=job.software.version,
        )
        for o in outcomes:
            summary.add(o)
            if on_outcome:
                on_outcome(o)

    try:
        if jobs <= 1:
            with FarmLink(farm_path) as farm:
                for task in _tasks(uids, TASK_SIZE):
                    settle(_provision_uids(farm, job, task))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(jobs, initializer=_init_worker, initargs=(farm_path, job)) as pool:
                for outcomes in pool.imap_unordered(_work, _tasks(uids, TASK_SIZE)):
                    settle(outcomes)
    finally:
        summary.seconds = time.perf_counter() - start
        records.close()
    return summary
