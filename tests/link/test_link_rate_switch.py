"""A faster line after the hello (protocol.md 12.7): the host asks the chip's rates, switches to
the highest it may use and confirms it at the new rate, or both ends go back to the first rate
and the session goes on there; a chip without a list is not switched; a list that is not 12.7's
is a typed error, in bounded time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wire import FakeClock, LoopStream, split_frames

from trustprov.board.line_rate import LineRate
from trustprov.board.server import Board
from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import TransportError
from trustprov.formats.frame import (
    RATE_HOLD,
    FrameDecoder,
    FrameType,
    encode_frame,
)
from trustprov.link.address import open_stream
from trustprov.link.client import ChipClient
from trustprov.link.framed import FramedLink
from trustprov.link.handler import BoardClient
from trustprov.link.rate_switch import rate_opener, switch_rate
from trustprov.link.stream import ByteStream

FIRST = 115_200
RATES = (115_200, 1_000_000, 3_000_000)


@pytest.fixture
def board(request: pytest.FixtureRequest, cm_farm: Path, world: Any) -> Iterator[Board]:
    b = Board(cm_farm, line=LineRate(FIRST, 0.0, request.param))
    ready = b.listen_tcp("127.0.0.1", 0, 1)

    def loop() -> None:
        b.open()
        b.serve()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    with BoardClient(ready["handler"]) as h:
        h.insert(0, world.cm_uids(cm_farm)[0], replace=True)
    b.address = ready["sockets"][0] + f"?baud={FIRST}"  # type: ignore[attr-defined]
    b.handler_address = ready["handler"]  # type: ignore[attr-defined]
    try:
        yield b
    finally:
        b.stop()
        t.join(timeout=10)
    assert not t.is_alive()


def _link(board: Board, wrap: Any = None) -> FramedLink:
    stream: ByteStream = open_stream(board.address)  # type: ignore[attr-defined]
    link = FramedLink(wrap(stream) if wrap else stream)
    link.hello()
    return link


@pytest.mark.parametrize("board", [RATES], indirect=True)
def test_the_host_and_the_chip_switch_to_the_highest_common_rate(board: Board) -> None:
    link = _link(board)
    try:
        assert switch_rate(link, 2_000_000) == 1_000_000  # the highest offered at most N
        assert board.slots[0].baud == 1_000_000  # the board's wire runs at it, both ways
        assert link.stream.bytes_per_second == 100_000  # the host's timeouts follow it
        assert ChipClient(link).status()["lifecycle"]  # the session goes on at the new rate
        assert switch_rate(link, 3_000_000) == 3_000_000  # and on again, from there
        assert board.slots[0].baud == 3_000_000
        assert ChipClient(link).status()["lifecycle"]
    finally:
        link.close()


@pytest.mark.parametrize("board", [RATES], indirect=True)
def test_no_rate_above_the_first_within_the_bound_means_no_switch(board: Board) -> None:
    link = _link(board)
    try:
        assert switch_rate(link, 500_000) == FIRST
        assert board.slots[0].baud == FIRST
        assert ChipClient(link).status()["lifecycle"]
    finally:
        link.close()


class DeafAtAnotherRate:
    """The host's end of a line on which nothing crosses once the host runs at another rate
    than its first (a cable or a level shifter that does not carry the new rate)."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.first = inner.bytes_per_second
        self.bytes_per_second = inner.bytes_per_second

    def write(self, data: bytes) -> None:
        if self.bytes_per_second == self.first:
            self.inner.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data = self.inner.read(max_bytes, timeout)
        return data if self.bytes_per_second == self.first else b""

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("board", [RATES], indirect=True)
def test_a_chip_not_heard_at_the_new_rate_both_go_back_to_the_first(board: Board) -> None:
    link = _link(board, DeafAtAnotherRate)
    try:
        assert switch_rate(link, 3_000_000) == FIRST  # bounded: the chip's hold and a margin
        assert link.stream.bytes_per_second == FIRST / 10
        assert board.slots[0].baud == FIRST  # the chip went back on its own
        assert ChipClient(link).status()["lifecycle"]  # and the session still works
    finally:
        link.close()


@pytest.mark.parametrize("board", [()], indirect=True)
def test_a_chip_without_a_list_is_not_switched(board: Board) -> None:
    link = _link(board)
    try:
        assert switch_rate(link, 3_000_000) == FIRST
        assert board.slots[0].baud == FIRST
        assert ChipClient(link).status()["lifecycle"]
    finally:
        link.close()


# -- against the endpoint, on a fake clock -----------------------------------------------------
def _rig(
    rates: tuple[int, ...] = RATES, to_host: Any = lambda d: d
) -> tuple[FramedLink, ChipEndpoint, FakeClock, list[int]]:
    clock = FakeClock()
    switched: list[int] = []
    endpoint = ChipEndpoint(
        lambda r: b"re:" + r, clock=clock, rates=rates, on_rate=switched.append, idle_timeout=60
    )
    stream = LoopStream(endpoint, clock, to_host=to_host)
    stream.bytes_per_second = FIRST / 10
    link = FramedLink(stream, clock=clock)
    link.hello()
    return link, endpoint, clock, switched


def _rewrite_rate_answers(payload: bytes, nth: int | None = None) -> Any:
    """A board on the wire that rewrites the chip's RATE-ANSWERs (or its ``nth``) to
    ``payload``."""
    seen = [0]

    def carry(data: bytes) -> bytes:
        out = []
        for raw in split_frames(data):
            (frame,) = FrameDecoder().feed(raw)
            kept = raw
            if frame.kind is FrameType.RATE_ANSWER:
                if nth is None or seen[0] == nth:
                    kept = encode_frame(FrameType.RATE_ANSWER, payload=payload)
                seen[0] += 1
            out.append(kept)
        return b"".join(out)

    return carry


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\xc2",  # not whole rates
        bytes.fromhex("000f4240") + bytes.fromhex("0001c200"),  # descending
        bytes.fromhex("0001c200") * 2,  # a rate twice
        bytes.fromhex("00000064"),  # 100 baud: below 300
        bytes.fromhex("05f5e100"),  # 100,000,000 baud: above 20,000,000
        bytes.fromhex("0001c200") + bytes(4 * 16),  # 17 rates
    ],
)
def test_a_rate_list_that_is_not_12_7_s_is_a_typed_error_in_bounded_time(garbage: bytes) -> None:
    link, _endpoint, clock, switched = _rig(to_host=_rewrite_rate_answers(garbage))
    start = clock.now
    with pytest.raises(TransportError) as e:
        switch_rate(link, 3_000_000)
    assert e.value.code == "malformed"
    assert clock.now - start <= link.base_timeout
    assert switched == []
    assert link.info is None  # the link is down: the next step says hello again


def test_a_board_that_fakes_the_switch_cannot_make_the_host_run_unconfirmed() -> None:
    """A board that answers a switch the chip never made: the chip stays at the first rate, and
    the host runs at the new one only once a hello answer of this link and this boot came back
    (on a real line, never at a rate the chip does not run): on the virtual wire both ends still
    hear each other, so the rate is no property of security; the session and its chip are."""
    faked = (3_000_000).to_bytes(4, "big")
    link, endpoint, _clock, switched = _rig(to_host=_rewrite_rate_answers(faked, nth=1))
    # the chip was asked for 1,000,000 (the highest at most N), the board said 3,000,000
    with pytest.raises(TransportError) as e:
        switch_rate(link, 1_000_000)
    assert e.value.code == "malformed"  # an answer to another rate than asked is refused
    assert endpoint.pending_rate == 1_000_000  # the chip answered its own (owner not called)
    assert switched == []


def test_the_chip_goes_back_when_no_valid_frame_follows_its_switch() -> None:
    clock = FakeClock()
    switched: list[int] = []
    endpoint = ChipEndpoint(lambda r: r, clock=clock, rates=RATES, on_rate=switched.append)
    endpoint.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))
    answer = endpoint.feed(encode_frame(FrameType.RATE, payload=(3_000_000).to_bytes(4, "big")))
    (frame,) = FrameDecoder().feed(answer)
    assert (frame.kind, frame.payload) == (FrameType.RATE_ANSWER, (3_000_000).to_bytes(4, "big"))
    assert endpoint.pending_rate == 3_000_000
    endpoint.switched(FIRST)
    clock.now += RATE_HOLD - 0.01
    endpoint.poll()
    assert switched == []
    endpoint.feed(b"\xc0garbage\xc0")  # not a valid frame: does not hold the switch
    clock.now += 0.02
    endpoint.poll()
    assert switched == [FIRST]  # back at the rate the answer left at
    endpoint.switched(FIRST)
    endpoint.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))  # a valid frame: holds
    clock.now += RATE_HOLD + 1
    endpoint.poll()
    assert switched == [FIRST]


def test_the_chip_answers_rates_only_on_a_link_and_only_its_own() -> None:
    endpoint = ChipEndpoint(lambda r: r, rates=RATES)
    assert endpoint.feed(encode_frame(FrameType.RATE)) == b""  # no link yet
    endpoint.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))
    (listed,) = FrameDecoder().feed(endpoint.feed(encode_frame(FrameType.RATE)))
    assert listed.payload == bytes.fromhex("0001c200000f4240002dc6c0")
    (no,) = FrameDecoder().feed(
        endpoint.feed(encode_frame(FrameType.RATE, payload=(2_000_000).to_bytes(4, "big")))
    )
    assert (no.kind, no.payload) == (FrameType.RATE_ANSWER, b"")  # not offered: no switch
    assert endpoint.pending_rate is None
    assert endpoint.feed(encode_frame(FrameType.RATE, payload=b"\x00\x01")) == b""  # malformed
    without = ChipEndpoint(lambda r: r)
    without.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))
    (empty,) = FrameDecoder().feed(without.feed(encode_frame(FrameType.RATE)))
    assert (empty.kind, empty.payload) == (FrameType.RATE_ANSWER, b"")  # no list: no switch


def test_a_nak_to_the_question_means_no_switch() -> None:
    """A chip that does not know the RATE frame type drops it and NAKs (12.1, 12.3)."""

    def unknown_type(data: bytes) -> bytes:
        out = []
        for raw in split_frames(data):
            (frame,) = FrameDecoder().feed(raw)
            nak = frame.kind is FrameType.RATE_ANSWER
            out.append(encode_frame(FrameType.NAK, 0, 0) if nak else raw)
        return b"".join(out)

    link, _endpoint, _clock, switched = _rig(to_host=unknown_type)
    assert switch_rate(link, 3_000_000) == FIRST
    assert switched == []
    assert link.exchange(b"ping") == b"re:ping"


def test_the_chip_goes_back_to_its_first_rate_after_its_idle_timeout() -> None:
    """A switch that held, then a host that went away: the next host, at the first rate, finds
    the chip again once nothing valid came for the idle timeout (12.5's 10 s)."""
    clock = FakeClock()
    switched: list[int] = []
    endpoint = ChipEndpoint(
        lambda r: r, clock=clock, rates=RATES, on_rate=switched.append, idle_timeout=10.0
    )
    endpoint.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))
    endpoint.feed(encode_frame(FrameType.RATE, payload=(1_000_000).to_bytes(4, "big")))
    endpoint.switched(FIRST)
    endpoint.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))  # confirmed
    endpoint.feed(encode_frame(FrameType.RATE, payload=(3_000_000).to_bytes(4, "big")))
    endpoint.switched(1_000_000)
    endpoint.feed(encode_frame(FrameType.HELLO, payload=b"\x01abcd"))  # confirmed again
    clock.now += 9.9
    endpoint.poll()
    assert switched == []
    clock.now += 0.2
    endpoint.poll()
    assert switched == [FIRST]  # the power-on rate, not the one before the last switch
    clock.now += 100
    endpoint.poll()
    assert switched == [FIRST]


@pytest.mark.parametrize("board", [RATES], indirect=True)
def test_a_new_chip_in_the_socket_is_met_at_the_first_rate_and_switched_again(
    board: Board, cm_farm: Path, world: Any
) -> None:
    """The station says hello again to each next chip of a socket: that chip powered on at the
    first rate, so the hello goes there, and the station's opener switches it again."""
    opener = rate_opener(3_000_000, lambda _address: _link(board))
    link = opener(board.address)  # type: ignore[attr-defined]
    try:
        assert board.slots[0].baud == 3_000_000
        with BoardClient(board.handler_address) as h:  # type: ignore[attr-defined]
            h.insert(0, world.cm_uids(cm_farm)[1], replace=True)  # the next chip
        assert board.slots[0].baud == FIRST  # powered on at the first rate
        link.hello()
        assert board.slots[0].baud == 3_000_000
        assert link.stream.bytes_per_second == 300_000
        assert ChipClient(link).status()["lifecycle"]
    finally:
        link.close()


@pytest.mark.parametrize("board", [RATES, ()], indirect=True)
def test_the_conformance_case_of_rates_passes_with_a_list_and_without(board: Board) -> None:
    from trustprov.conformance.cases import CASES  # noqa: PLC0415 - the suite, for one case
    from trustprov.conformance.suite import Context, run_cases  # noqa: PLC0415

    ctx = Context(board.address)  # type: ignore[attr-defined]
    (result,) = run_cases(ctx, CASES, only={"link.rates"})
    assert result.passed, result.evidence
    assert ("rates [115200" in result.evidence) == bool(board.slots[0]._rate.bauds)
