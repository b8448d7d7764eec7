"""The chip side of a station: what its worker processes (or the station itself, with one
worker) do to chips. Nothing here touches the records store.

Invariants: a worker provisions the chips of a batch in order and returns their outcomes in
that order, possibly fewer (it stops between two chips when the station's stop flag is set, and
sets it when the same refusal repeats ``stop_after`` times in its batch); it never acts on
SIGINT or SIGTERM (`line.stopping`); it exits before its next chip once the station that
started it is gone. `check_job` only reads chip status.

A worker process is started with "spawn" and imports only this module's dependencies (the link
and the CM role): never the records store (SQLAlchemy), the command line or rich, which only the
station process needs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from trustprov.errors import TrustprovError
from trustprov.line.stopping import ignore_signals, repeats
from trustprov.link.farm_link import FarmLink
from trustprov.roles.cm import Job, Outcome, provision_chip

CHECK_CHIPS = 8  # chips whose status is read, until one reports its family, to check the job
WARM_BLOCK = 16 * 1024 * 1024  # see `warm_allocator`; glibc's thresholds stop at 32 MiB

_state: tuple[FarmLink, Job, int, Any, int] | None = None


def init_worker(farm_path: Path, job: Job, flag: Any, stop_after: int) -> None:
    global _state  # noqa: PLW0603 - one farm connection per worker process
    ignore_signals()  # the station stops its workers itself, through ``flag``
    warm_allocator()
    _state = (FarmLink(farm_path), job, os.getppid(), flag, stop_after)


def warm_allocator() -> None:
    """Let this process keep the memory one chip's provisioning frees, for the next chip.

    A chip's requests and its staging allocate and free blocks of hundreds of KiB (the
    software image of "rom.boot", a firmware region). C's allocator (glibc) serves blocks
    above its mmap threshold (128 KiB at start) from the kernel, and gives the top of its heap
    back above twice that: so a fresh process maps, faults in and unmaps those blocks chip
    after chip, which costs a fifth of a chip's CPU in kernel time. Freeing one block of
    `WARM_BLOCK` raises both thresholds past anything a chip allocates (glibc adapts them to
    the largest block freed); elsewhere this is one allocation and nothing more."""
    block = bytearray(WARM_BLOCK)
    del block


def provision_one(farm: FarmLink, job: Job, uid: bytes, recovered: bool = False) -> Outcome:
    start = time.perf_counter()
    try:
        with farm.connect(uid) as chip:
            # the chip's own certificate rides along: a station given no lot manifest checks
            # the chip's signatures under it (in-process chips: nothing sits between)
            return provision_chip(chip, uid, job, status_first=recovered, certificate=True)
    except TrustprovError as e:  # the chip could not even be powered on (e.g. not in the farm)
        duration = int((time.perf_counter() - start) * 1e6)
        return Outcome(uid, "failed", e.code, e.message, duration, time.time())


def work(chips: list[tuple[bytes, bool]]) -> list[Outcome]:
    """Provision (uid, recovered) pairs in order; stop early, between two chips, when the
    station stops or the same refusal repeats (the station gives back the chips not done)."""
    assert _state is not None  # noqa: S101 - set by the pool initializer
    farm, job, parent, flag, stop_after = _state
    outcomes: list[Outcome] = []
    for uid, recovered in chips:
        if os.getppid() != parent:
            # the station died: stop before the next chip, so whoever settles its claims
            # next is the only one touching them
            os._exit(1)
        if flag.value:
            break
        if repeats(outcomes, stop_after):
            flag.value = 1  # the other workers stop too: the station stops the lot on these
            break
        outcomes.append(provision_one(farm, job, uid, recovered))
    return outcomes


def check_job(farm: FarmLink, uids: list[bytes], job: Job) -> None:
    """`Job.check_lot` against the status of the first chip (of a few) that reports its family:
    reading a status changes nothing on a chip."""
    for uid in uids[:CHECK_CHIPS]:
        try:
            with farm.connect(uid) as chip:
                status = chip.status()
        except TrustprovError:
            continue  # that chip's own failure is for its own record
        if isinstance(status.get("family"), bytes):
            job.check_lot(status)
            return
