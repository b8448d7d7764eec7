"""One good run of every command with a result, for the convention and message tests.

The tests derive their cases from these runs and from the command tree (`helpers.walk`): a new
command is covered at once, and fails until it has a run here or a table says why not.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from trustprov.line.records import RecordStore
from trustprov.line.records.icm_chips import IcmRecords

from .conftest import CliWorld
from .helpers import copy_farm, leaf_commands, ok, walk, write_assets

Path_ = tuple[str, ...]
#: positional arguments, then options (option -> value, or a list of values for a repeatable)
Argv = tuple[list[str | Path], dict[str, Any]]

LEAVES = sorted(leaf_commands())
ALL = [p for p, _ in walk()]
COMMANDS = dict(walk())


def ids(path: Path_) -> str:
    return " ".join(path) or "trustprov"


def options_of(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in p.opts}


def command_line(path: Path_, argv: Argv, *extra: str | Path) -> list[str | Path]:
    positional, options = argv
    out: list[str | Path] = [*path, *positional]
    for opt, value in options.items():
        for v in value if isinstance(value, list) else [value]:
            out += [opt] if v is True else [opt, v]
    return [*out, *extra]


# -- one good run of every command with a result --------------------------------------------------
def provision_run(cw: CliWorld, t: Path) -> Argv:
    farm = cw.fresh_farm(t / "cm")
    return [], {
        "--farm": farm,
        "--lot": cw.a.cm_lot,
        "--software": cw.a.software,
        "--share": cw.a.share,
        "--bundle": cw.a.bundle,
    }


def keygen_run(cw: CliWorld, t: Path) -> Argv:
    return [], {
        "--farm": copy_farm(cw.a.oem_farm, t / "oem"),
        "--chip": cw.a.oem_uid,
        "--software": cw.a.software,
        "--assets": cw.assets_toml,
        "--out": t / "out",
    }


def regen_run(cw: CliWorld, t: Path) -> Argv:
    _, options = keygen_run(cw, t)
    state = t / "state"  # a copy: regen records each epoch it issues in its state
    if not state.exists():
        shutil.copytree(cw.a.oem_dir, state)
    return [], {**options, "--state": state, "--assets": write_assets(t / "a2", epoch=2)}


def records_url_of(cw: CliWorld) -> str:
    return f"sqlite:///{cw.provisioned_farm.parent / 'records.sqlite'}"


RUNS: dict[Path_, Callable[[CliWorld, Path], Argv]] = {
    ("icm", "init"): lambda _cw, t: ([t / "icm"], {}),
    ("icm", "sign-software"): lambda cw, t: ([], {"--icm": cw.a.icm, "--out": t / "sw.cose"}),
    ("icm", "manufacture"): lambda cw, t: (
        [],
        {
            "--icm": cw.a.icm,
            "--farm": t / "f.farm",
            "--lot": "L",
            "--count": "2",
            "--manifest": t / "lot.json",
        },
    ),
    ("icm", "report"): lambda _cw, t: ([], {"--records": icm_records(t / "icm-records")}),
    ("oem", "verify-software"): lambda cw, _t: ([cw.a.software], {"--key": cw.a.pubkey}),
    ("oem", "keygen"): keygen_run,
    ("oem", "regen"): regen_run,
    ("oem", "authorize"): lambda cw, t: (
        [],
        {
            "--lot": cw.a.lot_json,
            "--out": t / "auth.cbor",
            "--icm-key": cw.a.icm / "lot-signing.pub.pem",
        },
    ),
    ("oem", "reconcile"): lambda cw, t: (
        [],
        {
            "--ca": cw.a.icm / "device-ca.pem",
            "--bundle": cw.a.bundle,
            "--receipts": receipts_of(cw, t),
        },
    ),
    ("cm", "provision"): provision_run,
    ("cm", "report"): lambda cw, _t: ([], {"--records": records_url_of(cw)}),
    ("cm", "receipts"): lambda cw, t: (
        [],
        {"--records": records_url_of(cw), "--out": t / "r.cbor"},
    ),
    ("chip", "show"): lambda cw, _t: ([], {"--farm": cw.a.cm_farm, "--chip": cw.a.cm_uids[0]}),
    ("chip", "blank"): lambda _cw, t: ([], {"--farm": t / "fab.farm", "--count": "2"}),
    ("chip", "export"): lambda cw, t: (
        [],
        {"--farm": cw.a.cm_farm, "--tray": t / "tray", "--chip": cw.a.cm_uids[0]},
    ),
    ("inspect",): lambda cw, _t: ([cw.a.bundle], {}),
    ("demo",): lambda _cw, t: ([], {"--chips": "2", "--out": t / "demo"}),
}


def receipts_of(cw: CliWorld, t: Path) -> Path:
    out = t / "receipts.cbor"
    ok("cm", "receipts", "--records", records_url_of(cw), "--out", out, record=False)
    return out


#: commands without a result of their own, and why they take no --json
NO_RESULT: dict[Path_, str] = {
    ("chip", "serve"): "a server; it prints its ports as one JSON line, always",
    ("chip", "run"): "a chip: its standard output is the link, nothing else",
    ("line", "dashboard"): "a web server; its page is the output",
    ("oem", "template"): "its output is the asset list itself (TOML)",
}
#: commands with --json whose good run needs more than this world (a chip behind a port)
RUN_ELSEWHERE: dict[Path_, str] = {
    ("chip", "conformance"): "test_cli_conformance.py runs it against a chip board with --json",
}


def icm_records(t: Path, *, lot: str = "L", reason: str = "other-family") -> str:
    """An ICM line's records store: one chip made, one skipped for ``reason``."""
    t.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{t / 'icm-records.sqlite'}"
    with RecordStore(url) as store:
        rows = IcmRecords(store, "icm-L")
        made, skipped = b"\x01" * 16, b"\x03" * 16
        rows.start(made, lot, b"\x02" * 8)
        rows.certify(made, b"public key", b"certificate")
        rows.made(made, lot)
        rows.note(skipped, lot, "skipped", reason, detail="a chip of another family")
    return url
