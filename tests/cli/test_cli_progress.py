"""The progress bar: on stderr, only when stderr is a terminal, never with --json or -q; stdout
keeps the result alone. Each command that has a bar is run in a real process whose stderr is a
pseudo-terminal (the bar decides by ``isatty``, which a test runner's capture never is)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliWorld

Argv = list[str | Path]

#: the commands with a progress bar: (label the bar shows, a good run)
BARS: dict[str, tuple[str, Callable[[CliWorld, Path], Argv]]] = {
    "icm manufacture": (
        "manufacturing",
        lambda cw, t: [
            "icm",
            "manufacture",
            "--icm",
            cw.a.icm,
            "--farm",
            t / "f.farm",
            "--lot",
            "L",
            "--count",
            "3",
            "--manifest",
            t / "lot.json",
        ],
    ),
    "cm provision": (
        "provisioning",
        lambda cw, t: [
            "cm",
            "provision",
            "--farm",
            cw.fresh_farm(t),
            "--lot",
            cw.a.cm_lot,
            "--software",
            cw.a.software,
            "--share",
            cw.a.share,
            "--bundle",
            cw.a.bundle,
        ],
    ),
}


def _run_with_a_terminal_stderr(argv: Argv) -> tuple[int, str, str]:
    """(exit code, stdout, what the terminal on stderr received)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trustprov", *map(str, argv)],
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(slave)
        received = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process has gone
                break
            if not chunk:
                break
            received += chunk
        stdout, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return proc.returncode, stdout.decode(), received.decode(errors="replace")


@pytest.mark.parametrize("command", sorted(BARS))
def test_the_bar_goes_to_a_terminal_stderr_and_not_to_stdout(
    cw: CliWorld, tmp_path: Path, command: str
) -> None:
    label, make = BARS[command]
    for d in ("1", "--json", "-q"):
        (tmp_path / d).mkdir()
    code, stdout, terminal = _run_with_a_terminal_stderr(make(cw, tmp_path / "1"))
    assert code == 0, terminal
    assert label in terminal
    assert label not in stdout
    assert len(stdout.splitlines()) == 1  # the result line alone
    for quiet in ("--json", "-q"):
        code, _, terminal = _run_with_a_terminal_stderr([*make(cw, tmp_path / quiet), quiet])
        assert code == 0, terminal
        assert label not in terminal, quiet


def test_a_refusal_on_a_terminal_is_one_line_without_a_bar(cw: CliWorld, tmp_path: Path) -> None:
    """The bar starts with the work: inputs refused before it leave no empty bar above."""
    argv = BARS["icm manufacture"][1](cw, tmp_path / "missing-dir")
    code, stdout, terminal = _run_with_a_terminal_stderr(argv)
    assert code == 2
    assert stdout == ""
    assert "manufacturing" not in terminal
    assert terminal.strip().startswith("error: ")
