"""Issue 19 item 3: text from a file, a records store, a chip or a board never drives the
operator's terminal, in any command's human-readable output.

Driven by the command tree (`helpers.walk`): every leaf command runs against a poisoned records
store and a poisoned chip farm (`tests/poison.py`), writes to a poisoned path, and is given a
poisoned missing input; its stdout and stderr must show every planted character as text. A new
command fails here until it has a poisoned run or a reason in `NO_POISONED_RUN`. The --json
outputs stay exact: the planted values come back byte for byte, with no raw control character.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from poison import (
    CODE,
    ESC_CLEAR,
    FAKE,
    LOT,
    MESSAGE,
    STATION,
    assert_shown_as_text,
    poison_farm,
    poison_records,
)

from .conftest import CliWorld
from .helpers import describe, run
from .runs import LEAVES, RUNS, Argv, Path_, command_line, icm_records, ids, records_url_of

#: a directory name that tries the same tricks: every output path below it echoes them
DIR = f"out{ESC_CLEAR}{FAKE}\r\u202e"


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def poisoned_store(cw: CliWorld, t: Path) -> str:
    """A copy of the provisioned lot's records, every text in it poisoned."""
    src = Path(records_url_of(cw).removeprefix("sqlite:///"))
    t.mkdir(parents=True, exist_ok=True)
    dest = t / "records.sqlite"
    shutil.copyfile(src, dest)
    poison_records(dest)
    return f"sqlite:///{dest}"


def poisoned_farm(cw: CliWorld, t: Path, *, provisioned: bool = True) -> Path:
    farm = cw.provisioned_copy(t) if provisioned else cw.fresh_farm(t)
    poison_farm(farm)
    return farm


def out_dir(t: Path) -> Path:
    d = t / DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


Runs = Callable[[CliWorld, Path], list[Argv]]


def _with(path: Path_, t: Path, cw: CliWorld, **options: object) -> Argv:
    positional, good = RUNS[path](cw, t)
    return positional, {**good, **options}


POISONED_RUNS: dict[Path_, Runs] = {
    ("icm", "report"): lambda _cw, t: [
        ([], {"--records": icm_records(t / "icm", lot=LOT, reason=CODE)}),
    ],
    ("chip", "show"): lambda cw, t: [
        ([], {"--farm": poisoned_farm(cw, t / "1"), "--chip": cw.a.cm_uids[0]}),
        ([], {"--farm": poisoned_farm(cw, t / "2"), "--lot": LOT}),
    ],
    ("cm", "provision"): lambda cw, t: [
        _with(
            ("cm", "provision"),
            t,
            cw,
            **{
                "--farm": poisoned_farm(cw, t / "f", provisioned=False),
                "--lot": LOT,
                "--records": f"sqlite:///{out_dir(t) / 'records.sqlite'}",
            },
        ),
    ],
    ("cm", "report"): lambda cw, t: [
        (
            [],
            {
                "--records": poisoned_store(cw, t / "s"),
                "--csv": out_dir(t) / "r.csv",
                "--html": out_dir(t) / "r.html",
            },
        ),
    ],
    ("cm", "receipts"): lambda cw, t: [
        ([], {"--records": poisoned_store(cw, t / "s"), "--out": out_dir(t) / "r.cbor"}),
    ],
    ("inspect",): lambda cw, t: [
        ([Path(poisoned_store(cw, t / "s").removeprefix("sqlite:///"))], {}),
        ([poisoned_farm(cw, t / "f")], {}),
        ([_poisoned_lot_manifest(cw, t)], {}),
    ],
    ("demo",): lambda cw, t: [_with(("demo",), t, cw, **{"--out": out_dir(t) / "demo"})],
    ("icm", "init"): lambda _cw, t: [([out_dir(t) / "icm"], {})],
    ("icm", "sign-software"): lambda cw, t: [
        _with(("icm", "sign-software"), t, cw, **{"--out": out_dir(t) / "sw.cose"}),
        _with(("icm", "sign-software"), t, cw, **{"--version": FAKE + ESC_CLEAR}),
    ],
    ("icm", "manufacture"): lambda cw, t: [
        _with(("icm", "manufacture"), t, cw, **{"--farm": out_dir(t) / "f.farm"}),
        _with(("icm", "manufacture"), t / "2", cw, **{"--lot": LOT}),
    ],
    ("oem", "verify-software"): lambda cw, t: [
        ([_copy(cw.a.software, t)], {"--key": cw.a.pubkey}),
    ],
    ("oem", "keygen"): lambda cw, t: [
        _with(("oem", "keygen"), t, cw, **{"--out": out_dir(t) / "o"})
    ],
    ("oem", "regen"): lambda cw, t: [_with(("oem", "regen"), t, cw, **{"--out": out_dir(t) / "o"})],
    ("oem", "authorize"): lambda cw, t: [
        _with(("oem", "authorize"), t, cw, **{"--out": out_dir(t) / "auth.cbor"}),
    ],
    ("oem", "reconcile"): lambda cw, t: [
        _with(("oem", "reconcile"), t, cw, **{"--csv": out_dir(t) / "rec.csv"}),
    ],
    ("oem", "template"): lambda _cw, t: [([], {"--out": out_dir(t) / "assets.toml"})],
    ("chip", "serve"): lambda cw, _t: [
        ([], {"--farm": cw.a.cm_farm, "--listen": f"tcp://{STATION}:1"}),
    ],
    ("chip", "blank"): lambda _cw, t: [
        ([], {"--farm": out_dir(t) / "fab.farm", "--count": "1", "--lot": LOT}),
        ([], {"--tray": out_dir(t) / "tray", "--count": "1", "--lot": LOT}),
    ],
    ("chip", "export"): lambda cw, t: [
        ([], {"--farm": poisoned_farm(cw, t / "f"), "--tray": out_dir(t) / "tray", "--lot": LOT}),
    ],
    ("chip", "run"): lambda _cw, t: [
        ([], {"--nvm": out_dir(t) / "c.nvm", "--uid": "00" * 16, "--lot": LOT, "--stdio": True}),
    ],
    ("chip", "conformance"): lambda _cw, _t: [([], {"--port": f"tcp://127.0.0.1:1/{STATION}"})],
    ("line", "dashboard"): lambda cw, t: [
        ([], {"--records": poisoned_store(cw, t / "s"), "--listen": f"{STATION}:1"}),
    ],
}
#: leaves without a poisoned run, and why
NO_POISONED_RUN: dict[Path_, str] = {}


def _copy(src: Path, t: Path) -> Path:
    dest = out_dir(t) / src.name
    shutil.copyfile(src, dest)
    return dest


def _poisoned_lot_manifest(cw: CliWorld, t: Path) -> Path:
    doc = json.loads(cw.a.lot_json.read_text())
    doc["lot"] = LOT
    doc["chips"][0]["uid"] = MESSAGE
    path = out_dir(t) / "lot.json"
    path.write_text(json.dumps(doc))
    return path


def _check(result: Result, what: str) -> None:
    assert "Traceback" not in result.stderr, describe(result)
    assert_shown_as_text(result.stdout, f"{what}: stdout")
    assert_shown_as_text(result.stderr, f"{what}: stderr")


@pytest.mark.parametrize("path", LEAVES, ids=ids)
def test_every_command_shows_poisoned_text_as_text(
    cw: CliWorld, tmp_path: Path, path: Path_
) -> None:
    if path in NO_POISONED_RUN:
        return
    assert path in POISONED_RUNS, f"add a poisoned run of {ids(path)} (or a reason)"
    for k, argv in enumerate(POISONED_RUNS[path](cw, tmp_path)):
        for verbose in ((), ("-vv",)):  # the logs too
            result = run(*command_line(path, argv, *verbose))
            _check(result, f"{ids(path)} run {k} {verbose}")


@pytest.mark.parametrize("path", [p for p in LEAVES if p in RUNS], ids=ids)
def test_a_poisoned_missing_input_is_one_escaped_line(
    cw: CliWorld, tmp_path: Path, path: Path_
) -> None:
    """The error that names a missing input file echoes its name as text."""
    positional, options = RUNS[path](cw, tmp_path)
    missing = tmp_path / f"no{ESC_CLEAR}{FAKE}\n{FAKE}\r\u202e.bin"
    names = [o for o, v in options.items() if isinstance(v, Path) and v.exists()]
    if positional and isinstance(positional[0], Path) and positional[0].exists():
        positional = [missing, *positional[1:]]
    elif names:
        options = {**options, names[0]: missing}
    else:
        pytest.skip(f"{ids(path)} reads no input file")
    result = run(*command_line(path, (positional, options)))
    assert result.exit_code != 0, describe(result)
    _check(result, ids(path))
    assert len(result.stderr.splitlines()) == 1, describe(result)


def test_json_outputs_keep_the_planted_values_exact(cw: CliWorld, tmp_path: Path) -> None:
    """JSON escapes every control character itself: the values come back exactly, and the text
    of the document holds no raw control character."""
    store = poisoned_store(cw, tmp_path)
    result = run("cm", "report", "--records", store, "--json")
    assert result.exit_code == 0, describe(result)
    assert_shown_as_text(result.stdout, "cm report --json")
    doc = json.loads(result.stdout)
    assert doc["lot"] == LOT
    assert set(doc["stations"]) == {STATION}
    assert doc["failures"] == {CODE: 2}
    shown = run("chip", "show", "--farm", poisoned_farm(cw, tmp_path / "f"), "--lot", LOT, "--json")
    assert shown.exit_code == 0, describe(shown)
    assert json.loads(shown.stdout)["lot"] == LOT
    assert_shown_as_text(shown.stdout, "chip show --json")


def test_the_human_report_shows_the_planted_values_escaped(cw: CliWorld, tmp_path: Path) -> None:
    """Escaped, not dropped: the operator sees what the store holds, as text."""
    result = run("cm", "report", "--records", poisoned_store(cw, tmp_path))
    assert result.exit_code == 0, describe(result)
    assert "station st\\x1b[2J\\x1b[HFAKE-OK\\x0d\\x07" in result.stdout
    assert "LOT\\u202e\\x1b[2J" in result.stdout
    assert "code\\x1b]0;title\\x07\\x9b31m 2" in result.stdout
