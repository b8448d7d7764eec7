"""`trustprov chip conformance --board tcp://HANDLER --socket K` (docs/protocol.md 14.4): the
suite seats a blank chip of a board's tray through the handler, powers it through the handler
for the power-cut case, and says in one line when the chip is not fresh or the tray has none.

The board is `chip serve --exec` with a tray of virtual chip programs (`chip run --stdio`), each
chip a process of its own, as a port's chips would be; ports are the system's, files tmp_path's.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from boards import BoardProcess  # tests/boards.py

from trustprov.board.tray import add_blank
from trustprov.conformance.cases import CASES

from .test_conformance import TRANSPORT_SUITES

SUITE = TRANSPORT_SUITES["board"]

TRUSTPROV = [sys.executable, "-c", "from trustprov.cli.main import main; main()"]
IDLE = "0.3"
CHIP_RUN = (
    " ".join(shlex.quote(a) for a in TRUSTPROV)
    + f" chip run --nvm {{nvm}} --uid {{uid}} --lot {{lot}} --stdio --idle-timeout {IDLE}"
)


def _board(tray: Path, sockets: int = 2, *extra: str) -> BoardProcess:
    return BoardProcess(
        [
            *("chip", "serve", "--exec", CHIP_RUN, "--tray", str(tray)),
            *("--listen", "tcp://127.0.0.1:0", "--sockets", str(sockets), *extra),
        ]
    )


def _conformance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRUSTPROV, "chip", "conformance", "--idle-timeout", IDLE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_whole_suite_passes_through_a_board_socket_once_per_fresh_chip(
    tmp_path: Path,
) -> None:
    tray = tmp_path / "tray"
    (uid,) = add_blank(tray, "conf-1", 1)
    board = _board(tray)
    try:
        done = _conformance("--board", board.handler, "--socket", "1", "--suite", SUITE, "--json")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        doc = json.loads(done.stdout)
        assert doc["passed"]
        assert not doc["failed"]
        assert doc["chip"] == uid.hex()
        assert doc["port"] == board.sockets[1]
        assert [c["name"] for c in doc["cases"]] == [c.name for c in CASES]
        assert doc["skipped"] == []  # the power cut ran, through the handler
        # the same chip again: burned and locked, not fresh; and the tray holds no other
        again = _conformance("--board", board.handler, "--socket", "1", "--chip", uid.hex())
        assert again.returncode == 1
        assert again.stdout == ""
        assert again.stderr.count("\n") == 1
        assert f"chip {uid.hex()} in socket 1 is not fresh (lifecycle LOCKED" in again.stderr
        none = _conformance("--board", board.handler, "--socket", "1")
        assert none.returncode == 1
        assert none.stderr.count("\n") == 1
        assert "no blank chip in the tray of board" in none.stderr
        assert "all of the 1 chips" in none.stderr
    finally:
        board.stop()


def test_an_empty_tray_a_missing_socket_and_bad_options_are_one_line_each(tmp_path: Path) -> None:
    tray = tmp_path / "tray"
    tray.mkdir()
    board = _board(tray, sockets=1)
    try:
        cases = [
            (("--board", board.handler), 1, "its tray is empty"),
            (("--board", board.handler, "--socket", "3"), 2, "has no socket 3 (1 sockets)"),
            (("--board", board.handler, "--chip", "00ff"), 2, "is not a UID of 32 hex digits"),
            (("--board", board.handler, "--port", board.sockets[0]), 2, "one of them"),
            (("--port", board.sockets[0], "--socket", "0"), 2, "go with --board"),
            (("--board", "tcp://nowhere"), 2, "is not tcp://HOST:PORT"),
        ]
        for args, code, text in cases:
            done = _conformance(*args)
            assert done.returncode == code, (args, done.stderr)
            assert done.stderr.count("\n") == 1, (args, done.stderr)
            assert text in done.stderr, (args, done.stderr)
            assert "Traceback" not in done.stderr
    finally:
        board.stop()


def test_a_board_that_seats_another_chip_than_asked_is_named(tmp_path: Path) -> None:
    """13.2 `misplace`: the board seats the next chip of its tray; the chip's own UID shows it,
    and the suite tests neither."""
    tray = tmp_path / "tray"
    add_blank(tray, "conf-1", 2)
    board = _board(tray, 1, "--faults", "misplace=1")
    try:
        done = _conformance("--board", board.handler)
    finally:
        board.stop()
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "the chip there names another UID" in done.stderr
