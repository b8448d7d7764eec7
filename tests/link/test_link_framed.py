"""The host's framed link against the chip endpoint over a synchronous wire with a fake clock:
fragmentation, the window, every loss the link must survive, and the ones it must report."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import FakeClock, Faults, FaultyStream, LoopStream, split_frames

from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import TransportError
from trustprov.formats.frame import FrameDecoder, FrameType
from trustprov.link.framed import FramedLink, PayloadCache


class Rig:
    def __init__(
        self,
        *,
        max_frame: int = 64,
        window: int = 4,
        to_chip: Callable[[bytes], bytes] = lambda d: d,
        to_host: Callable[[bytes], bytes] = lambda d: d,
        faults: Faults | None = None,
        max_retries: int = 8,
    ) -> None:
        self.clock = FakeClock()
        self.calls: list[bytes] = []
        self.endpoint = ChipEndpoint(
            self._handle,
            max_message=100_000,
            max_frame=max_frame,
            idle_timeout=60,
            on_idle=lambda: None,
            clock=self.clock,
            window=window,
        )
        self.stream = LoopStream(self.endpoint, self.clock, to_chip=to_chip, to_host=to_host)
        stream = FaultyStream(self.stream, faults) if faults else self.stream
        self.link = FramedLink(stream, timeout=0.5, max_retries=max_retries, clock=self.clock)

    def _handle(self, request: bytes) -> bytes:
        self.calls.append(request)
        return b"re:" + request


def messages(n: int, size: int = 100) -> list[bytes]:
    return [bytes([i % 256]) * size + i.to_bytes(4, "big") for i in range(n)]


def drop_nth(n: int) -> Callable[[bytes], bytes]:
    """A wire that loses the nth frame (counting from 0) and carries every other."""
    seen = [0]

    def carry(data: bytes) -> bytes:
        out = []
        for frame in split_frames(data):
            if seen[0] != n:
                out.append(frame)
            seen[0] += 1
        return b"".join(out)

    return carry


def test_hello_then_one_exchange() -> None:
    rig = Rig()
    info = rig.link.hello()
    assert (info.max_frame, info.window) == (64, 4)
    assert rig.link.exchange(b"ping") == b"re:ping"
    assert rig.calls == [b"ping"]


def test_no_exchange_before_hello() -> None:
    rig = Rig()
    with pytest.raises(TransportError) as e:
        rig.link.exchange(b"ping")
    assert e.value.code == "link-down"


def test_the_host_cuts_requests_to_the_chips_max_frame() -> None:
    rig = Rig(max_frame=64)
    rig.link.hello()
    big = bytes(range(256)) * 20
    assert rig.link.exchange(big) == b"re:" + big
    decoder = FrameDecoder()
    sent = [f for chunk in rig.stream.written for f in decoder.feed(chunk)]
    requests = [f for f in sent if f.kind is FrameType.REQUEST]
    assert len(requests) == -(-len(big) // 64)
    assert max(len(f.payload) for f in requests) == 64
    assert rig.calls == [big]


def test_a_request_above_the_chips_max_message_is_refused_before_sending() -> None:
    rig = Rig()
    rig.link.hello()
    with pytest.raises(TransportError) as e:
        rig.link.exchange(bytes(100_001))
    assert e.value.code == "too-large"
    assert rig.calls == []
    assert rig.link.exchange(b"small") == b"re:small"  # nothing was sent: the link is up


def test_many_requests_are_pipelined_in_order_exactly_once() -> None:
    rig = Rig(window=8)
    rig.link.hello()
    reqs = messages(40)
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.calls == reqs
    writes = len(rig.stream.written) - 1  # the hello
    # windowed: far fewer writes (round trips) than requests; stop-and-wait takes one each
    assert writes <= 40 // 8 * 3
    serial = Rig(window=1)
    serial.link.hello()
    serial.link.exchange_many(reqs)
    assert len(serial.stream.written) - 1 >= 40


def test_frames_are_counted_one_ack_per_fragment_with_more_and_one_response_per_request() -> None:
    answered: list[bytes] = []

    def seen(data: bytes) -> bytes:
        answered.append(data)
        return data

    rig = Rig(max_frame=64, window=8, to_host=seen)
    rig.link.hello()
    stats = rig.link.stats
    assert (stats.frames_sent, stats.frames_received) == (1, 1)  # the hello and its answer
    three = bytes(range(150))  # three fragments each way: two ACKs, a response of three
    reqs = [three, b"a", b"b"]
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert (stats.frames_sent, stats.frames_received) == (1 + 5, 1 + 2 + 5)
    decoder = FrameDecoder()
    answers = [f.kind for chunk in answered for f in decoder.feed(chunk)]
    assert answers.count(FrameType.ACK) == 2
    # no ACK of a last fragment: the response acknowledges it
    assert answers.count(FrameType.RESPONSE) == 5
    assert len(answers) == stats.frames_received


@pytest.mark.parametrize("lost", [1, 2, 5, 9, 14])
def test_a_lost_request_frame_is_resent_and_each_request_runs_once(lost: int) -> None:
    rig = Rig(to_chip=drop_nth(lost))
    rig.link.hello()
    reqs = messages(6)
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.calls == reqs


# frame 0 to the host is the hello answer, then a RESPONSE per (one-fragment) request
@pytest.mark.parametrize("lost", [1, 2, 4, 5])
def test_a_lost_response_is_answered_again_from_the_cache(lost: int) -> None:
    rig = Rig(to_host=drop_nth(lost))
    rig.link.hello()
    reqs = messages(5, size=10)
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.calls == reqs  # answered again, never run again
    assert rig.link.stats.resent >= 1


def test_a_corrupt_request_frame_is_naked_and_resent_at_once() -> None:
    hit = [False]

    def corrupt_first_request(data: bytes) -> bytes:
        if hit[0] or b"\xc0\x03" not in data:
            return data
        hit[0] = True
        out = bytearray(data)
        out[12] ^= 0x10
        return bytes(out)

    rig = Rig(to_chip=corrupt_first_request)
    rig.link.hello()
    assert rig.link.exchange(b"a" * 40) == b"re:" + b"a" * 40
    assert rig.link.stats.naks == 1
    assert rig.link.stats.timeouts == 0  # the NAK, not a timeout, brought the resend
    assert rig.calls == [b"a" * 40]


def test_duplicated_frames_run_nothing_twice() -> None:
    rig = Rig(to_chip=lambda d: d + d, to_host=lambda d: d + d)
    rig.link.hello()
    reqs = messages(10, size=150)
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.calls == reqs


def test_a_dead_chip_is_a_link_timeout_after_the_retry_budget() -> None:
    rig = Rig(max_retries=3)
    rig.link.hello()
    rig.stream.to_chip = lambda _: b""
    start = rig.clock.now
    with pytest.raises(TransportError) as e:
        rig.link.exchange(b"ping")
    assert e.value.code == "link-timeout"
    assert rig.link.stats.timeouts == 4
    assert rig.clock.now - start == pytest.approx(4 * 0.5)
    with pytest.raises(TransportError) as e:  # no request until a new hello
        rig.link.exchange(b"ping")
    assert e.value.code == "link-down"


def test_no_hello_answer_is_a_link_timeout() -> None:
    rig = Rig(max_retries=2, to_chip=lambda _: b"")
    with pytest.raises(TransportError) as e:
        rig.link.hello()
    assert e.value.code == "link-timeout"


def test_a_chip_reset_mid_session_is_reported_not_replayed() -> None:
    rig = Rig()
    rig.link.hello()
    rig.link.exchange_many(messages(3))

    def cut_power_then_carry(data: bytes) -> bytes:
        rig.endpoint.reset()
        rig.stream.to_chip = lambda d: d
        return data

    rig.stream.to_chip = cut_power_then_carry
    with pytest.raises(TransportError) as e:
        rig.link.exchange_many(messages(3))
    assert e.value.code == "chip-reset"
    assert len(rig.calls) == 3  # nothing ran on the fresh chip
    # a new hello starts over, on the fresh chip, knowingly
    rig.link.hello()
    assert rig.link.exchange(b"again") == b"re:again"


def test_a_hello_answer_with_another_boot_id_is_a_reset() -> None:
    rig = Rig()
    rig.link.hello()
    first_link = rig.link.info
    assert first_link is not None
    stale = rig.stream.written[0]  # the hello of this link, delivered again to a fresh chip

    def replay_hello_to_a_fresh_chip(data: bytes) -> bytes:
        rig.endpoint.reset()
        while rig.endpoint.boot_id[:2] == first_link.boot_id[:2]:  # 1 in 65536: the same seq
            rig.endpoint.reset()
        rig.stream.to_chip = lambda d: d
        return stale + data

    rig.stream.to_chip = replay_hello_to_a_fresh_chip
    with pytest.raises(TransportError) as e:
        rig.link.exchange(b"ping")
    assert e.value.code == "chip-reset"
    assert rig.calls == []


@pytest.mark.parametrize("seed", range(12))
def test_random_faults_end_with_every_request_run_exactly_once(seed: int) -> None:
    faults = Faults(
        drop=0.05,
        corrupt=0.05,
        duplicate=0.05,
        delay=0.05,
        read_corrupt=0.05,
        read_drop=0.05,
        seed=seed,
    )
    rig = Rig(faults=faults, max_retries=20)
    rig.link.hello()
    reqs = messages(30, size=90)
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.calls == reqs
    assert sum(faults.counts.values()) > 0


def test_sequence_numbers_wrap_around() -> None:
    rig = Rig(window=8)
    rig.link.hello()
    rig.link._seq = 65533  # as after 65533 requests; the chip agrees
    rig.endpoint._next_seq = 65533
    reqs = messages(10, size=5)
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.link._seq == (65533 + 10) % 65536
    assert rig.calls == reqs


def test_an_exchange_longer_than_the_sequence_space() -> None:
    rig = Rig(window=8, max_frame=1024)
    rig.link.hello()
    reqs = [i.to_bytes(3, "big") for i in range(65_600)]
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert len(rig.calls) == 65_600


def test_the_payload_cache_encodes_a_large_request_once_and_stays_bounded() -> None:
    cache = PayloadCache(max_bytes=10_000)
    big = bytes(range(256)) * 16  # 4096 bytes
    first = cache.fragments(big, 1000)
    assert cache.fragments(big, 1000) is first
    assert [p.length for p in first] == [1000, 1000, 1000, 1000, 96]
    assert cache.fragments(big, 512) is not first  # another fragment size, another entry
    cache.fragments(bytes(4096), 1000)  # 3 x 4096 > 10_000: the oldest goes
    assert cache.fragments(big, 1000) is not first
    assert cache._size <= 10_000
    small = b"x" * 100
    assert cache.fragments(small, 64) is not cache.fragments(small, 64)  # not worth keeping


def test_cached_fragments_make_the_same_frames() -> None:
    rig = Rig(max_frame=256)
    rig.link.hello()
    big = bytes(range(256)) * 10
    first = rig.link.exchange(big)
    second = rig.link.exchange(big)
    assert first == second == b"re:" + big
    assert rig.calls == [big, big]


def test_a_damaged_response_is_asked_for_again_once_the_line_is_quiet() -> None:
    hit = [False]

    def damage_first_response(data: bytes) -> bytes:
        if hit[0] or b"\xc0\x04" not in data:
            return data
        hit[0] = True
        out = bytearray(data)
        out[-3] ^= 0x01
        return bytes(out)

    rig = Rig(to_host=damage_first_response)
    rig.link.hello()
    start = rig.clock.now
    assert rig.link.exchange(b"abc") == b"re:abc"
    assert hit[0]
    assert rig.calls == [b"abc"]
    assert rig.clock.now - start < 0.5 / 4  # well before the 0.5 s timeout


@given(
    max_frame=st.integers(64, 400),
    chip_window=st.integers(1, 6),
    host_window=st.integers(1, 20),
    sizes=st.lists(st.integers(0, 1500), min_size=1, max_size=12),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_any_limits_and_sizes_through_faults_run_each_request_once(
    max_frame: int, chip_window: int, host_window: int, sizes: list[int], seed: int
) -> None:
    faults = Faults(drop=0.05, corrupt=0.05, duplicate=0.05, delay=0.05, seed=seed)
    rig = Rig(max_frame=max_frame, window=chip_window, faults=faults, max_retries=30)
    rig.link._window = host_window
    rig.link.hello()
    reqs = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    assert rig.link.exchange_many(reqs) == [b"re:" + r for r in reqs]
    assert rig.calls == reqs
