"""`trustprov demo --wire` (`make demo WIRE=1`): FIG. 1 to FIG. 4 with every chip reached only
through the wire, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import ok


def test_demo_over_the_wire_ends_reconciled(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = ok("demo", "--wire", "--chips", "3", "--out", out)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == (
        "reconciled by the OEM: 3 valid receipts of 3 chips ordered, 0 missing, 0 not valid"
    )
    assert "lot LOT-0001: 3 chips, 3 provisioned, 0 failed" in result.stdout
    # the lot's chips are chip programs' state files, made by the ICM's line and provisioned
    assert len(list((out / "cm" / "tray" / "LOT-0001").glob("*.nvm"))) == 3
    assert not (out / "cm" / "chips.farm").exists()  # no in-process farm for the lot
    report = json.loads((out / "cm" / "report.json").read_text())
    assert (report["wire"], report["manufactured"], report["provisioned"]) == (True, 3, 3)
    # --replace takes a previous wire demo's output, as make demo WIRE=1 does
    again = ok("demo", "--wire", "--chips", "1", "--out", out, "--replace", "--json")
    assert json.loads(again.stdout)["receipts"]["valid"] == 1
