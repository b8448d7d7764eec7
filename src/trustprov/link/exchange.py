"""One pipelined run of requests over a linked chip (docs/protocol.md, section 12): the host's
go-back-N window over request fragments, its retransmission, and the reassembly of responses.

`FramedLink` (link/framed.py) owns the link: its hello, its sequence number, its line rate and
timeouts; it hands each `exchange_many` to an `Exchange` with the values of that moment, and an
`Exchange` never changes them (the link sets its next sequence number from the count of requests).

Invariants:
- At most ``window`` request fragments are unacknowledged and at most the chip's window of
  messages in flight; after a NAK or a timeout everything from the first unacknowledged fragment
  is sent again, which is safe because the chip executes each request once.
- ``max_retries`` timeouts in a row without progress end the exchange ("link-timeout"); so does
  the oldest message without its response running out of its time budget, however the chip
  paces its frames.
- A response is reassembled in time linear in its bytes, from at most
  ``fragment_bound(link_message, max frame)`` fragments, no empty one but the last, and never
  above ``LIMITS.link_message`` bytes ("malformed"); the frames and bytes read stay within the
  budget the frames sent earned (`WireBudget`, "link-flood"). A gap in a response asks for it
  again once until its fragment 0 comes back, so made-up frames cannot make the host send a
  frame each.
- A RESET frame or a hello answer with another boot id ends the exchange as "chip-reset"; an
  ERROR frame about a message in flight as "link-refused". Every failure is a `TransportError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trustprov.errors import FormatError, TransportError
from trustprov.formats.frame import (
    SEQ_MOD,
    Frame,
    FrameDecoder,
    FrameType,
    LinkErrorReason,
    LinkInfo,
    frame_parts,
)
from trustprov.formats.limits import LIMITS
from trustprov.link.budget import WireBudget
from trustprov.link.payloads import PayloadCache
from trustprov.link.stream import ByteStream

__all__ = ["READ_SIZE", "Exchange", "LinkStats"]

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


class Exchange:
    """One pipelined run of requests: go-back-N over fragments, a window over messages.

    The frames are kept as a flat list of wire parts, three per fragment (`frame_parts`), so a
    window goes out as one join of the parts in flight: one copy of the payloads, not two."""

    def __init__(
        self,
        stream: ByteStream,
        decoder: FrameDecoder,
        stats: LinkStats,
        info: LinkInfo,
        requests: Sequence[bytes],
        *,
        first_seq: int,
        fragment: int,
        window: int,
        max_retries: int,
        timeout: float,
        quiet: float,
        clock: Callable[[], float],
        payload_cache: PayloadCache,
    ) -> None:
        self.stream = stream
        self.decoder = decoder
        self.stats = stats
        self.info = info
        self.first_seq = first = first_seq
        self.window = window  # fragments in flight without an ACK (the host's own window)
        self.max_retries = max_retries
        self.timeout = timeout
        self.quiet = quiet
        self.clock = clock
        parts: list[bytes] = []
        msg_of: list[int] = []
        msg_first: list[int] = []
        count = 0
        request_type = FrameType.REQUEST
        for i, pieces in enumerate(payload_cache.fragments_of(requests, fragment)):
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
            retries=max_retries,
            timeout=timeout,
            fragment=fragment,
            bytes_per_second=stream.bytes_per_second,
        )
        self.timed = -1  # the message ``msg_deadline`` is for
        self.msg_deadline = 0.0  # when the oldest message without its response runs out
        self.gap_asked: set[int] = set()  # messages whose response was asked again for a gap

    def _frame(self, index: int) -> bytes:
        return b"".join(self.parts[3 * index : 3 * index + 3])

    def run(self) -> list[bytes]:
        """Every response, in order, once every request has one; the sequence number after the
        exchange is ``(first_seq + len(requests)) % SEQ_MOD``."""
        clock = self.clock
        read = self.stream.read
        quiet = self.quiet
        decoder = self.decoder
        stats = self.stats
        responses = self.responses
        first_seq = self.first_seq
        msg_first = self.msg_first
        n = self.n
        window = self.info.window
        response_type = FrameType.RESPONSE
        self.deadline = clock() + self.timeout
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
                self.deadline = clock() + self.timeout
            damaged = damaged or decoder.bad_frames != bad_before
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
        limit = min(self.base + self.window, self.count)
        msg_limit = self.answered + self.info.window
        start = nxt = self.next
        msg_of = self.msg_of
        while nxt < limit and msg_of[nxt] < msg_limit:
            nxt += 1
        if nxt > start:
            self.next = nxt
            self.stream.write(b"".join(self.parts[3 * start : 3 * nxt]))
            self.stats.frames_sent += nxt - start
            # the messages whose last fragment went out: from start's to nxt - 1's, the latter
            # only if nxt - 1 is its last
            last = msg_of[nxt - 1]
            self.budget.earn(nxt - start, last - msg_of[start] + (self.msg_first[last + 1] == nxt))

    def _timed_out(self) -> None:
        stats = self.stats
        stats.timeouts += 1
        self.retries += 1
        if self.retries > self.max_retries:
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
            self.stream.write(self._frame(last))
            self.budget.earn(1, 1)
        self.deadline = self.clock() + self.timeout

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
            self.stats.naks += 1
            if self.base <= index < self.next:  # the chip has all before ``index``
                self.stats.resent += self.next - index
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
                    self.stats.resent += 1
                    self.stats.frames_sent += 1
                    self.stream.write(self._frame(self.msg_first[msg + 1] - 1))
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
