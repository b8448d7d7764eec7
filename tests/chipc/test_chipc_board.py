"""The C chip (chip-c/) behind a board's socket: `chip serve --exec` seats its program from a
tray, and `chip conformance --board --socket` runs the whole suite against it (protocol.md 13.4,
14.4), its power cut through the board's handler."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from boards import BoardProcess  # tests/boards.py

from trustprov.board.tray import add_blank
from trustprov.conformance.cases import CASES

from .chipc import PROGRAM, SOFTWARE, build

TRUSTPROV = [sys.executable, "-c", "from trustprov.cli.main import main; main()"]
IDLE = "0.3"


def test_the_suite_passes_on_a_c_chip_seated_from_a_tray(tmp_path: Path) -> None:
    build()
    tray = tmp_path / "tray"
    # not 0x00..0x0f-like: secrets.scan looks for the vector assets' bytes in every answer
    (uid,) = add_blank(
        tray, "c-conf", 1, rng=lambda n: bytes.fromhex("5eed0c0de0000000000000000000c0c1")[:n]
    )
    program = (
        f"{shlex.quote(str(PROGRAM))} --nvm {{nvm}} --uid {{uid}} --lot {{lot}} --stdio "
        f"--idle-timeout {IDLE}"
    )
    board = BoardProcess(
        ["chip", "serve", "--exec", program, "--tray", str(tray), "--listen", "tcp://127.0.0.1:0"]
    )
    try:
        done = subprocess.run(
            [
                *TRUSTPROV,
                *("chip", "conformance", "--board", board.handler, "--socket", "0"),
                *("--code", str(SOFTWARE), "--idle-timeout", IDLE, "--json"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        board.stop()
    doc = json.loads(done.stdout)
    assert doc["chip"] == uid.hex()
    failed = [(c["name"], c["evidence"]) for c in doc["cases"] if c["result"] == "fail"]
    assert not failed, failed
    assert done.returncode == 0
    assert [c["name"] for c in doc["cases"]] == [c.name for c in CASES]
    assert doc["skipped"] == []
