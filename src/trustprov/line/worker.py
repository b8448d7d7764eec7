"""The worker side of a station: provision chips handed over by the station process.

A worker process is started with "spawn" and imports only this module's dependencies (the link
and the CM role): never the records store (SQLAlchemy), the command line or rich, which only the
station process needs (start-up, issue 12). Invariant: a worker touches chips, never the records;
it stops before its next chip once the station that started it is gone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from trustprov.errors import TrustprovError
from trustprov.link.farm import FarmLink
from trustprov.roles.cm import Job, Outcome, provision_chip

_worker: tuple[FarmLink, Job, int] | None = None


def init_worker(farm_path: Path, job: Job) -> None:
    global _worker  # noqa: PLW0603 - one farm connection per worker process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the station stops its workers itself
    _worker = (FarmLink(farm_path), job, os.getppid())


def provision_one(farm: FarmLink, job: Job, uid: bytes, recovered: bool = False) -> Outcome:
    start = time.perf_counter()
    try:
        with farm.connect(uid) as chip:
            return provision_chip(chip, uid, job, status_first=recovered)
    except TrustprovError as e:  # the chip could not even be powered on (e.g. not in the farm)
        duration = int((time.perf_counter() - start) * 1e6)
        return Outcome(uid, "failed", e.code, e.message, duration, time.time())


def work(chips: list[tuple[bytes, bool]]) -> list[Outcome]:
    """Provision (uid, recovered) pairs in order."""
    assert _worker is not None  # noqa: S101 - set by the pool initializer
    farm, job, parent = _worker
    outcomes = []
    for uid, recovered in chips:
        if os.getppid() != parent:
            # the station died: stop before the next chip, so whoever settles its claims
            # next is the only one touching them
            os._exit(1)
        outcomes.append(provision_one(farm, job, uid, recovered))
    return outcomes
