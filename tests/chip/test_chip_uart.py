"""The chip's side of the link layer, frame by frame (docs/protocol.md, section 12)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustprov.chip.uart import ChipEndpoint
from trustprov.formats.frame import (
    Frame,
    FrameDecoder,
    FrameType,
    LinkInfo,
    encode_frame,
    encode_hello,
)

LINK_ID = b"L1nk"


class Chip:
    """An endpoint with a counting echo handler and a fake clock."""

    def __init__(self, **kw: object) -> None:
        self.now = 0.0
        self.calls: list[bytes] = []
        self.idle = 0
        options: dict[str, object] = {
            "max_message": 1000,
            "max_frame": 64,
            "idle_timeout": 5.0,
            "on_idle": self._idle,
            "clock": lambda: self.now,
            "window": 4,
        }
        options.update(kw)
        self.endpoint = ChipEndpoint(self._handle, **options)  # type: ignore[arg-type]
        self.decoder = FrameDecoder()

    def _handle(self, request: bytes) -> bytes:
        self.calls.append(request)
        return b"re:" + request

    def _idle(self) -> None:
        self.idle += 1

    def send(self, *frames: bytes) -> list[Frame]:
        return self.decoder.feed(self.endpoint.feed(b"".join(frames)))

    def hello(self, link_id: bytes = LINK_ID) -> LinkInfo:
        (answer,) = self.send(encode_frame(FrameType.HELLO, payload=encode_hello(link_id)))
        assert answer.kind is FrameType.HELLO_ANSWER
        info = LinkInfo.from_bytes(answer.payload)
        self.base = info.first_seq
        return info

    # sequence numbers below are relative to the link's first one
    base = 0

    def req(self, seq: int, frag: int = 0, payload: bytes = b"x", *, more: bool = False) -> bytes:
        return encode_frame(FrameType.REQUEST, (self.base + seq) % 65536, frag, payload, more=more)

    def kinds(self, frames: list[Frame]) -> list[tuple[str, int, int]]:
        return [(f.kind.name, (f.seq - self.base) % 65536, f.frag) for f in frames]


def test_hello_announces_the_chips_limits() -> None:
    chip = Chip()
    info = chip.hello()
    assert (info.version, info.window, info.max_frame, info.max_message) == (1, 4, 64, 1000)
    assert info.link_id == LINK_ID
    assert len(info.boot_id) == 4


def test_no_request_runs_before_a_hello() -> None:
    chip = Chip()
    assert chip.kinds(chip.send(chip.req(0))) == [("RESET", 0, 0)]
    assert chip.calls == []


def test_a_request_is_run_and_its_response_acknowledges_it() -> None:
    chip = Chip()
    chip.hello()
    out = chip.send(chip.req(0, payload=b"abc"))
    assert chip.kinds(out) == [("RESPONSE", 0, 0)]
    assert out[0].payload == b"re:abc"
    assert chip.calls == [b"abc"]


def test_a_corrupt_frame_is_naked_never_acked() -> None:
    chip = Chip()
    chip.hello()
    bad = bytearray(chip.req(0, payload=b"abcdef"))
    bad[9] ^= 0x40
    assert chip.kinds(chip.send(bytes(bad))) == [("NAK", 0, 0)]
    assert chip.calls == []
    assert chip.endpoint.bad_frames == 1
    # the resent frame is taken
    assert chip.kinds(chip.send(chip.req(0, payload=b"abcdef"))) == [("RESPONSE", 0, 0)]


def test_a_duplicate_request_is_answered_from_the_cache_not_run_again() -> None:
    chip = Chip()
    chip.hello()
    first = chip.send(chip.req(0, payload=b"once"))
    again = chip.send(chip.req(0, payload=b"once"))
    assert chip.kinds(again) == [("RESPONSE", 0, 0)]
    assert again[0].payload == first[0].payload
    assert chip.calls == [b"once"]


def test_only_the_last_window_of_responses_is_kept() -> None:
    chip = Chip()
    chip.hello()
    for seq in range(6):
        chip.send(chip.req(seq, payload=bytes([seq])))
    assert chip.kinds(chip.send(chip.req(2))) == [("RESPONSE", 2, 0)]
    # seq 1 is out of the window of 4: 6 - 1 = 5 messages ago; it is a later message now
    assert chip.kinds(chip.send(chip.req(1))) == [("NAK", 6, 0)]
    assert len(chip.calls) == 6


def test_fragments_are_reassembled_and_responses_fragmented() -> None:
    chip = Chip()
    chip.hello()
    data = bytes(range(200))
    parts = [data[i : i + 64] for i in range(0, 200, 64)]
    frames = [chip.req(0, i, p, more=i < len(parts) - 1) for i, p in enumerate(parts)]
    out = chip.send(*frames)
    assert chip.kinds(out)[: len(parts) - 1] == [("ACK", 0, i) for i in range(len(parts) - 1)]
    response = out[len(parts) - 1 :]
    assert [len(f.payload) for f in response] == [64, 64, 64, 11]
    assert [f.more for f in response] == [True, True, True, False]
    assert b"".join(f.payload for f in response) == b"re:" + data
    assert chip.calls == [data]


def test_a_gap_is_naked_once_and_nothing_runs_out_of_order() -> None:
    chip = Chip()
    chip.hello()
    out = chip.send(chip.req(0, 0, b"a", more=True), chip.req(0, 2, b"c"), chip.req(1), chip.req(2))
    assert chip.kinds(out) == [("ACK", 0, 0), ("NAK", 0, 1)]
    assert chip.calls == []
    out = chip.send(chip.req(0, 1, b"b", more=True), chip.req(0, 2, b"c"), chip.req(1))
    assert [k for k, _, _ in chip.kinds(out)] == ["ACK", "RESPONSE", "RESPONSE"]
    assert chip.calls == [b"abc", b"x"]


def test_an_oversized_message_is_refused_and_dropped() -> None:
    chip = Chip(max_message=100)
    chip.hello()
    out = chip.send(chip.req(0, 0, bytes(64), more=True), chip.req(0, 1, bytes(64)))
    assert chip.kinds(out) == [("ACK", 0, 0), ("ERROR", 0, 1)]
    assert out[1].payload == b"\x01"
    assert chip.calls == []


def test_a_repeated_hello_changes_nothing_a_new_one_restarts_the_sequence() -> None:
    chip = Chip()
    first = chip.hello()
    chip.send(chip.req(0))
    assert chip.hello() == first
    assert chip.kinds(chip.send(chip.req(1))) == [("RESPONSE", 1, 0)]
    chip.hello(b"new!")
    assert chip.kinds(chip.send(chip.req(0))) == [("RESPONSE", 0, 0)]
    assert len(chip.calls) == 3


def test_reset_forgets_the_link_and_draws_a_new_boot_id() -> None:
    chip = Chip()
    before = chip.hello()
    chip.send(chip.req(0))
    chip.endpoint.reset()
    assert chip.kinds(chip.send(chip.req(0))) == [("RESET", 0, 0)]
    assert chip.kinds(chip.send(chip.req(1))) == [("RESET", 1, 0)]
    assert chip.hello().boot_id != before.boot_id
    assert len(chip.calls) == 1


def test_idle_timeout_fires_once_per_session() -> None:
    chip = Chip()
    chip.hello()
    chip.now = 100.0
    chip.endpoint.poll()
    assert chip.idle == 0  # no request ran: no session to end
    chip.send(chip.req(0))
    chip.now = 104.9
    chip.endpoint.poll()
    assert chip.idle == 0
    chip.now = 105.0
    chip.endpoint.poll()
    chip.now = 200.0
    chip.endpoint.poll()
    assert chip.idle == 1
    chip.send(chip.req(1))  # the next request re-arms it
    chip.now = 206.0
    chip.endpoint.poll()
    assert chip.idle == 2


def test_frames_meant_for_the_host_are_ignored() -> None:
    chip = Chip()
    chip.hello()
    out = chip.send(
        encode_frame(FrameType.ACK, 0, 0),
        encode_frame(FrameType.RESPONSE, 0, 0, b"x"),
        encode_frame(FrameType.RESET),
    )
    assert out == []
    assert chip.calls == []


@pytest.mark.parametrize("kw", [{"max_frame": 63}, {"window": 0}, {"max_message": 0}])
def test_bad_limits_are_refused(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"must|range"):
        Chip(**kw)


@given(st.lists(st.binary(max_size=120), max_size=12), st.booleans())
@settings(max_examples=200, deadline=None)
def test_any_bytes_on_the_wire_never_crash_the_endpoint(chunks: list[bytes], linked: bool) -> None:
    chip = Chip()
    if linked:
        chip.hello()
    for chunk in chunks:
        for frame in chip.send(chunk):
            assert frame.kind in (FrameType.NAK, FrameType.RESET)  # garbage runs nothing
    assert chip.calls == []
