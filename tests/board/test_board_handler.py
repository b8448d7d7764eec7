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


def test_the_five_requests_parse() -> None:
    uid = bytes(range(16))
    assert parse_request(b'{"op":"status"}') == Request("status")
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
    ],
)
def test_anything_else_is_refused(line: bytes) -> None:
    with pytest.raises(HandlerError):
        parse_request(line)


def test_handler_operations(cm_farm: Path, world: object, start_board: BoardStarter) -> None:
    uids = world.cm_uids(cm_farm)  # type: ignore[attr-defined]
    board = start_board(cm_farm, sockets=2)
    assert len(board.sockets) == 2
    port = int(board.handler.rpartition(":")[2])
    assert board.sockets == [f"tcp://127.0.0.1:{port + 1}", f"tcp://127.0.0.1:{port + 2}"]
    with BoardClient(board.handler) as h:
        assert [s["state"] for s in h.status()] == ["empty", "empty"]
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
