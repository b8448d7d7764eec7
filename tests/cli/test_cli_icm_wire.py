"""`icm manufacture --board/--port`: the ICM's line through a TCP board of chip programs, through
a pseudo-terminal, interrupted and resumed, and its option errors (docs/icm.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from boards import BoardStarter

from trustprov.roles.lots import load_lot_key, read_lot

from .conftest import CliWorld
from .helpers import assert_error, ok, run
from .test_cli_chip_programs import CHIP_RUN, TRUSTPROV, _status_of_file


def _manufacture(cw: CliWorld, tmp_path: Path, *where: str | Path) -> list[str | Path]:
    return [
        "icm", "manufacture", "--icm", cw.a.icm, "--lot", "LW",
        "--manifest", tmp_path / "lw.json", *where,
    ]  # fmt: skip


def _lot_uids(cw: CliWorld, manifest: Path) -> list[str]:
    lot = read_lot(manifest, load_lot_key(cw.a.icm / "lot-signing.pub.pem"))
    return [c.uid.hex() for c in lot.chips]


def test_blank_chip_programs_on_a_tcp_board_are_made(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    tray = tmp_path / "tray"
    uids = json.loads(
        ok("chip", "blank", "--tray", tray, "--count", "3", "--lot", "LW", "--json").stdout
    )["chips"]
    board = start_board(
        args=["chip", "serve", "--exec", CHIP_RUN, "--tray", str(tray),
              "--listen", "tcp://127.0.0.1:0", "--sockets", "2"]
    )  # fmt: skip
    s = json.loads(ok(*_manufacture(cw, tmp_path, "--board", board.handler), "--json").stdout)
    assert (s["made"], s["made_now"], s["skipped"], s["failed"]) == (3, 3, {}, {})
    assert s["manifest"] == str(tmp_path / "lw.json")
    assert s["records"] == f"sqlite:///{tmp_path / 'icm-records.sqlite'}"
    assert sorted(_lot_uids(cw, tmp_path / "lw.json")) == sorted(uids)
    for uid in uids:  # each program committed its making to its own file
        assert _status_of_file(tray / "LW" / f"{uid}.nvm", uid, "LW")["lifecycle"] == "MANUFACTURED"
    # the same command again: the manifest is there, and is not replaced unasked
    assert_error(run(*_manufacture(cw, tmp_path, "--board", board.handler)), exit_code=2,
                 match="exists")  # fmt: skip
    again = ok(*_manufacture(cw, tmp_path, "--board", board.handler), "--force")
    assert "3 chips of family" in again.stdout
    assert "(0 in this run)" in again.stdout
    # icm report reads the same records
    records = f"sqlite:///{tmp_path / 'icm-records.sqlite'}"
    report = json.loads(ok("icm", "report", "--records", records, "--json").stdout)
    assert (report["lot"], report["made"], report["in_progress"]) == ("LW", 3, 0)
    assert (report["skipped"], report["failed"]) == ({}, {})
    text = ok("icm", "report", "--records", records, "--lot", "LW").stdout
    assert text.startswith("lot LW: 3 chips made, 0 in progress, 0 skipped, 0 failed")
    assert_error(run("icm", "report", "--records", records, "--lot", "NOPE"), exit_code=2,
                 match="no lot")  # fmt: skip


def test_one_blank_chip_behind_a_pty_is_made(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = tmp_path / "desk.farm"
    uid = json.loads(
        ok("chip", "blank", "--farm", farm, "--count", "1", "--lot", "LW", "--json").stdout
    )["chips"][0]
    board = start_board(
        args=["chip", "serve", "--farm", str(farm), "--chip", uid, "--listen", "pty"]
    )
    s = json.loads(ok(*_manufacture(cw, tmp_path, "--port", board.ready["port"]), "--json").stdout)
    assert (s["made"], s["failed"]) == (1, {})
    assert _lot_uids(cw, tmp_path / "lw.json") == [uid]
    # the same chip again: made before, counted once, the manifest the same
    port = board.ready["port"]
    again = json.loads(ok(*_manufacture(cw, tmp_path, "--port", port), "--force", "--json").stdout)
    assert (again["made"], again["made_now"], again["skipped"]) == (1, 0, {})
    assert _lot_uids(cw, tmp_path / "lw.json") == [uid]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_interrupted_line_resumes_with_every_chip_made_once(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter, how: signal.Signals
) -> None:
    farm = tmp_path / "f.farm"
    ok("chip", "blank", "--farm", farm, "--count", "4", "--lot", "LW")
    board = start_board(farm, faults="delay=1:30ms")  # every unit on the wire late: a slow line
    argv = [*TRUSTPROV, *map(str, _manufacture(cw, tmp_path, "--board", board.handler))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    records = tmp_path / "icm-records.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _made(records):
        time.sleep(0.1)
    proc.send_signal(how)  # Ctrl-C, or the process killed, mid-lot
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL), err
    assert not (tmp_path / "lw.json").exists()
    first = _made(records)
    assert 1 <= first < 4
    s = json.loads(ok(*_manufacture(cw, tmp_path, "--board", board.handler), "--json").stdout)
    assert (s["made"], s["made_now"], s["failed"]) == (4, 4 - first, {})
    uids = _lot_uids(cw, tmp_path / "lw.json")
    assert len(set(uids)) == 4
    engine = sa.create_engine(f"sqlite:///{records}")
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT uid, state, certificate FROM icm_chips")).all()
    engine.dispose()
    assert sorted(r[0] for r in rows) == sorted(uids)  # one row, one certificate, per UID
    assert {r[1] for r in rows} == {"made"}


def _made(records: Path) -> int:
    if not records.exists():
        return 0
    engine = sa.create_engine(f"sqlite:///{records}")
    try:
        with engine.connect() as c:
            return int(
                c.execute(sa.text("SELECT count(*) FROM icm_chips WHERE state = 'made'")).scalar()
                or 0
            )
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def test_manufacture_options_are_checked(cw: CliWorld, tmp_path: Path) -> None:
    base = _manufacture(cw, tmp_path)
    for extra, match in [
        ([], "give --farm"),
        (["--farm", tmp_path / "f", "--board", "tcp://127.0.0.1:9"], "exclude"),
        (["--board", "tcp://127.0.0.1:9", "--port", "tcp://127.0.0.1:9"], "not both"),
        (["--farm", tmp_path / "f"], "--count"),
        (["--farm", tmp_path / "f", "--count", "1", "--records", "sqlite:///x"], "--board/--port"),
        (["--port", "tcp://127.0.0.1:9", "--board-token-file", tmp_path / "t"], "goes with"),
        (["--board", "nonsense"], "tcp://HOST:PORT"),
    ]:
        assert_error(run(*base, *extra), exit_code=2, match=match)
    assert not (tmp_path / "lw.json").exists()
