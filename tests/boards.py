"""Chip boards as processes of their own, for the tests of the board and of the line over the wire.

`BoardProcess` starts `trustprov chip serve`, waits for its one JSON line, and is always stopped
by the fixture that made it (SIGTERM, then SIGKILL): no test leaves a board running. Loopback
only; the system picks the ports (``--listen tcp://127.0.0.1:0``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT = 30.0


class ReadyProcess:
    """A process that prints one JSON line when it is ready (a board, a chip program): started,
    waited for (`READY_TIMEOUT`), and stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], what: str, timeout: float = READY_TIMEOUT) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            if self.proc.poll() is None:
                self.proc.kill()
            _, err_bytes = self.proc.communicate(timeout=10)
            err = err_bytes.decode(errors="replace")
            self.stop()
            raise AssertionError(f"{what} did not start: {err}")
        self.ready: dict[str, Any] = json.loads(line)

    def kill(self) -> None:
        """Pull the plug: SIGKILL, as a power cut."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode


class BoardProcess(ReadyProcess):
    """`trustprov chip serve ARGS`; `kill` pulls the board's plug: every chip on it loses
    power at once."""

    def __init__(self, args: list[str]) -> None:
        python = [sys.executable, "-c", "from trustprov.cli.main import main; main()"]
        super().__init__([*python, *args], "the board")

    @property
    def handler(self) -> str:
        return str(self.ready["handler"])

    @property
    def sockets(self) -> list[str]:
        return list(self.ready["sockets"])


BoardStarter = Callable[..., BoardProcess]


def serve_args(farm: Path, *, sockets: int = 1, faults: str | None = None) -> list[str]:
    args = ["chip", "serve", "--farm", str(farm), "--listen", "tcp://127.0.0.1:0"]
    args += ["--sockets", str(sockets)]
    return args + (["--faults", faults] if faults else [])


@pytest.fixture
def start_board() -> Iterator[BoardStarter]:
    """``start_board(farm, sockets=N, faults=SPEC)`` or ``start_board(args=[...])``; every
    board started is stopped when the test ends, whatever happened."""
    started: list[BoardProcess] = []

    def start(
        farm: Path | None = None, *, args: list[str] | None = None, **kw: Any
    ) -> BoardProcess:
        assert (farm is None) != (args is None)
        board = BoardProcess(args if args is not None else serve_args(farm, **kw))  # type: ignore[arg-type]
        started.append(board)
        return board

    yield start
    for board in started:
        board.stop()
