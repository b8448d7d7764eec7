"""`make conformance-matrix`: `trustprov chip conformance`, the command a chip maker runs, against
the virtual chip in every signature suite of protocol.md 5.1 over every kind of port: a
pseudo-terminal, a TCP socket and a socket of a board (a tray of chip programs, seated through
the board's handler). One fresh blank chip per run, each board a process of its own, as a port's
would be. The last line is "N of M runs passed"; the exit status is 0 only when all did.

    python tests/conformance/run_matrix.py [--suite NAME ...] [--transport pty|tcp|board ...]

`make test` runs the whole suite in every suite over one port each, and every port in one suite
(tests/conformance/test_conformance.py, test_board_socket.py); this runs every pair.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `boards`

from boards import BoardProcess

from trustprov.board.tray import add_blank
from trustprov.crypto.keys import SUITES
from trustprov.link.handler import BoardClient

TRUSTPROV = [sys.executable, "-c", "from trustprov.cli.main import main; main()"]
TRANSPORTS = ("pty", "tcp", "board")
IDLE = "0.3"
#: no power control over a bare port (14.3): the power cut runs through a board's handler only
SKIPPED_BARE = ["link.power-cut"]


def _board(work: Path, transport: str) -> tuple[BoardProcess, list[str]]:
    """A board with one blank chip, and the `chip conformance` options that reach it."""
    if transport == "board":
        tray = work / "tray"
        add_blank(tray, "matrix", 1)
        run = " ".join(shlex.quote(a) for a in TRUSTPROV)
        run += f" chip run --nvm {{nvm}} --uid {{uid}} --lot {{lot}} --stdio --idle-timeout {IDLE}"
        board = BoardProcess(
            ["chip", "serve", "--exec", run, "--tray", str(tray), "--listen", "tcp://127.0.0.1:0"]
        )
        return board, ["--board", board.handler, "--socket", "0"]
    farm = work / "chips.farm"
    blank = subprocess.run(
        [*TRUSTPROV, "chip", "blank", "--farm", str(farm), "--count", "1", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (uid,) = json.loads(blank.stdout)["chips"]
    if transport == "pty":
        board = BoardProcess(
            [
                *("chip", "serve", "--farm", str(farm), "--listen", "pty", "--chip", uid),
                *("--idle-timeout", IDLE),
            ]
        )
        return board, ["--port", str(board.ready["port"])]
    board = BoardProcess(
        [
            *("chip", "serve", "--farm", str(farm), "--listen", "tcp://127.0.0.1:0"),
            *("--idle-timeout", IDLE),
        ]
    )
    with BoardClient(board.handler) as handler:  # a bare TCP port: the chip seated beforehand
        handler.insert(0, bytes.fromhex(uid))
    return board, ["--port", board.sockets[0]]


def run(suite: str, transport: str) -> tuple[bool, str]:
    """One run of the whole suite: (passed, what to print)."""
    with tempfile.TemporaryDirectory(prefix="matrix-") as tmp:
        board, reach = _board(Path(tmp), transport)
        try:
            done = subprocess.run(
                [
                    *(*TRUSTPROV, "chip", "conformance", *reach, "--suite", suite.lower()),
                    *("--idle-timeout", IDLE, "--json"),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            board.stop()
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        return False, f"no result: {done.stderr.strip()[-300:]}"
    expected_skips = [] if transport == "board" else SKIPPED_BARE
    ok = done.returncode == 0 and not doc["failed"] and doc.get("skipped", []) == expected_skips
    said = f"{len(doc['cases'])} cases, failed {doc['failed']}, skipped {doc.get('skipped', [])}"
    return ok, said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", choices=list(SUITES), default=None)
    parser.add_argument("--transport", action="append", choices=TRANSPORTS, default=None)
    args = parser.parse_args(argv)
    pairs = [(s, t) for s in args.suite or SUITES for t in args.transport or TRANSPORTS]
    passed = 0
    for suite, transport in pairs:
        start = time.monotonic()
        ok, said = run(suite, transport)
        passed += ok
        verdict = "pass" if ok else "FAIL"
        print(f"{verdict}  {suite:<16} {transport:<6} {time.monotonic() - start:5.1f} s  {said}")
    print(f"{passed} of {len(pairs)} runs passed")
    return 0 if passed == len(pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
