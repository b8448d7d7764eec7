"""Records stores for the dashboard tests, filled through the store's own API with a fixed
clock, and the dashboard as a process of its own (`trustprov line dashboard`), always stopped."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

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


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.sqlite'}"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def now_dt(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


@pytest.fixture
def start_dashboard() -> Iterator[Callable[..., Dashboard]]:
    procs: list[subprocess.Popen[str]] = []

    def start(records: str, *args: str, env: dict[str, str] | None = None) -> Dashboard:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trustprov", "line", "dashboard", "--records", records, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        procs.append(proc)
        assert proc.stderr is not None
        lines = [proc.stderr.readline()]
        loopback = "127.0.0.1" in lines[0] or "[::1]" in lines[0]
        if not loopback or "--token" in args or "TRUSTPROV_DASHBOARD_TOKEN" in (env or {}):
            lines.append(proc.stderr.readline())  # the token's line
        assert lines[0].startswith("dashboard of"), (lines, proc.poll())
        return Dashboard(proc, lines)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.05)
