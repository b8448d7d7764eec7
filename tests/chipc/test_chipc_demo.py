"""`make demo-c` (chip-c/tools/demo_c.py): the whole flow on C chips only, over a chip board of
C programs, at a small size; it must end with the OEM's reconciliation line of `make demo`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .chipc import ROOT, build

DEMO = ROOT / "chip-c" / "tools" / "demo_c.py"


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=out.parent,  # any working directory
    )


def test_demo_c_manufactures_seals_provisions_and_reconciles_every_c_chip(tmp_path: Path) -> None:
    build()
    done = _demo(tmp_path / "demo", "--chips", "3", "--sockets", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == (
        "reconciled by the OEM: 3 valid receipts of 3 chips ordered, 0 missing, 0 not valid"
    )
    # every chip of the lot is a C chip's NVM file in the tray, none a farm's
    assert len(list((tmp_path / "demo" / "tray" / "LOT-C001").glob("*.nvm"))) == 3
    assert not list((tmp_path / "demo").rglob("*.farm"))
    # the firmware went to the C chips deflated (protocol.md 6.2) and each installed it
    oem = json.loads((tmp_path / "demo" / "oem" / "oem.json").read_text())
    (firmware,) = [a for a in oem["assets"] if a["kind"] == "firmware"]
    assert firmware["deflate"] == 15
    # --replace takes a previous demo-c's output, and only that
    again = _demo(tmp_path / "demo", "--chips", "1", "--replace")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("reconciled by the OEM: 1 valid")


def test_demo_c_never_replaces_a_directory_it_did_not_make(tmp_path: Path) -> None:
    build()
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    done = _demo(out, "--chips", "1", "--replace")
    assert done.returncode != 0
    assert "not empty" in done.stderr
    assert "Traceback" not in done.stderr
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
