"""Helpers of the dashboard tests: records filled through the store's own API at given times, a
fixed clock, the dashboard as a process (`Dashboard`). A module of its own name: every test
directory has a ``conftest``, so ``from conftest import`` would find whichever came first."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence

import pytest

from trustprov.line.records import JobRef, RecordStore
from trustprov.roles.cm import Outcome

BUNDLE = "ab" * 16
T0 = 1_800_000_000.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def uid(i: int) -> str:
    return f"{i:032x}"


def settle(
    store: RecordStore,
    job: JobRef,
    station: str,
    n: int,
    *,
    at: float,
    failed: Sequence[str] = (),
) -> None:
    """``station`` claims ``n`` chips and settles them at ``at``: the first ones fail with the
    codes of ``failed``, the rest are provisioned."""
    claims = store.claim(job, station, n)
    outcomes = [
        Outcome(
            bytes.fromhex(c.uid),
            "failed" if i < len(failed) else "provisioned",
            failed[i] if i < len(failed) else None,
            "a chip's message" if i < len(failed) else None,
            1500,
            at + i * 0.01,
        )
        for i, c in enumerate(claims)
    ]
    store.settle(job, station, outcomes, "1")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def now_dt(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)


class Dashboard:
    """A running `trustprov line dashboard`; ``url`` and, if one was printed, ``token_url``."""

    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines
        found = re.search(r"on (http://\S+/)", lines[0])
        assert found, lines
        self.url = found.group(1)
        shown = [re.search(r"shown once\): open (\S+)", x) for x in lines[1:]]
        self.token_url = next((m.group(1) for m in shown if m), None)


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.05)
