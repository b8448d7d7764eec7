"""The host's side of the link layer (docs/protocol.md, section 12): a `Link` over a byte stream.

`FramedLink` cuts each request into fragments no larger than the chip announced in its hello,
keeps up to ``window`` fragments and the chip's window of messages in flight, and resends from
the first unacknowledged fragment after a NAK (at once) or a timeout (scaled to the frame size and
the stream's speed).

Invariants:
- Requests reach the chip in order; the chip executes each exactly once (it answers duplicates
  from its cache), so resending is always safe.
- A chip that lost its state (power cut) is reported as `TransportError` code "chip-reset",
  never talked to as if nothing happened: its RESET frame, or a hello answer with a new boot id,
  ends the exchange.
- A chip that stays silent is reported as "link-timeout" after ``max_retries`` timeouts in a
  row; a cut stream as "link-closed". After any error the link refuses to carry requests until
  `hello` is called again, since the chip's sequence state is then unknown.
- A chip cannot make one exchange cost the host more than its requests call for (protocol.md
  12.4): a response is reassembled in time linear in its bytes, of at most
  ``fragment_bound(link_message, max frame)`` fragments, no empty one but the last
  ("malformed"); the frames and bytes read from the chip stay within a budget earned by the
  frames sent to it ("link-flood"); and each message, once the oldest without its response,
  has it within a time budget ("link-timeout"), however the chip paces its frames.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

from trustprov.errors import FormatError, TransportError
from trustprov.formats.frame import (
    PROTOCOL_VERSION,
    RATE_IDLE,
    SEQ_MOD,
    Frame,
    FrameDecoder,
    FrameType,
    LinkErrorReason,
    LinkInfo,
    encode_frame,
    encode_hello,
    encoded_size_bound,
    fragment_bound,
    frame_parts,
)
from trustprov.formats.limits import LIMITS
from trustprov.link.budget import WireBudget
from trustprov.link.payloads import SHARED_CACHE, PayloadCache
from trustprov.link.stream import ByteStream

__all__ = ["SHARED_CACHE", "FramedLink", "LinkInfo", "LinkStats", "PayloadCache"]

READ_SIZE = 1 << 16
_REASONS: dict[int, str] = {
    LinkErrorReason.TOO_LARGE: "message too large",
    LinkErrorReason.TOO_MANY_FRAGMENTS: "too many fragments",
    LinkErrorReason.EMPTY_FRAGMENT: "an empty fragment that is not the last",
}


class LinkStats:
    """Counters for tests and benchmarks: what the wire cost beyond the first transmission."""

    def __init__(self) -> None:
        self.frames_sent = 0
        self.frames_received = 0  # valid frames from the chip (for frames per chip)
        self.resent = 0
        self.naks = 0
        self.timeouts = 0

    def __repr__(self) -> str:
        return (
            f"LinkStats(sent={self.frames_sent}, received={self.frames_received}, "
            f"resent={self.resent}, "
            f"naks={self.naks}, timeouts={self.timeouts})"
        )


class FramedLink:
    def __init__(
        self,
        stream: ByteStream,
        *,
        max_frame: int = LIMITS.link_frame,
        window: int = 16,
        timeout: float = 1.0,
        max_retries: int = 8,
        clock: Callable[[], float] = time.monotonic,
        payload_cache: PayloadCache = SHARED_CACHE,
    ) -> None:
        """``timeout``: how long to wait for the chip's first reaction (round trip plus the
        chip's processing time) before resending; the time the bytes in flight take at the
        stream's speed is added to it. ``window``: fragments in flight without an ACK."""
        if window < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("window >= 1, max_retries >= 0, timeout > 0")
        self._stream = stream
        self._max_frame = max_frame
        self._window = window
        self._base_timeout = timeout
        self._max_retries = max_retries
        self._clock = clock
        self._cache = payload_cache
        self._decoder = FrameDecoder()
        self._seq = 0
        self.info: LinkInfo | None = None
        self.stats = LinkStats()
        self._timeout = timeout
        self._quiet = timeout / 20
        self._fragment = max_frame
        self._first_rate: float | None = None  # the stream's rate before a switch (12.7)
        #: run after every successful hello (a station's switch of rate, 12.7)
        self.after_hello: Callable[[FramedLink], object] | None = None

    def __repr__(self) -> str:
        return f"FramedLink(linked={self.info is not None}, seq={self._seq})"

    def close(self) -> None:
        self.info = None
        self._stream.close()

    # -- hello ------------------------------------------------------------------------------
    def hello(self) -> LinkInfo:
        """Start a new link with the chip: learn its limits; the sequence restarts at 0. A new
        link starts at the first rate (a new chip powers on there, 12.7), then `after_hello`."""
        info = self._hello()
        if self.after_hello is not None:
            self.after_hello(self)
        return info

    def _hello(self) -> LinkInfo:
        self.info = None
        tries = self._max_retries + 1
        if self._first_rate is not None:  # after a switch: the chip may still be at the new
            self.set_line_rate(self._first_rate * 10)  # rate until its idle timeout has passed
            tries += math.ceil(RATE_IDLE / self._base_timeout)
            self._first_rate = None
        link_id = os.urandom(4)
        frame = encode_frame(FrameType.HELLO, payload=encode_hello(link_id))
        for _ in range(tries):
            self._send(frame)
            self.stats.frames_sent += 1
            deadline = self._clock() + self._base_timeout
            while (left := deadline - self._clock()) > 0:
                frames = self._decoder.feed(self._stream.read(READ_SIZE, left))
                self.stats.frames_received += len(frames)
                for f in frames:
                    if f.kind is not FrameType.HELLO_ANSWER:
                        continue  # left over from an earlier link
                    try:
                        info = LinkInfo.from_bytes(f.payload)
                    except FormatError as e:
                        raise TransportError(f"bad hello answer: {e.message}") from e
                    if info.link_id != link_id:
                        continue
                    if info.version != PROTOCOL_VERSION:
                        raise TransportError(
                            f"chip speaks link protocol {info.version}, not {PROTOCOL_VERSION}",
                            code="link-version",
                        )
                    return self._linked(info)
            self.stats.timeouts += 1
        raise TransportError("no hello answer from the chip", code="link-timeout")

    def _linked(self, info: LinkInfo) -> LinkInfo:
        self.info = info
        self._seq = info.first_seq
        self._fragment = min(self._max_frame, info.max_frame)
        self.rescale()
        return info

    # -- between exchanges: a switch of line rate (`trustprov.link.rate_switch`) -------------
    @property
    def stream(self) -> ByteStream:
        return self._stream

    @property
    def base_timeout(self) -> float:
        """T0: the chip's reaction time, before any frame's time on the line."""
        return self._base_timeout

    @property
    def max_retries(self) -> int:
        return self._max_retries

    def clock(self) -> float:
        return self._clock()

    def send_frame(self, frame: bytes) -> None:
        self._send(frame)
        self.stats.frames_sent += 1

    def read_frames(self, timeout: float) -> list[Frame]:
        """The valid frames that arrive within ``timeout`` (one read)."""
        frames = self._decoder.feed(self._stream.read(READ_SIZE, timeout))
        self.stats.frames_received += len(frames)
        return frames

    def set_line_rate(self, baud: float) -> None:
        """The host's end of the line at ``baud`` (12.7's switch or its fallback): a serial
        port's own rate, or a socket's declared one; the timeouts follow it."""
        if self._first_rate is None:
            self._first_rate = self._stream.bytes_per_second
        setter = getattr(self._stream, "set_baud", None)
        if callable(setter):
            setter(round(baud))
        else:
            setattr(self._stream, "bytes_per_second", baud / 10)  # noqa: B010 - a Protocol's
        self.rescale()

    def rescale(self) -> None:
        """Scale the timeouts to the stream's line rate (after it changed)."""
        info = self.info
        if info is None:
            return
        bps = self._stream.bytes_per_second
        # the timer restarts at every ACK: it waits for one more fragment and one response frame
        # at worst-case stuffing, so a slow line is not taken for a loss
        frame_time = encoded_size_bound(max(self._fragment, info.max_frame)) / bps if bps else 0.0
        self._timeout = self._base_timeout + 2 * frame_time
        self._quiet = self._base_timeout / 20 + 2 * frame_time

    # -- requests ---------------------------------------------------------------------------
    def exchange(self, request: bytes) -> bytes:
        return self.exchange_many([request])[0]

    def exchange_many(self, requests: Sequence[bytes]) -> list[bytes]:
        """Every request executed once, in order; every response, in order. Refusals are
        responses like any other: the caller decodes them (the chip has run every request)."""
        if self.info is None:
            raise TransportError("link not established: call hello()", code="link-down")
        if not requests:
            return []
        longest = max(map(len, requests))  # refused before anything is sent: the link stays up
        if longest > self.info.max_message:
            raise TransportError(
                f"a request of {longest} bytes is above the chip's limit of "
                f"{self.info.max_message}",
                code="too-large",
            )
        if -(-longest // self._fragment) > fragment_bound(
            self.info.max_message, self.info.max_frame
        ):
            raise TransportError("a request needs too many fragments", code="too-large")
        try:
            return _Exchange(self, self.info, requests).run()
        except TransportError:
            self.info = None  # the chip's sequence state is unknown now
            raise

    def _send(self, data: bytes) -> None:
        self._stream.write(data)


class _Exchange:
    """One pipelined run of requests: go-back-N over fragments, a window over messages.

    The frames are kept as a flat list of wire parts, three per fragment (`frame_parts`), so a
    window goes out as one join of the parts in flight: one copy of the payloads, not two."""

    def __init__(self, link: FramedLink, info: LinkInfo, requests: Sequence[bytes]) -> None:
        self.link = link
        self.info = info
        self.first_seq = first = link._seq
        parts: list[bytes] = []
        msg_of: list[int] = []
        msg_first: list[int] = []
        count = 0
        request_type = FrameType.REQUEST
        for i, pieces in enumerate(link._cache.fragments_of(requests, link._fragment)):
            seq = (first + i) % SEQ_MOD
            last = len(pieces) - 1
            msg_first.append(count)
            for k, p in enumerate(pieces):
                parts += frame_parts(request_type, seq, k, p, more=k < last)
            count += last + 1
            msg_of += [i] * (last + 1)
        msg_first.append(count)  # sentinel: one past the last message's frames
        self.parts = parts
        self.count = count
        self.msg_of = msg_of
        self.msg_first = msg_first
        self.n = len(requests)
        self.responses: list[bytes | None] = [None] * self.n
        self.partial: dict[int, list[bytes]] = {}
        self.partial_len: dict[int, int] = {}  # bytes in ``partial``: kept, never re-added
        self.base = 0  # first fragment not acknowledged
        self.next = 0  # next fragment to send
        self.answered = 0  # first message without its response
        self.retries = 0
        self.deadline = 0.0
        self.budget = WireBudget(
            info,
            retries=link._max_retries,
            timeout=link._timeout,
            fragment=link._fragment,
            bytes_per_second=link._stream.bytes_per_second,
        )
        self.timed = -1  # the message ``msg_deadline`` is for
        self.msg_deadline = 0.0  # when the oldest message without its response runs out
        self.gap_asked: set[int] = set()  # messages whose response was asked again for a gap

    def _frame(self, index: int) -> bytes:
        return b"".join(self.parts[3 * index : 3 * index + 3])

    def run(self) -> list[bytes]:
        link = self.link
        clock = link._clock
        read = link._stream.read
        quiet = link._quiet
        decoder = link._decoder
        stats = link.stats
        responses = self.responses
        first_seq = self.first_seq
        msg_first = self.msg_first
        n = self.n
        window = self.info.window
        response_type = FrameType.RESPONSE
        self.deadline = clock() + link._timeout
        damaged = False  # a frame from the chip arrived damaged since the last resend
        while self.answered < n:
            self._send_window()
            left = self._time_left(clock())
            if left <= 0:
                self._timed_out()
                damaged = False
                continue
            # after a damaged frame (perhaps a response), resend as soon as the line is quiet
            # rather than at the full timeout: a duplicate costs the chip nothing
            bad_before = decoder.bad_frames
            data = read(READ_SIZE, min(left, quiet) if damaged else left)
            if not data and damaged:
                self._timed_out()
                damaged = False
                continue
            frames = decoder.feed(data)
            stats.frames_received += len(frames)
            self.budget.spend(len(data), len(frames) + decoder.bad_frames - bad_before)
            progressed = False
            for frame in frames:
                # the common case inline: the whole response of the oldest message in flight
                if (
                    frame.kind is response_type
                    and not frame.frag
                    and not frame.more
                    and not self.partial
                    and self.answered < n
                    and not (frame.seq - first_seq - self.answered) % SEQ_MOD
                ):
                    msg = self.answered
                    responses[msg] = frame.payload
                    if self.base < msg_first[msg + 1]:
                        self.base = msg_first[msg + 1]
                        self.next = max(self.next, self.base)
                    msg += 1
                    while msg < n and responses[msg] is not None:
                        msg += 1
                    self.answered = msg
                    progressed = True
                elif self._on_frame(frame, window):
                    progressed = True
            if progressed:
                self.retries = 0
                self.deadline = clock() + link._timeout
            damaged = damaged or decoder.bad_frames != bad_before
        link._seq = (first_seq + n) % SEQ_MOD
        return [r for r in responses if r is not None]

    def _time_left(self, now: float) -> float:
        """Seconds to the next resend; but first, the oldest message without its response gets
        it within its time budget, or the exchange fails."""
        msg = self.answered
        if msg != self.timed:
            self.timed = msg
            frames = self.msg_first[msg + 1] - self.msg_first[msg]
            self.msg_deadline = now + self.budget.time_budget(frames)
        elif now > self.msg_deadline:
            raise TransportError(
                "the chip did not answer a request within its time budget", code="link-timeout"
            )
        return self.deadline - now

    def _send_window(self) -> None:
        limit = min(self.base + self.link._window, self.count)
        msg_limit = self.answered + self.info.window
        start = nxt = self.next
        msg_of = self.msg_of
        while nxt < limit and msg_of[nxt] < msg_limit:
            nxt += 1
        if nxt > start:
            self.next = nxt
            self.link._send(b"".join(self.parts[3 * start : 3 * nxt]))
            self.link.stats.frames_sent += nxt - start
            # the messages whose last fragment went out: from start's to nxt - 1's, the latter
            # only if nxt - 1 is its last
            last = msg_of[nxt - 1]
            self.budget.earn(nxt - start, last - msg_of[start] + (self.msg_first[last + 1] == nxt))

    def _timed_out(self) -> None:
        stats = self.link.stats
        stats.timeouts += 1
        self.retries += 1
        if self.retries > self.link._max_retries:
            raise TransportError(
                f"chip stopped answering ({self.retries - 1} resends)", code="link-timeout"
            )
        if self.base < self.next:  # go back to the first fragment not acknowledged
            stats.resent += self.next - self.base
            self.next = self.base
        last = self.msg_first[self.answered + 1] - 1
        if last < self.base:  # all of it arrived but its response did not: ask again
            stats.resent += 1
            stats.frames_sent += 1
            self.link._send(self._frame(last))
            self.budget.earn(1, 1)
        self.deadline = self.link._clock() + self.link._timeout

    def _on_frame(self, frame: Frame, window: int) -> bool:
        """Any frame but the common whole response; True if it acknowledged something."""
        kind = frame.kind
        if kind is FrameType.RESET:
            raise TransportError("the chip was reset (power cut?) mid-session", code="chip-reset")
        if kind is FrameType.HELLO_ANSWER:
            self._check_boot(frame)
            return False
        # only messages in flight matter (answered .. answered + window - 1): relative to the
        # oldest of them, so that an exchange of more than 65536 requests maps correctly too
        ahead = (frame.seq - self.first_seq - self.answered) % SEQ_MOD
        if ahead >= window or self.answered + ahead >= self.n:
            return False  # about an answered message or another exchange: nothing to do
        msg = self.answered + ahead
        if kind is FrameType.RESPONSE:
            return self._response(msg, frame)
        if kind is FrameType.ERROR:
            reason = frame.payload[0] if frame.payload else 0
            text = _REASONS.get(reason, "unknown reason")
            raise TransportError(f"the chip refused a request frame: {text}", code="link-refused")
        index = self.msg_first[msg] + frame.frag  # the request fragment an ACK or NAK is about
        if index >= self.msg_first[msg + 1]:
            return False
        if kind is FrameType.ACK:
            if self.base <= index < self.next:
                self.base = index + 1
                return True
        elif kind is FrameType.NAK:
            self.link.stats.naks += 1
            if self.base <= index < self.next:  # the chip has all before ``index``
                self.link.stats.resent += self.next - index
                self.base = index
                self.next = index
        return False

    def _check_boot(self, frame: Frame) -> None:
        try:
            info = LinkInfo.from_bytes(frame.payload)
        except FormatError:
            return
        if info.boot_id != self.info.boot_id:
            raise TransportError("the chip was reset (power cut?) mid-session", code="chip-reset")

    def _response(self, msg: int, frame: Frame) -> bool:
        if self.responses[msg] is not None:
            return False  # a duplicate of an answer we have
        self.budget.check_response_fragment(frame.frag, frame.more, not frame.payload)
        pieces = self.partial.setdefault(msg, [])
        if frame.frag != len(pieces):
            if frame.frag > len(pieces):  # a fragment was lost: ask for all of it again
                pieces.clear()
                self.partial_len[msg] = 0
                # once until its fragment 0 comes again: the rest of the broken copy, or frames
                # a chip makes up, must not make the host send a frame each; earns no credit,
                # the response paid for twice covers its one copy more
                if msg not in self.gap_asked:
                    self.gap_asked.add(msg)
                    self.link.stats.resent += 1
                    self.link.stats.frames_sent += 1
                    self.link._send(self._frame(self.msg_first[msg + 1] - 1))
            return False
        if frame.frag == 0:
            self.gap_asked.discard(msg)
        pieces.append(frame.payload)
        size = self.partial_len[msg] = self.partial_len.get(msg, 0) + len(frame.payload)
        if size > LIMITS.link_message:
            raise TransportError("response from chip too large", code="malformed")
        if frame.more:
            return False
        self.responses[msg] = b"".join(pieces)
        del self.partial[msg]
        self.partial_len.pop(msg, None)
        self.base = max(self.base, self.msg_first[msg + 1])
        self.next = max(self.next, self.base)
        while self.answered < self.n and self.responses[self.answered] is not None:
            self.answered += 1
        return True
