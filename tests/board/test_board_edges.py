"""The handler's edge cases (docs/protocol.md 13.1): the chip already in a socket inserted
again, a dead socket, an empty socket power-cycled; each answered as the spec says, spoken to a
board in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest
from boards import BoardStarter

from trustprov.errors import TransportError
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient

FAST = {"timeout": 0.2, "max_retries": 1}


def _refused(code: str, fn: object, *args: object, **kw: object) -> None:
    with pytest.raises(TransportError) as e:
        fn(*args, **kw)  # type: ignore[operator]
    assert e.value.code == code


def test_the_chip_already_in_a_socket_inserted_again(
    cm_farm: Path, world: object, start_board: BoardStarter
) -> None:
    uids = world.cm_uids(cm_farm)  # type: ignore[attr-defined]
    board = start_board(cm_farm, sockets=2)
    with BoardClient(board.handler) as h:
        h.insert(0, uids[0])
        _refused("occupied", h.insert, 0, uids[0])  # into its own socket, as any chip
        _refused("in-socket", h.insert, 1, uids[0])
        assert h.status()[0] == {"socket": 0, "chip": uids[0].hex(), "state": "powered"}
        link = open_link(board.sockets[0], **FAST)
        try:
            assert ChipClient(link).status()["uid"] == uids[0]
            h.insert(0, uids[0], replace=True)  # out and in again: powered on afresh
            _refused("chip-reset", ChipClient(link).status)
            link.hello()
            assert ChipClient(link).status()["uid"] == uids[0]
        finally:
            link.close()
        assert h.status()[0]["chip"] == uids[0].hex()


def test_a_dead_socket_seats_and_powers_nothing_but_gives_its_chip_back(
    cm_farm: Path, world: object, start_board: BoardStarter
) -> None:
    uids = world.cm_uids(cm_farm)  # type: ignore[attr-defined]
    board = start_board(cm_farm, sockets=2)
    with BoardClient(board.handler) as h:
        h.insert(0, uids[0])
        h.kill(0)
        _refused("dead", h.insert, 0, uids[1])
        _refused("dead", h.insert, 0, uids[1], replace=True)
        _refused("dead", h.power_cycle, 0)
        _refused("dead", h.power_cycle, 0, 10)
        assert h.status()[0] == {"socket": 0, "chip": uids[0].hex(), "state": "dead"}
        _refused("in-socket", h.insert, 1, uids[0])  # still in the dead socket
        h.kill(0)  # again: nothing changes
        h.remove(0)  # the chip comes out, and goes into a live socket
        assert h.status()[0] == {"socket": 0, "chip": None, "state": "dead"}
        h.insert(1, uids[0])
        _refused("dead", h.insert, 0, uids[1])
        link = open_link(board.sockets[1], **FAST)
        try:
            assert ChipClient(link).status()["uid"] == uids[0]
        finally:
            link.close()
        with pytest.raises(TransportError):  # the dead socket answers nothing
            open_link(board.sockets[0], **FAST).close()


def test_power_cycling_an_empty_socket_does_nothing_now_or_later(
    cm_farm: Path, world: object, start_board: BoardStarter
) -> None:
    uids = world.cm_uids(cm_farm)  # type: ignore[attr-defined]
    board = start_board(cm_farm, sockets=1)
    with BoardClient(board.handler) as h:
        h.power_cycle(0)
        h.power_cycle(0, 1)  # no cut waits for the next chip: its first byte would trigger it
        h.remove(0)  # an empty socket: ok
        assert h.status()[0] == {"socket": 0, "chip": None, "state": "empty"}
        h.insert(0, uids[0])
        link = open_link(board.sockets[0], **FAST)
        try:
            for _ in range(3):  # a cut after 1 byte would reset the link here
                assert ChipClient(link).status()["uid"] == uids[0]
        finally:
            link.close()
