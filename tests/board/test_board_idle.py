"""A board in this process: a host that goes quiet mid-session leaves the chip without its keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_untouched

from trustprov.board.server import Board
from trustprov.chip.probe import Probe
from trustprov.errors import ChipRefused
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient
from trustprov.roles.cm import Job

IDLE = 0.3


@pytest.fixture
def board(cm_farm: Path) -> Iterator[tuple[Board, dict[str, Any]]]:
    b = Board(cm_farm, idle_timeout=IDLE)
    ready = b.listen_tcp("127.0.0.1", 0, 1)

    def loop() -> None:
        b.open()  # the farm belongs to the loop's thread
        b.serve()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield b, ready
    finally:
        b.stop()
        t.join(timeout=10)
    assert not t.is_alive()


def test_a_silent_host_ends_the_session(
    board: tuple[Board, dict[str, Any]], cm_farm: Path, world: Any
) -> None:
    _, ready = board
    quiet, control = world.cm_uids(cm_farm)[:2]
    job = Job.load(world.software, world.share, world.bundle)
    for uid, pause in ((quiet, IDLE * 4), (control, 0.0)):
        with BoardClient(ready["handler"]) as h:
            h.insert(0, uid, replace=True)
        link = open_link(ready["sockets"][0])
        try:
            chip = ChipClient(link)
            chip.send(job.boot_request)
            chip.send(job.prepared.begin)  # a session with the OEM's keys is open
            time.sleep(pause)  # the host goes quiet, or not
            if pause:
                with pytest.raises(ChipRefused) as e:  # RAM dropped: no software, no keys
                    chip.send(job.prepared.chunks[0])
                assert e.value.code == "unknown-command"
            else:
                for request in (*job.prepared.chunks, job.prepared.finish):
                    chip.send(request)
        finally:
            link.close()
    with Probe(cm_farm) as p:
        assert_untouched(p.read(quiet))
        assert p.read(control).bundle_id == job.prepared.bundle_id
