"""A wire at a line rate (`--baud`, `--turnaround`): bytes cross at baud / 10 bytes per second each
way, in order and whole, and the chip starts answering a turnaround after what it answers.

Rates are measured on transfers of 100-200 KB at 1-2 Mbaud (about a second each), so the loop's
timer granularity (milliseconds) is well under the few percent asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trustprov.board.line_rate import LineRate, Pacer
from trustprov.board.server import Board
from trustprov.board.timers import Timers
from trustprov.errors import ChipRefused, InputError
from trustprov.formats.frame import FrameType, encode_frame
from trustprov.line.boards import discover
from trustprov.link.address import open_link, open_stream
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient

TOLERANCE = 0.04  # a few percent of the rate asked


def _run(timers: Timers, until: Pacer, limit: float = 10.0) -> None:
    """The board's loop, reduced to its timers: sleep to the next one, run what is due."""
    end = time.monotonic() + limit
    while not until.idle and time.monotonic() < end:
        due = timers.next_due()
        if due is not None:
            time.sleep(max(0.0, due - time.monotonic()))
        timers.run_due()


def test_a_pacer_carries_every_byte_in_order_at_the_line_rate() -> None:
    timers, got, stamps = Timers(), bytearray(), []
    rate = LineRate(2_000_000)  # 200,000 bytes per second

    def deliver(data: bytes) -> None:
        got.extend(data)
        stamps.append(time.monotonic())

    pacer = Pacer(rate.bytes_per_second, timers, deliver)
    units = [os.urandom(n) for n in (65_000, 1, 70_000, 64_999)]  # 200,000 bytes
    t0 = time.monotonic()
    for unit in units:
        pacer.offer(unit)
    _run(timers, pacer)
    elapsed = stamps[-1] - t0
    assert bytes(got) == b"".join(units)
    assert 200_000 / 200_000 <= elapsed <= 1.0 * (1 + TOLERANCE)
    assert len(stamps) > 50  # in slices: the far end starts on the first bytes at once


def test_an_idle_line_earns_no_credit() -> None:
    timers, got, stamps = Timers(), bytearray(), []
    pacer = Pacer(100_000.0, timers, lambda d: (got.extend(d), stamps.append(time.monotonic())))
    pacer.offer(b"x" * 1000)
    _run(timers, pacer)
    time.sleep(0.3)  # the line is idle: the next burst still goes at the line rate
    t0 = time.monotonic()
    pacer.offer(b"y" * 50_000)
    _run(timers, pacer)
    assert stamps[-1] - t0 >= 0.5
    assert bytes(got) == b"x" * 1000 + b"y" * 50_000


def test_a_unit_waits_for_its_turnaround_and_for_the_units_before_it() -> None:
    timers, stamps = Timers(), []
    pacer = Pacer(None, timers, lambda d: stamps.append((d, time.monotonic())))
    t0 = time.monotonic()
    pacer.offer(b"a", t0 + 0.2)
    pacer.offer(b"b", t0)  # ready at once, but behind "a" on the wire
    _run(timers, pacer)
    assert [d for d, _ in stamps] == [b"ab"]
    assert stamps[0][1] - t0 >= 0.2


def test_clear_drops_what_has_not_crossed() -> None:
    timers, got = Timers(), bytearray()
    pacer = Pacer(10_000.0, timers, got.extend)
    pacer.offer(b"z" * 10_000)
    pacer.clear()
    pacer.offer(b"w" * 100)
    _run(timers, pacer)
    assert bytes(got) == b"w" * 100


def test_a_line_rate_out_of_range_is_refused() -> None:
    for bad in ({"baud": 10}, {"baud": 30_000_000}, {"turnaround_ms": -1.0}):
        with pytest.raises(InputError):
            LineRate(**bad)  # type: ignore[arg-type]


# -- a board at a line rate ---------------------------------------------------------------------
@pytest.fixture
def paced_board(cm_farm: Path) -> Iterator[dict[str, Any]]:
    b = Board(cm_farm, line=LineRate(2_000_000, 1.0))
    ready = b.listen_tcp("127.0.0.1", 0, 1)

    def loop() -> None:
        b.open()
        b.serve()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield ready
    finally:
        b.stop()
        t.join(timeout=10)
    assert not t.is_alive()


def test_a_station_learns_each_socket_s_line_rate_from_the_board(
    paced_board: dict[str, Any],
) -> None:
    with BoardClient(paced_board["handler"]) as h:
        assert [s["baud"] for s in h.status()] == [2_000_000]
    (ref,) = discover([paced_board["handler"]])
    assert ref.address == paced_board["sockets"][0] + "?baud=2000000"
    stream = open_stream(ref.address)
    try:
        assert stream.bytes_per_second == 200_000  # its timeouts scale with the line (12.4)
    finally:
        stream.close()


def test_a_board_socket_carries_a_request_at_its_line_rate(
    paced_board: dict[str, Any], cm_farm: Path, world: Any
) -> None:
    with BoardClient(paced_board["handler"]) as h:
        h.insert(0, world.cm_uids(cm_farm)[0], replace=True)
    link = open_link(paced_board["sockets"][0] + "?baud=2000000")
    try:
        t0 = time.monotonic()
        ChipClient(link).status()  # small: a round trip of turnarounds, not of bytes
        small = time.monotonic() - t0
        payload = b"\x00" * 200_000  # nothing to stuff: 200,000 bytes and 4 frames' headers
        t0 = time.monotonic()
        with pytest.raises(ChipRefused):
            ChipClient(link).send(payload)  # not a request the chip knows; it answers anyway
        elapsed = time.monotonic() - t0
    finally:
        link.close()
    assert small >= 0.001  # the chip's turnaround
    assert 1.0 <= elapsed <= 1.0 * (1 + TOLERANCE)


# -- chip run --stdio at a line rate ------------------------------------------------------------
def test_chip_run_stdio_answers_after_its_turnaround_at_its_line_rate(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from trustprov.cli.main import main; main()",
            *("chip", "run", "--nvm", str(tmp_path / "c.nvm"), "--uid", "ab" * 16, "--stdio"),
            *("--baud", "1000000", "--turnaround", "300"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        hello = encode_frame(FrameType.HELLO, payload=b"\x01abcd")
        proc.stdin.write(hello)  # the program is up once it answers
        proc.stdin.flush()
        assert proc.stdout.read1(4096).startswith(b"\xc0\x02")
        t0 = time.monotonic()
        proc.stdin.write(hello + b"\xc0" + b"\x00" * 100_000 + b"\xc0" + hello)
        proc.stdin.flush()
        first = proc.stdout.read1(4096)  # the first hello's answer, before the 100 KB cross
        t1 = time.monotonic()
        rest = b""
        while b"\xc0\x02" not in rest:  # a NAK for the noise, then the last hello's answer
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break  # the chip ended: the assertions below say so
            rest += chunk
        t2 = time.monotonic()
        proc.stdin.close()  # EOF: the chip is unplugged
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first.startswith(b"\xc0\x02")  # a hello's answer
    assert b"\xc0\x02" in rest  # the other's
    assert 0.3 <= t1 - t0 < 0.6  # the turnaround; no wait for what follows the frame
    # the 100 KB of noise take 1 s at 100,000 bytes per second, then the turnaround
    assert 1.3 <= t2 - t0 <= 1.3 * (1 + TOLERANCE)


def test_a_sender_that_ignores_the_rate_overruns_the_line_not_the_board_s_memory() -> None:
    timers, got, now = Timers(), bytearray(), [0.0]
    pacer = Pacer(1_000_000.0, timers, got.extend, clock=lambda: now[0], max_queued=10_000)
    pacer.offer(b"a" * 6_000)
    pacer.offer(b"b" * 6_000)  # 4,000 of it fit: the rest is lost, as a UART's FIFO overruns
    pacer.offer(b"c" * 10)
    now[0] = 1.0  # a second later: the line had time for all of it
    timers.run_due()
    assert bytes(got) == b"a" * 6_000 + b"b" * 4_000
    assert pacer.overrun == 2_010
    assert pacer.idle
    pacer.offer(b"d" * 10)  # drained: room again
    now[0] = 2.0
    timers.run_due()
    assert got.endswith(b"d" * 10)


def test_a_new_connection_does_not_wait_behind_the_old_one_s_bytes(
    paced_board: dict[str, Any], cm_farm: Path, world: Any
) -> None:
    with BoardClient(paced_board["handler"]) as h:
        h.insert(0, world.cm_uids(cm_farm)[0], replace=True)
    old = open_stream(paced_board["sockets"][0])
    try:
        old.write(b"\x00" * 1_000_000)  # 5 s of line at 2 Mbaud, from a host gone since
        time.sleep(0.2)  # the board has read it
    finally:
        old.close()
    t0 = time.monotonic()
    link = open_link(paced_board["sockets"][0] + "?baud=2000000")  # says hello
    link.close()
    assert time.monotonic() - t0 < 1.0
