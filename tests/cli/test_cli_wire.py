"""`trustprov chip serve` and `trustprov cm provision` over the wire (--manifest with --board or
--port): the same records and reports as in-process, and one clear line when a board dies."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from boards import BoardStarter

from trustprov.link.address import open_link
from trustprov.link.client import ChipClient

from .conftest import CliWorld
from .helpers import assert_error, lifecycles, ok, run


def _wire_job(cw: CliWorld, tmp_path: Path, *where: str) -> list[str]:
    return [
        "cm",
        "provision",
        "--manifest",
        str(cw.a.lot_json),
        "--lot",
        cw.a.cm_lot,
        *where,
        "--software",
        str(cw.a.software),
        "--share",
        str(cw.a.share),
        "--bundle",
        str(cw.a.bundle),
        "--records",
        f"sqlite:///{tmp_path / 'records.sqlite'}",
        "--station",
        "wire-1",
    ]


def _final(tmp_path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(tmp_path / "records.sqlite")
    try:
        return sorted(db.execute("SELECT uid, result FROM results"))
    except sqlite3.OperationalError:  # the station has not made its tables yet
        return []
    finally:
        db.close()


def test_serve_refuses_bad_options(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    for args, match in (
        (["--listen", "udp://127.0.0.1:1"], "neither tcp://HOST:PORT nor pty"),
        (["--listen", "pty"], "--chip goes with --listen pty"),
        (["--listen", "tcp://127.0.0.1:0", "--chip", cw.a.cm_uids[0]], "--chip goes with"),
        (["--listen", "tcp://127.0.0.1:0", "--faults", "drop=2"], "--faults"),
        (["--listen", "tcp://127.0.0.1:65535", "--sockets", "3"], "above port 65535"),
    ):
        assert_error(run("chip", "serve", "--farm", farm, *args), exit_code=2, match=match)
    missing = run(
        "chip",
        "serve",
        "--farm",
        tmp_path / "none.farm",
        "--listen",
        "pty",
        "--chip",
        cw.a.cm_uids[0],
    )
    assert_error(missing, exit_code=2, match="no chip farm")


def test_provision_over_a_board(cw: CliWorld, tmp_path: Path, start_board: BoardStarter) -> None:
    farm = cw.fresh_farm(tmp_path)
    board = start_board(farm, sockets=2)
    result = ok(*_wire_job(cw, tmp_path, "--board", board.handler), "--json")
    s = json.loads(result.stdout)
    assert (s["chips"], s["provisioned"], s["failed"], s["pending"]) == (4, 4, 0, 0)
    assert _final(tmp_path) == sorted((u, "provisioned") for u in cw.a.cm_uids)
    assert lifecycles(farm, cw.a.cm_lot) == dict.fromkeys(cw.a.cm_uids, "PROVISIONED")
    report = ok("cm", "report", "--records", f"sqlite:///{tmp_path / 'records.sqlite'}", "--json")
    r = json.loads(report.stdout)
    assert (r["provisioned"], r["pending"], r["stations"]["wire-1"]["chips"]) == (4, 0, 4)


def test_wire_options_exclude_each_other(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    job = _wire_job(cw, tmp_path)
    assert_error(run(*job), exit_code=2, match="give --board")
    both = [*job, "--board", "tcp://127.0.0.1:9", "--port", "serial:///dev/null"]
    assert_error(run(*both), exit_code=2, match="not both")
    on_board = [*job, "--farm", farm, "--board", "tcp://127.0.0.1:9"]
    assert_error(run(*on_board), exit_code=2, match="exclude each other")
    other_lot = [a if a != cw.a.cm_lot else "LOT-OTHER" for a in job]
    assert_error(
        run(*other_lot, "--board", "tcp://127.0.0.1:9"), exit_code=2, match="not 'LOT-OTHER'"
    )
    not_json = tmp_path / "lot.json"
    not_json.write_text("{")
    bad = [str(not_json) if a == str(cw.a.lot_json) else a for a in job]
    assert_error(run(*bad, "--board", "tcp://127.0.0.1:9"), exit_code=2, match="lot.json")
    nowhere = run(*job, "--board", "tcp://127.0.0.1:9")
    assert_error(nowhere, exit_code=1, match="does not answer: start it first")


def test_serve_a_chip_on_a_pty_and_provision_it(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = cw.fresh_farm(tmp_path)
    uid = cw.a.cm_uids[2]
    board = start_board(
        args=["chip", "serve", "--farm", str(farm), "--chip", uid, "--listen", "pty"]
    )
    port = board.ready["port"]
    assert port.startswith("serial:///dev/pts/")
    link = open_link(port)
    try:
        assert ChipClient(link).status()["uid"].hex() == uid  # the chip answers on the line
    finally:
        link.close()
    s = json.loads(ok(*_wire_job(cw, tmp_path, "--port", port), "--json").stdout)
    assert (s["provisioned"], s["failed"]) == (1, 0)
    assert _final(tmp_path) == [(uid, "provisioned")]  # that chip and no other
    assert lifecycles(farm, cw.a.cm_lot)[uid] == "PROVISIONED"


def test_a_killed_board_is_one_line_and_a_rerun_finishes(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = cw.fresh_farm(tmp_path)
    slow = start_board(farm, sockets=1, faults="delay=1:15ms")  # every unit 15 ms late
    station = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from trustprov.cli.main import main; main()",
            *_wire_job(cw, tmp_path, "--board", slow.handler),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            (tmp_path / "records.sqlite").exists() and _final(tmp_path)
        ):
            time.sleep(0.05)
        slow.kill()
        _, err = station.communicate(timeout=60)
    finally:
        if station.poll() is None:
            station.kill()
            station.wait()
    assert station.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: board tcp://127.0.0.1:")
    assert "restart it and rerun the same command" in lines[0]
    assert 1 <= len(_final(tmp_path)) < 4

    board = start_board(farm, sockets=2)
    ok(*_wire_job(cw, tmp_path, "--board", board.handler))
    final = _final(tmp_path)
    assert [u for u, _ in final] == sorted(cw.a.cm_uids)  # one final record each
    assert {r for _, r in final} <= {"provisioned", "already-provisioned"}
    assert lifecycles(farm, cw.a.cm_lot) == dict.fromkeys(cw.a.cm_uids, "PROVISIONED")


def test_a_board_beyond_loopback_needs_its_token_from_a_file_or_the_environment(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """protocol.md 13.1: a board bound beyond loopback refuses to start without a token; the
    station gives it from --board-token-file or TRUSTPROV_BOARD_TOKEN, never on its command
    line; no output shows it."""
    token = "b0ard-t0ken-for-the-line-" + "x" * 8
    token_file = tmp_path / "board.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)  # a secret file: its owner's alone
    farm = cw.fresh_farm(tmp_path)
    serve = ["chip", "serve", "--farm", farm, "--listen", "tcp://0.0.0.0:0"]
    assert_error(run(*serve), exit_code=2, match="needs a token")
    short = tmp_path / "short.token"
    short.write_text("tiny\n")
    short.chmod(0o600)
    line = assert_error(run(*serve, "--token-file", short), exit_code=2, match="16 to 128")
    assert "tiny" not in line
    board = start_board(args=[*map(str, serve), "--token-file", str(token_file)])
    handler = board.handler.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - not a bind
    job = _wire_job(cw, tmp_path, "--board", handler)
    monkeypatch.delenv("TRUSTPROV_BOARD_TOKEN", raising=False)
    assert_error(run(*job), exit_code=1, match="token")
    assert_error(run(*job, "--board-token-file", short), exit_code=2, match="16 to 128")
    result = ok(*job, "--board-token-file", token_file, "--json")
    s = json.loads(result.stdout)
    assert (s["chips"], s["provisioned"], s["failed"]) == (4, 4, 0)
    assert token not in result.stdout + result.stderr
    monkeypatch.setenv("TRUSTPROV_BOARD_TOKEN", token)
    again = json.loads(ok(*job, "--json").stdout)  # from the environment: nothing left to do
    assert (again["settled_before"], again["provisioned"]) == (4, 0)
