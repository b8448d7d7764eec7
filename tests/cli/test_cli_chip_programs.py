"""Blank chips from the fab, one virtual chip as a program (`chip run --stdio`, its state in one
file), a tray of such programs seated by a board (`chip serve --exec`), and `cm provision
--board` through it."""

from __future__ import annotations

import json
import logging
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from boards import BoardStarter

from trustprov.chip.device import Chip
from trustprov.chip.nvm_file import NvmFile
from trustprov.errors import ChipRefused, TransportError
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.link.framed import FramedLink
from trustprov.link.handler import BoardClient
from trustprov.link.port import ChipPort
from trustprov.link.transport import InProcessLink
from trustprov.roles.icm import Icm

from .conftest import CliWorld
from .helpers import assert_error, ok, run
from .test_cli_wire import _final, _wire_job

TRUSTPROV = [sys.executable, "-c", "from trustprov.cli.main import main; main()"]
CHIP_RUN = (
    " ".join(shlex.quote(a) for a in TRUSTPROV)
    + " chip run --nvm {nvm} --uid {uid} --lot {lot} --stdio"
)


class PipeStream:
    """The host's end of a chip program's standard input and output."""

    bytes_per_second: float | None = None

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self._in, self._out = proc.stdin.fileno(), proc.stdout.fileno()

    def write(self, data: bytes) -> None:
        os.write(self._in, data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self._out], [], [], timeout)
        if not ready:
            return b""
        data = os.read(self._out, max_bytes)
        if not data:
            raise TransportError("the chip program ended", code="link-closed")
        return data

    def close(self) -> None:
        """The program's pipes are closed by its test."""


def _chip_run(nvm: Path, uid: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*TRUSTPROV, "chip", "run", "--nvm", str(nvm), "--uid", uid, "--stdio", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _status_of_file(nvm: Path, uid: str, lot: str = "blank") -> dict[str, object]:
    """A chip's status read from its NVM file in this process, through its port."""
    store = NvmFile(nvm, uid=bytes.fromhex(uid), lot=lot)
    return ChipClient(InProcessLink(ChipPort(Chip(store, store.load())))).status()


# -- chip blank ---------------------------------------------------------------------------------
def test_blank_chips_into_a_farm(tmp_path: Path) -> None:
    farm = tmp_path / "fab.farm"
    doc = json.loads(
        ok("chip", "blank", "--farm", farm, "--count", "3", "--lot", "W1", "--json").stdout
    )
    assert doc["lot"] == "W1"
    assert len(set(doc["chips"])) == 3
    assert all(len(bytes.fromhex(u)) == 16 for u in doc["chips"])
    assert farm.stat().st_mode & 0o777 == 0o600  # it will hold the chips' secrets
    more = ok("chip", "blank", "--farm", farm, "--count", "1", "--lot", "W1").stdout
    assert more.strip() == f"1 blank chip in lot W1 of {farm}"
    with FarmLink(farm) as f:
        assert len(f.uids("W1")) == 4
        for uid in f.uids("W1"):
            with f.connect(uid) as c:
                status = c.status()
            assert (status["lifecycle"], status["lot"], status["family"]) == ("BLANK", "W1", None)


def test_blank_chips_into_a_tray(tmp_path: Path) -> None:
    tray = tmp_path / "tray"
    doc = json.loads(ok("chip", "blank", "--tray", tray, "--count", "2", "--json").stdout)
    assert doc["lot"] == "blank"
    files = sorted(p.name for p in (tray / "blank").iterdir())
    assert files == sorted(f"{u}.nvm" for u in doc["chips"])
    for name in files:
        assert (tray / "blank" / name).stat().st_size == 0  # blank: nothing but its name


def test_blank_refuses_bad_input(tmp_path: Path) -> None:
    for args, match in (
        (["--count", "1"], "exactly one of --farm"),
        (["--count", "1", "--farm", tmp_path / "f", "--tray", tmp_path / "t"], "exactly one"),
        (["--count", "1", "--tray", tmp_path / "t", "--lot", "../x"], "lot name"),
    ):
        assert_error(run("chip", "blank", *args), exit_code=2, match=match)
    (tmp_path / "notafarm").write_text("hello")
    assert_error(
        run("chip", "blank", "--farm", tmp_path / "notafarm", "--count", "1"),
        exit_code=2,
        match="not a chip farm",
    )


# -- chip run --stdio ---------------------------------------------------------------------------
def test_run_is_a_chip_on_stdio_and_eof_stops_it(tmp_path: Path) -> None:
    nvm, uid = tmp_path / "c.nvm", "ab" * 16
    proc = _chip_run(nvm, uid, "--lot", "W7")
    try:
        link = FramedLink(PipeStream(proc), timeout=2.0)
        link.hello()
        status = ChipClient(link).status()
        assert (status["uid"].hex(), status["lot"], status["lifecycle"]) == (uid, "W7", "BLANK")
        assert proc.stdin is not None
        proc.stdin.close()  # EOF: the chip is unplugged
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not nvm.exists()  # nothing was committed: a blank chip writes nothing


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = _chip_run(tmp_path / "c.nvm", "cd" * 16)
    try:
        link = FramedLink(PipeStream(proc), timeout=2.0)
        link.hello()  # it is running and answering
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_refuses_another_chips_file_and_bad_input(cw: CliWorld, tmp_path: Path) -> None:
    tray = tmp_path / "tray"
    uid = cw.a.cm_uids[0]
    ok("chip", "export", "--farm", cw.a.cm_farm, "--tray", tray, "--chip", uid)
    nvm = tray / cw.a.cm_lot / f"{uid}.nvm"
    other = "00" * 16
    assert_error(
        run("chip", "run", "--nvm", nvm, "--uid", other, "--stdio"),
        exit_code=2,
        match=f"holds chip {uid}, not {other}",
    )
    damaged = tmp_path / "damaged.nvm"
    data = bytearray(nvm.read_bytes())
    data[40] ^= 1
    damaged.write_bytes(bytes(data))
    assert_error(
        run("chip", "run", "--nvm", damaged, "--uid", uid, "--stdio"), exit_code=2, match="damaged"
    )
    assert_error(run("chip", "run", "--nvm", nvm, "--uid", "zz", "--stdio"), exit_code=2)


# -- chip export, chip serve --exec ---------------------------------------------------------------
def _exec_board(start_board: BoardStarter, tray: Path, *extra: str) -> object:
    return start_board(args=["chip", "serve", "--exec", CHIP_RUN, "--tray", str(tray), *extra])


def test_export_copies_made_chips_into_a_tray(cw: CliWorld, tmp_path: Path) -> None:
    tray = tmp_path / "tray"
    doc = json.loads(
        ok(
            "chip", "export", "--farm", cw.a.cm_farm, "--tray", tray, "--lot", cw.a.cm_lot, "--json"
        ).stdout
    )
    assert sorted(c["uid"] for c in doc["chips"]) == sorted(cw.a.cm_uids)
    for uid in cw.a.cm_uids:
        nvm = tray / cw.a.cm_lot / f"{uid}.nvm"
        assert nvm.stat().st_mode & 0o777 == 0o600  # the chip's secrets are in it
        status = _status_of_file(nvm, uid)
        assert (status["lifecycle"], status["lot"]) == ("MANUFACTURED", cw.a.cm_lot)
    again = run("chip", "export", "--farm", cw.a.cm_farm, "--tray", tray, "--chip", cw.a.cm_uids[0])
    assert_error(again, exit_code=2, match="already in the tray")  # never replaced


def test_provision_a_lot_seated_as_chip_programs(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    tray = tmp_path / "tray"
    ok("chip", "export", "--farm", cw.a.cm_farm, "--tray", tray, "--lot", cw.a.cm_lot)
    board = _exec_board(start_board, tray, "--listen", "tcp://127.0.0.1:0", "--sockets", "2")
    result = ok(*_wire_job(cw, tmp_path, "--board", board.handler), "--json")  # type: ignore[attr-defined]
    s = json.loads(result.stdout)
    assert (s["chips"], s["provisioned"], s["failed"], s["pending"]) == (4, 4, 0, 0)
    assert _final(tmp_path) == sorted((u, "provisioned") for u in cw.a.cm_uids)
    for uid in cw.a.cm_uids:  # the state each program committed to its file
        assert _status_of_file(tray / cw.a.cm_lot / f"{uid}.nvm", uid)["lifecycle"] == "PROVISIONED"


def test_a_board_of_programs_seats_powers_and_kills(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    tray = tmp_path / "tray"
    uids = json.loads(ok("chip", "blank", "--tray", tray, "--count", "2", "--json").stdout)["chips"]
    board = _exec_board(start_board, tray, "--listen", "tcp://127.0.0.1:0", "--sockets", "2")
    handler = BoardClient(board.handler)  # type: ignore[attr-defined]
    try:
        with pytest.raises(TransportError) as refused:
            handler.insert(0, bytes.fromhex("11" * 16))
        assert refused.value.code == "no-chip"
        handler.insert(0, bytes.fromhex(uids[0]))
        link = open_link(board.sockets[0], timeout=1.0)  # type: ignore[attr-defined]
        try:
            first = link.hello()
            assert ChipClient(link).status()["uid"].hex() == uids[0]  # a blank chip answers
            handler.power_cycle(0)  # the program is killed and started again: a new boot id
            assert link.hello().boot_id != first.boot_id
            states = {s["socket"]: s for s in handler.status()}
            assert (states[0]["chip"], states[0]["state"]) == (uids[0], "powered")
            handler.kill(0)
            assert {s["socket"]: s["state"] for s in handler.status()}[0] == "dead"
        finally:
            link.close()
        handler.insert(1, bytes.fromhex(uids[1]))
        link = open_link(board.sockets[1], timeout=1.0)  # type: ignore[attr-defined]
        try:
            assert ChipClient(link).status()["uid"].hex() == uids[1]
        finally:
            link.close()
        handler.remove(1)
        assert {s["socket"]: s["state"] for s in handler.status()}[1] == "empty"
    finally:
        handler.close()
    time.sleep(0.1)
    assert board.stop() == 0  # type: ignore[attr-defined]


def test_a_chip_program_behind_a_pty(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    tray = tmp_path / "tray"
    uid = cw.a.cm_uids[1]
    ok("chip", "export", "--farm", cw.a.cm_farm, "--tray", tray, "--chip", uid)
    board = _exec_board(start_board, tray, "--listen", "pty", "--chip", uid)
    port = board.ready["port"]  # type: ignore[attr-defined]
    s = json.loads(ok(*_wire_job(cw, tmp_path, "--port", port), "--json").stdout)
    assert (s["provisioned"], s["failed"]) == (1, 0)
    assert _status_of_file(tray / cw.a.cm_lot / f"{uid}.nvm", uid)["lifecycle"] == "PROVISIONED"


def test_serve_exec_refuses_bad_options(tmp_path: Path) -> None:
    tray = tmp_path / "tray"
    tray.mkdir()
    listen = ["--listen", "tcp://127.0.0.1:0"]
    for args, match in (
        (["--exec", "x {nvm}", *listen], "--exec CMD with --tray"),
        (["--tray", str(tray), *listen], "--farm FARM, or --exec"),
        (["--exec", "x", "--tray", str(tray), "--farm", str(tmp_path / "f"), *listen], "--farm"),
        (["--exec", "'unclosed", "--tray", str(tray), *listen], "--exec"),
        (["--exec", "true", "--tray", str(tmp_path / "none"), *listen], "no tray"),
        (["--exec", "no-such-chip-program {nvm}", "--tray", str(tray), *listen], "no program"),
    ):
        assert_error(run("chip", "serve", *args), exit_code=2, match=match)


def _burn_over_the_wire(port: str, image: bytes) -> dict[str, object]:
    link = open_link(port, timeout=1.0)
    try:
        chip = ChipClient(link)
        assert chip.status()["lifecycle"] == "BLANK"
        chip.burn(image)
        return chip.status()
    finally:
        link.close()


def test_a_board_serves_blank_chips_of_a_farm(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = tmp_path / "fab.farm"
    uid = json.loads(ok("chip", "blank", "--farm", farm, "--count", "1", "--json").stdout)["chips"][
        0
    ]
    board = start_board(farm)
    with BoardClient(board.handler) as handler:
        handler.insert(0, bytes.fromhex(uid))
    image = Icm.load(cw.a.icm).immutable.to_bytes()
    status = _burn_over_the_wire(board.sockets[0], image)
    assert (status["uid"].hex(), status["family"]) == (uid, Icm.load(cw.a.icm).family_id)  # type: ignore[union-attr]


def test_a_blank_chip_program_keeps_what_it_committed_across_a_power_cycle(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    tray = tmp_path / "tray"
    uid = json.loads(ok("chip", "blank", "--tray", tray, "--count", "1", "--json").stdout)["chips"][
        0
    ]
    board = _exec_board(start_board, tray, "--listen", "tcp://127.0.0.1:0", "--sockets", "1")
    family = Icm.load(cw.a.icm).family_id
    with BoardClient(board.handler) as handler:  # type: ignore[attr-defined]
        handler.insert(0, bytes.fromhex(uid))
        burned = _burn_over_the_wire(board.sockets[0], Icm.load(cw.a.icm).immutable.to_bytes())  # type: ignore[attr-defined]
        assert burned["family"] == family
        handler.power_cycle(0)  # the program is killed and started again from its file
        link = open_link(board.sockets[0], timeout=1.0)  # type: ignore[attr-defined]
        try:
            again = ChipClient(link)
            assert again.status()["family"] == family
            with pytest.raises(ChipRefused) as e:  # burned once, for good
                again.burn(Icm.load(cw.a.icm).immutable.to_bytes())
            assert e.value.code == "immutable-written"
        finally:
            link.close()
    assert _status_of_file(tray / "blank" / f"{uid}.nvm", uid)["family"] == family


def test_a_lot_of_chip_programs_survives_power_cuts_exactly_once(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter, caplog: pytest.LogCaptureFixture
) -> None:
    """Each chip program is killed at random points of its input (mid-message, mid-chunk,
    perhaps mid-commit); every chip still ends provisioned exactly once, its file whole."""
    tray = tmp_path / "tray"
    ok("chip", "export", "--farm", cw.a.cm_farm, "--tray", tray, "--lot", cw.a.cm_lot)
    board = _exec_board(
        start_board,
        tray,
        "--listen",
        "tcp://127.0.0.1:0",
        "--sockets",
        "2",
        "--faults",
        "powercut=0.5,seed=3",
    )
    with caplog.at_level(logging.INFO, logger="trustprov.line.wire"):
        result = ok(*_wire_job(cw, tmp_path, "--board", board.handler), "--json")  # type: ignore[attr-defined]
    assert "retrying" in caplog.text  # chips lost power mid-session, and were taken up again
    s = json.loads(result.stdout)
    assert (s["provisioned"], s["failed"], s["pending"]) == (4, 0, 0)
    assert _final(tmp_path) == sorted((u, "provisioned") for u in cw.a.cm_uids)
    for uid in cw.a.cm_uids:
        status = _status_of_file(tray / cw.a.cm_lot / f"{uid}.nvm", uid)
        assert status["lifecycle"] == "PROVISIONED"


def test_one_chip_runs_in_one_program_at_a_time(tmp_path: Path) -> None:
    nvm, uid = tmp_path / "c.nvm", "ef" * 16
    first = _chip_run(nvm, uid)
    try:
        FramedLink(PipeStream(first), timeout=2.0).hello()  # it runs, holding the chip
        assert_error(
            run("chip", "run", "--nvm", nvm, "--uid", uid, "--stdio"),
            exit_code=2,
            match="another program runs the chip",
        )
    finally:
        first.kill()
        first.wait()


def test_bauds_are_refused_when_bad_or_without_baud(tmp_path: Path) -> None:
    """--bauds (protocol.md 12.7): rates 300 to 20,000,000, at most 16, and only with --baud."""
    nvm = tmp_path / "c.nvm"
    base = ("chip", "run", "--nvm", nvm, "--uid", "ab" * 16, "--stdio")
    for extra, match in (
        (["--bauds", "115200"], "--bauds needs --baud"),
        (["--baud", "115200", "--bauds", "100"], "--bauds"),
        (["--baud", "115200", "--bauds", "fast"], "comma-separated"),
        (["--baud", "115200", "--bauds", ",".join(str(300 + i) for i in range(17))], "16"),
    ):
        assert_error(run(*base, *extra), exit_code=2, match=match)
    assert not nvm.exists()  # refused before the chip's file is made
