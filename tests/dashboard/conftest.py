"""Fixtures of the dashboard tests: a records store's URL, a fixed clock, and the dashboard as a
process of its own (`trustprov line dashboard`), always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dashboard_support import Clock, Dashboard


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.sqlite'}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


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
        if not loopback or "--token-file" in args or "TRUSTPROV_DASHBOARD_TOKEN" in (env or {}):
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
