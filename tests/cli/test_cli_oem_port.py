"""The OEM's desk chip behind a port (`oem keygen/regen --port --ca`): over TCP (a board's
socket) and over a pseudo-terminal, checked against the device CA before it is sent anything."""

from __future__ import annotations

import json
from pathlib import Path

from boards import BoardStarter

from trustprov.link.handler import BoardClient

from .conftest import CliWorld
from .helpers import assert_error, copy_farm, ok, run, write_assets


def _tcp_desk_chip(cw: CliWorld, tmp_path: Path, start_board: BoardStarter) -> str:
    """The OEM's chip (a copy of its farm) seated in socket 0 of a board; the socket's port."""
    farm = copy_farm(cw.a.oem_farm, tmp_path / "desk")
    board = start_board(farm)
    with BoardClient(board.handler) as handler:
        handler.insert(0, bytes.fromhex(cw.a.oem_uid))
    return board.sockets[0]


def _keygen(cw: CliWorld, out: Path, *where: str | Path) -> list[str | Path]:
    return [
        "oem",
        "keygen",
        *where,
        "--software",
        cw.a.software,
        "--assets",
        cw.assets_toml,
        "--out",
        out,
    ]


def test_keygen_on_a_desk_chip_over_tcp_makes_a_bundle_the_cm_installs(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    port = _tcp_desk_chip(cw, tmp_path, start_board)
    out = tmp_path / "oem"
    ca = cw.a.icm / "device-ca.pem"
    made = json.loads(ok(*_keygen(cw, out, "--port", port, "--ca", ca), "--json").stdout)
    assert made["out"] == str(out)
    # the proof that the chip behind the port sealed it: the CM's chips install the bundle
    s = _provision(cw.fresh_farm(tmp_path / "cm"), cw, out)
    assert (s["provisioned"], s["failed"]) == (len(cw.a.cm_uids), 0)


def _provision(farm: Path, cw: CliWorld, oem_dir: Path) -> dict[str, int]:
    share, bundle = oem_dir / "enc-oem-share.cose", oem_dir / "bundle.cbor"
    where = ["--farm", farm, "--lot", cw.a.cm_lot, "--software", cw.a.software]
    result = ok("cm", "provision", *where, "--share", share, "--bundle", bundle, "--json")
    doc: dict[str, int] = json.loads(result.stdout)
    return doc


def test_regen_on_a_desk_chip_behind_a_pty(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path / "desk")
    board = start_board(
        args=["chip", "serve", "--farm", str(farm), "--chip", cw.a.oem_uid, "--listen", "pty"]
    )
    port = board.ready["port"]
    out = tmp_path / "regen"
    result = ok(
        "oem",
        "regen",
        "--port",
        port,
        "--ca",
        cw.a.icm / "device-ca.pem",
        "--software",
        cw.a.software,
        "--state",
        cw.a.oem_dir,
        "--assets",
        write_assets(tmp_path / "a2", epoch=2),
        "--out",
        out,
        "--json",
    )
    assert json.loads(result.stdout)["epoch"] == 2
    # FIG. 4 rebuilt the same OEM domain: chips holding keygen's bundle take the update
    s = _provision(cw.provisioned_copy(tmp_path / "cm"), cw, out)
    assert (s["provisioned"], s["failed"]) == (len(cw.a.cm_uids), 0)


def test_a_chip_of_another_ca_is_sent_nothing(
    cw: CliWorld, tmp_path: Path, start_board: BoardStarter
) -> None:
    port = _tcp_desk_chip(cw, tmp_path, start_board)
    out = tmp_path / "oem"
    wrong = run(*_keygen(cw, out, "--port", port, "--ca", cw.b.icm / "device-ca.pem"))
    assert_error(wrong, exit_code=1, match="not issued for it by the device CA")
    assert not out.exists()


def test_port_options_are_checked(cw: CliWorld, tmp_path: Path) -> None:
    out = tmp_path / "oem"
    ca = cw.a.icm / "device-ca.pem"
    for where, match in (
        (["--port", "tcp://127.0.0.1:9"], "--port needs --ca"),
        ([], "give --port ADDRESS, or --farm FARM with --chip UID"),
        (["--port", "tcp://127.0.0.1:9", "--ca", ca, "--farm", cw.a.oem_farm], "give --port"),
        (["--farm", cw.a.oem_farm], "give --port"),
        (["--port", "udp://x", "--ca", ca], "udp://x"),
    ):
        assert_error(run(*_keygen(cw, out, *where)), exit_code=2, match=match)
    assert not out.exists()
