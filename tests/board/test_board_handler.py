"""The board's handler protocol, parsed (units) and spoken to a board in its own process."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from boards import BoardStarter

from trustprov.board.handler import MAX_REQUEST, HandlerError, Request, parse_request
from trustprov.chip.probe import Probe
from trustprov.errors import TransportError
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient
from trustprov.roles.cm import Job

FAST = {"timeout": 0.2, "max_retries": 1}  # a socket with no chip answers nothing


def test_the_seven_requests_parse() -> None:
    uid = bytes(range(16))
    assert parse_request(b'{"op":"status"}') == Request("status")
    assert parse_request(b'{"op":"chips"}') == Request("chips")
    got = parse_request(json.dumps({"op": "insert", "socket": 3, "chip": uid.hex()}).encode())
    assert got == Request("insert", 3, chip=uid)
    assert parse_request(b'{"op":"remove","socket":0}') == Request("remove", 0)
    assert parse_request(b'{"op":"power-cycle","socket":1,"after":9}') == Request(
        "power-cycle", 1, after=9
    )
    assert parse_request(b'{"op":"power-cycle","socket":1}').after == 0
    assert parse_request(b'{"op":"kill","socket":2}') == Request("kill", 2)
    replacing = {"op": "insert", "socket": 0, "chip": uid.hex(), "replace": True}
    assert parse_request(json.dumps(replacing).encode()).replace
    auth = parse_request(b'{"op":"auth","token":"0123456789abcdef"}')
    assert (auth.op, auth.token) == ("auth", "0123456789abcdef")
    assert "0123456789abcdef" not in repr(auth)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"[]",
        b'{"op":"format"}',
        b'{"op":"status","socket":1}',
        b'{"op":"remove"}',
        b'{"op":"remove","socket":-1}',
        b'{"op":"remove","socket":true}',
        b'{"op":"insert","socket":0,"chip":"zz"}',
        b'{"op":"insert","socket":0,"chip":"' + b"g" * 32 + b'"}',
        b'{"op":"power-cycle","socket":0,"after":1.5}',
        b'{"op":"insert","socket":0,"chip":"' + b"0" * 32 + b'","replace":1}',
        b'{"op":"remove","socket":0,"replace":true}',
        b"\xff\xfe",
        b"{" + b" " * MAX_REQUEST + b"}",
        # unknown fields, and fields of a wrong type (protocol.md 13.1: exactly these fields)
        b'{"op":"status","token":"x"}',
        b'{"op":"chips","socket":0}',
        b'{"op":"kill","socket":0,"after":1}',
        b'{"op":["status"]}',
        b'{"op":null}',
        b'{"op":"remove","socket":"0"}',
        b'{"op":"remove","socket":0.0}',
        b'{"op":"remove","socket":65536}',
        b'{"op":"insert","socket":0,"chip":7}',
        b'{"op":"power-cycle","socket":0,"after":-1}',
        b'{"op":"power-cycle","socket":0,"after":4294967296}',
        b'{"op":"auth"}',
        b'{"op":"auth","token":5}',
        b'{"op":"auth","token":""}',
        b'{"op":"auth","token":"0123456789abcdef","socket":0}',
        # a field given twice: json.loads would keep the last one
        b'{"op":"status","op":"kill","socket":0}',
        b'{"op":"kill","socket":0,"socket":1}',
        b'{"op":"remove","socket":0,"socket":0}',
        b'{"op":"insert","socket":0,"chip":"' + b"0" * 32 + b'","chip":"' + b"1" * 32 + b'"}',
        b'{"op":"power-cycle","socket":0,"after":0,"after":99}',
    ],
)
def test_anything_else_is_refused(line: bytes) -> None:
    with pytest.raises(HandlerError) as e:
        parse_request(line)
    assert e.value.code == ("too-long" if len(line) > MAX_REQUEST else "bad-request")


def test_a_field_given_twice_is_refused_on_the_wire(
    cm_farm: Path, start_board: BoardStarter
) -> None:
    """``{"op":"status","op":"kill","socket":0}`` kills nothing: the board answers bad-request
    and the socket stays in service."""
    board = start_board(cm_farm)
    host, _, port = board.handler.removeprefix("tcp://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        f = s.makefile("rb")
        s.sendall(b'{"op":"status","op":"kill","socket":0}\n')
        assert json.loads(f.readline())["error"] == "bad-request"
    with BoardClient(board.handler) as h:
        assert [x["state"] for x in h.status()] == ["empty"]


def test_handler_operations(cm_farm: Path, world: object, start_board: BoardStarter) -> None:
    uids = world.cm_uids(cm_farm)  # type: ignore[attr-defined]
    board = start_board(cm_farm, sockets=2)
    assert len(board.sockets) == 2
    port = int(board.handler.rpartition(":")[2])
    assert board.sockets == [f"tcp://127.0.0.1:{port + 1}", f"tcp://127.0.0.1:{port + 2}"]
    with BoardClient(board.handler) as h:
        assert [s["state"] for s in h.status()] == ["empty", "empty"]
        assert sorted(h.chips()) == sorted(uids)  # every chip it holds, seated or not
        h.insert(1, uids[0])
        assert h.status()[1] == {"socket": 1, "chip": uids[0].hex(), "state": "powered"}
        with pytest.raises(TransportError) as e:
            h.insert(1, uids[1])
        assert e.value.code == "occupied"
        with pytest.raises(TransportError) as e:
            h.insert(0, uids[0])  # one chip, one socket: two would share its state
        assert e.value.code == "in-socket"
        h.insert(1, uids[1], replace=True)  # the chip before it leaves first
        assert h.status()[1]["chip"] == uids[1].hex()
        h.insert(1, uids[0], replace=True)
        with pytest.raises(TransportError) as e:
            h.insert(0, bytes(16))
        assert e.value.code == "no-chip"
        with pytest.raises(TransportError) as e:
            h.remove(5)
        assert e.value.code == "no-socket"

        # the chip answers over its socket's wire, with its own UID
        link = open_link(board.sockets[1], **FAST)
        try:
            assert ChipClient(link).status()["uid"] == uids[0]
            h.power_cycle(1)  # its RAM is gone: the link must start again
            with pytest.raises(TransportError) as e:
                ChipClient(link).status()
            assert e.value.code == "chip-reset"
            link.hello()
            assert ChipClient(link).status()["uid"] == uids[0]
        finally:
            link.close()

        h.remove(1)
        assert h.status()[1]["chip"] is None
        with pytest.raises(TransportError):  # an empty socket answers nothing
            open_link(board.sockets[1], **FAST).close()

        h.insert(0, uids[2])
        h.kill(0)
        assert h.status()[0]["state"] == "dead"
        with pytest.raises(TransportError):  # a dead socket stops answering
            open_link(board.sockets[0], **FAST).close()
    assert board.stop() == 0  # SIGTERM: a clean stop


def test_power_cut_mid_chunk_leaves_the_chip_untouched(
    cm_farm: Path, world: object, start_board: BoardStarter
) -> None:
    w = world
    uid = w.cm_uids(cm_farm)[0]  # type: ignore[attr-defined]
    job = Job.load(w.software, w.share, w.bundle)  # type: ignore[attr-defined]
    board = start_board(cm_farm, sockets=1)
    with BoardClient(board.handler) as h:
        h.insert(0, uid)
        link = open_link(board.sockets[0], timeout=0.3)
        try:
            chip = ChipClient(link)
            chip.send(job.boot_request)
            into_second_chunk = len(job.prepared.begin) + len(job.prepared.chunks[0]) + 100
            h.power_cycle(0, after=into_second_chunk)
            with pytest.raises(TransportError) as e:
                chip.provision(job.prepared)
            assert e.value.code == "chip-reset"
        finally:
            link.close()
        with Probe(cm_farm) as p:
            assert p.read(uid).bundle_id is None  # nothing half-installed
        link = open_link(board.sockets[0])
        try:  # and it is retryable, from the start
            chip = ChipClient(link)
            chip.send(job.boot_request)
            chip.provision(job.prepared)
        finally:
            link.close()
    with Probe(cm_farm) as p:
        assert p.read(uid).bundle_id == job.prepared.bundle_id


def test_raw_lines(cm_farm: Path, start_board: BoardStarter) -> None:
    board = start_board(cm_farm)
    host, _, port = board.handler.removeprefix("tcp://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        f = s.makefile("rb")
        s.sendall(b"nonsense\n")
        assert json.loads(f.readline())["error"] == "bad-request"
        s.sendall(b'{"op":"status"}\n{"op":"status"}\n')  # two requests in one write
        assert json.loads(f.readline())["ok"]
        assert json.loads(f.readline())["ok"]
        s.sendall(b"x" * (MAX_REQUEST + 10))
        assert json.loads(f.readline())["error"] == "too-long"
        assert f.readline() == b""  # and the connection is closed


TOKEN = "s3cr3t-t0ken-0f-the-b0ard"  # noqa: S105 - a test token


def test_a_board_with_a_token_answers_nothing_before_it(
    cm_farm: Path, start_board: BoardStarter, tmp_path: Path
) -> None:
    """protocol.md 13.1: the first request of a connection presents the token; anything
    before it, or a wrong one, is answered unauthorized and the connection closed. The token
    comes from a file: it is not on the board's command line (``ps``)."""
    token_file = tmp_path / "board.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)  # a secret file: its owner's alone
    args = ["chip", "serve", "--farm", str(cm_farm), "--listen", "tcp://127.0.0.1:0"]
    board = start_board(args=[*args, "--token-file", str(token_file)])
    assert TOKEN not in " ".join(map(str, board.proc.args))
    host, _, port = board.handler.removeprefix("tcp://").rpartition(":")
    for first in (
        b'{"op":"status"}\n',
        b'{"op":"kill","socket":0}\n',
        b'{"op":"auth","token":"not-the-token-at-all"}\n',
    ):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            f = s.makefile("rb")
            s.sendall(first + b'{"op":"status"}\n')
            answer = json.loads(f.readline())
            assert (answer["ok"], answer["error"]) == (False, "unauthorized")
            assert TOKEN not in answer["message"]
            assert f.readline() == b""  # closed: the second request is not answered
    with pytest.raises(TransportError) as e:
        BoardClient(board.handler).status()
    assert e.value.code == "unauthorized"
    with pytest.raises(TransportError) as e:
        BoardClient(board.handler, token=TOKEN[::-1]).status()
    assert e.value.code == "unauthorized"
    with BoardClient(board.handler, token=TOKEN) as h:
        assert TOKEN not in repr(h)
        assert [x["state"] for x in h.status()] == ["empty"]  # the kill above did nothing


def test_beyond_loopback_a_board_needs_a_token(cm_farm: Path) -> None:
    from trustprov.board.server import Board  # noqa: PLC0415 - the board's own check
    from trustprov.errors import InputError  # noqa: PLC0415

    for host in ("0.0.0.0", "127.0.0.2", "::"):  # noqa: S104 - the addresses under test
        board = Board(cm_farm)
        try:
            with pytest.raises(InputError, match="needs a token"):
                board.listen_tcp(host, 0, 1)
        finally:
            board.close()
    board = Board(cm_farm, token=TOKEN)
    try:
        ready = board.listen_tcp("0.0.0.0", 0, 1)  # noqa: S104 - with its token, it may
        assert str(ready["handler"]).startswith("tcp://0.0.0.0:")
    finally:
        board.close()
    with pytest.raises(InputError) as e:
        Board(cm_farm, token=TOKEN[:5])
    assert TOKEN[:5] not in e.value.message
