"""The bounds of docs/protocol.md 12.3 and 12.4 on what one message may cost, each against a peer
that floods: the host against a chip that answers with frames its requests do not call for, the
chip against a host that sends fragments no genuine host sends."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from wire import FakeClock, LoopStream, split_frames

from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import TransportError
from trustprov.formats.frame import (
    Frame,
    FrameDecoder,
    FrameType,
    LinkErrorReason,
    LinkInfo,
    encode_frame,
    encode_hello,
    fragment_bound,
)
from trustprov.formats.limits import LIMITS
from trustprov.link.budget import FLOOD_SLACK
from trustprov.link.framed import FramedLink


def _frames(data: bytes) -> list[Frame]:
    return FrameDecoder().feed(data)


class Rig:
    """A host link to a chip endpoint whose answers pass through ``to_host`` (the flood)."""

    def __init__(
        self,
        to_host: Callable[[bytes], bytes],
        *,
        max_frame: int = LIMITS.link_frame,
        window: int = 16,
    ) -> None:
        self.clock = FakeClock()
        self.calls: list[bytes] = []
        self.endpoint = ChipEndpoint(
            self._handle, max_frame=max_frame, clock=self.clock, idle_timeout=600
        )
        self.stream = LoopStream(self.endpoint, self.clock, to_host=to_host)
        self.link = FramedLink(self.stream, timeout=0.5, window=window, clock=self.clock)
        self.link.hello()

    def _handle(self, request: bytes) -> bytes:
        self.calls.append(request)
        return b"re:" + request


def replace_responses(flood: Callable[[Frame], bytes]) -> Callable[[bytes], bytes]:
    """A chip that answers every request with ``flood(its response frame)`` instead."""

    def carry(data: bytes) -> bytes:
        out = []
        for raw in split_frames(data):
            frames = _frames(raw)
            out.append(flood(frames[0]) if frames[0].kind is FrameType.RESPONSE else raw)
        return b"".join(out)

    return carry


def _refused(rig: Rig, request: bytes = b"ping") -> tuple[TransportError, float]:
    start = time.perf_counter()
    with pytest.raises(TransportError) as e:
        rig.link.exchange(request)
    return e.value, time.perf_counter() - start


# -- the host ------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [500, 20_000])
def test_a_flood_of_empty_fragments_is_refused_at_once(count: int) -> None:
    """Before: each fragment re-added the lengths of all before it; 20,000 empty fragments
    took seconds of the station's one thread, and came again after every resend. Now the first
    empty one that is not the last ends the exchange, or, when more arrive in one read than
    the request earned, the flood budget ends it before any is looked at."""
    empty = replace_responses(
        lambda f: b"".join(
            encode_frame(FrameType.RESPONSE, f.seq, k, b"", more=True) for k in range(count)
        )
    )
    error, seconds = _refused(Rig(empty))
    if count == 500:
        assert error.code == "malformed"
        assert "empty" in error.message
    else:
        assert error.code == "link-flood"
    assert seconds < 1.0


def test_a_response_of_more_fragments_than_the_bound_is_refused() -> None:
    bound = fragment_bound(LIMITS.link_message, LIMITS.link_frame)
    assert bound == 66  # 4 MiB + 64 KiB over 65,535
    tiny = replace_responses(
        lambda f: b"".join(
            encode_frame(FrameType.RESPONSE, f.seq, k, b"x", more=True) for k in range(bound + 50)
        )
    )
    error, _ = _refused(Rig(tiny))
    assert error.code == "malformed"
    assert f"more than {bound} fragments" in error.message


def test_a_response_within_the_bound_is_taken() -> None:
    """A chip that cuts its response into smaller fragments than its max frame, within the
    bound, is answered as before."""
    small = replace_responses(
        lambda f: b"".join(
            encode_frame(
                FrameType.RESPONSE, f.seq, k, f.payload[k : k + 1], more=k + 1 < len(f.payload)
            )
            for k in range(len(f.payload))
        )
    )
    assert Rig(small).link.exchange(b"ping") == b"re:ping"


def test_frames_the_requests_do_not_call_for_are_a_flood() -> None:
    """ACKs of a message long answered are ignored, one by one; past the budget the requests
    earned, the exchange ends, even though the genuine response follows them."""
    stale = replace_responses(
        lambda f: (
            encode_frame(FrameType.ACK, (f.seq - 100) % 65536, 0) * 10_000
            + encode_frame(FrameType.RESPONSE, f.seq, 0, f.payload)
        )
    )
    rig = Rig(stale)
    window = rig.endpoint.window
    error, seconds = _refused(rig)
    assert error.code == "link-flood"
    assert seconds < 1.0
    credit = FLOOD_SLACK + window * 66 + 2 * (1 + 66)
    assert f"at most {credit}" in error.message


def test_the_flood_budget_leaves_a_genuine_exchange_alone() -> None:
    """Many requests through the window, some responses in several fragments: no flood."""
    rig = Rig(lambda d: d, max_frame=256)
    requests = [bytes([i]) * (i * 37 % 900) for i in range(200)]
    assert rig.link.exchange_many(requests) == [b"re:" + r for r in requests]


def test_a_chip_that_paces_its_acks_cannot_stretch_a_message() -> None:
    """Every ACK is progress and restarts the resend timer; a chip that sends each just before
    the timer runs out would hold the socket for (fragments x timeout). The message's time
    budget, (retries + 1) x timeout from when it is the oldest, ends it."""
    clock: list[FakeClock] = []

    def slow(data: bytes) -> bytes:
        if any(f.kind is FrameType.ACK for f in _frames(data)):
            clock[0].now += 0.45  # under the 0.5 s timeout: each ACK arrives "in time"
        return data

    rig = Rig(slow, max_frame=64, window=1)
    clock.append(rig.clock)
    start = rig.clock.now
    error, _ = _refused(rig, bytes(64 * 40))  # 41 fragments: 40 ACKs at 0.45 s
    assert error.code == "link-timeout"
    assert "time budget" in error.message
    assert rig.clock.now - start <= 9 * 0.5 + 0.5
    assert rig.calls == []  # never reached the chip's handler


def test_a_request_above_the_chip_s_fragment_bound_is_refused_before_sending() -> None:
    """A host cutting smaller fragments than the chip's max frame sends smaller messages: the
    chip would refuse more than its bound, so the host does not send them."""
    clock = FakeClock()
    endpoint = ChipEndpoint(lambda r: r, max_message=10_000, max_frame=1000, clock=clock)
    stream = LoopStream(endpoint, clock)
    link = FramedLink(stream, max_frame=100, timeout=0.5, clock=clock)
    link.hello()
    assert link.exchange(bytes(1000)) == bytes(1000)  # 10 fragments: the chip's bound
    sent = len(stream.written)
    with pytest.raises(TransportError) as e:
        link.exchange(bytes(1001))
    assert e.value.code == "too-large"
    assert len(stream.written) == sent  # nothing sent
    assert link.exchange(b"still up") == b"still up"


# -- the chip ------------------------------------------------------------------------------
def _linked(endpoint: ChipEndpoint) -> int:
    answer = _frames(endpoint.feed(encode_frame(FrameType.HELLO, payload=encode_hello(b"abcd"))))
    return LinkInfo.from_bytes(answer[0].payload).first_seq


def test_the_chip_refuses_an_empty_fragment_that_is_not_the_last() -> None:
    endpoint = ChipEndpoint(lambda _: b"ran", clock=FakeClock())
    seq = _linked(endpoint)
    (ack,) = _frames(endpoint.feed(encode_frame(FrameType.REQUEST, seq, 0, b"ab", more=True)))
    assert ack.kind is FrameType.ACK
    (error,) = _frames(endpoint.feed(encode_frame(FrameType.REQUEST, seq, 1, b"", more=True)))
    assert (error.kind, error.payload) == (FrameType.ERROR, bytes([LinkErrorReason.EMPTY_FRAGMENT]))
    assert endpoint.executed == 0
    # the partial message is gone: the same seq starts again at fragment 0
    (answer,) = _frames(endpoint.feed(encode_frame(FrameType.REQUEST, seq, 0, b"x")))
    assert (answer.kind, answer.payload, endpoint.executed) == (FrameType.RESPONSE, b"ran", 1)


def test_the_chip_refuses_more_fragments_than_its_bound() -> None:
    """Max message 1,000 over max frame 64: at most 16 fragments, whatever their size."""
    endpoint = ChipEndpoint(lambda _: b"ran", max_message=1000, max_frame=64, clock=FakeClock())
    assert endpoint.max_fragments == 16
    seq = _linked(endpoint)
    answers = []
    for k in range(16):
        answers += _frames(endpoint.feed(encode_frame(FrameType.REQUEST, seq, k, b"x", more=True)))
    assert [f.kind for f in answers] == [FrameType.ACK] * 15 + [FrameType.ERROR]
    assert answers[-1].payload == bytes([LinkErrorReason.TOO_MANY_FRAGMENTS])
    assert endpoint.executed == 0
    # 16 fragments, the last without MORE, are a message
    out = [
        endpoint.feed(encode_frame(FrameType.REQUEST, seq, k, b"x", more=k < 15)) for k in range(16)
    ]
    assert _frames(out[-1])[0].kind is FrameType.RESPONSE
    assert endpoint.executed == 1
