"""T50: a poisoned records store or chip farm cannot drive the operator's terminal.

The CM (or anyone who can write the records store or the farm file: a station, a programmer's
firmware reporting a lot name) plants escape sequences, carriage returns, bells, 8-bit CSIs,
newlines and bidi overrides in station names, lot names, error codes and messages, hoping that
`cm report`, `chip show` or `inspect` clears the screen and prints a fake "OK" (issue 19, item
3). Every character of them reaches the terminal as text; the JSON stays exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from helpers import copy_farm, world_job
from poison import CODE, LOT, STATION, assert_shown_as_text, poison_farm, poison_records

from trustprov.cli.main import cli
from trustprov.line.station import provision_lot


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="trustprov")


def _poisoned_line(world: Any, tmp_path: Path) -> tuple[Path, Path, str]:
    """A lot provisioned into a records store, then the store and the farm poisoned."""
    farm = copy_farm(world.cm_farm, tmp_path / "cm.farm")
    records = tmp_path / "records.sqlite"
    provision_lot(
        farm_path=farm,
        lot=world.cm_lot,
        job=world_job(world),
        records_url=f"sqlite:///{records}",
        station="honest",
    )
    uid = world.cm_uids(farm)[0].hex()
    poison_records(records)
    poison_farm(farm)
    return farm, records, uid


def test_attack_poisoned_store_and_farm_cannot_drive_the_terminal(
    world: Any, tmp_path: Path
) -> None:
    farm, records, uid = _poisoned_line(world, tmp_path)
    url = f"sqlite:///{records}"
    runs = [
        ("cm", "report", "--records", url),
        ("cm", "report", "--records", url, "--lot", LOT),
        ("-vv", "cm", "receipts", "--records", url, "--out", tmp_path / "r.cbor"),
        ("chip", "show", "--farm", farm, "--chip", uid),
        ("chip", "show", "--farm", farm, "--lot", LOT),
        ("inspect", records),
        ("inspect", farm),
        ("cm", "report", "--records", url, "--lot", f"{LOT}-missing"),  # an error that quotes it
    ]
    for args in runs:
        result = _run(*args)
        assert "Traceback" not in result.stderr, result.stderr
        assert_shown_as_text(result.stdout, f"{args[:2]} stdout")
        assert_shown_as_text(result.stderr, f"{args[:2]} stderr")
    # shown, escaped: the operator still sees what the store holds
    report = _run("cm", "report", "--records", url).stdout
    assert "st\\x1b[2J\\x1b[HFAKE-OK\\x0d\\x07" in report
    # the JSON keeps the values exactly, and holds no raw control character either
    doc = _run("cm", "report", "--records", url, "--json").stdout
    assert_shown_as_text(doc, "cm report --json")
    parsed = json.loads(doc)
    assert (parsed["lot"], set(parsed["stations"]), set(parsed["failures"])) == (
        LOT,
        {STATION},
        {CODE},
    )
