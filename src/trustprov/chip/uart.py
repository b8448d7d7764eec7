"""The chip's side of the link layer (docs/protocol.md, section 12): wire bytes in, wire bytes out.

`ChipEndpoint` sits between the chip's UART and its request handler (the chip's I/O port). It is
part of the chip model: it imports only `trustprov.formats` and the standard library.

Invariants:
- A frame is acknowledged (by an ACK, or for the last fragment of a request by the response)
  only after its CRC checked; a frame that fails is never acknowledged
  (the endpoint answers a NAK for the fragment it expects instead, at most once per position).
- Requests are executed strictly in sequence order, each exactly once: the handler runs when
  the last fragment of message ``next_seq`` arrives in order, and never for a duplicate. A
  duplicate of the last fragment of one of the last ``window`` messages is answered with the
  cached response, without running the handler.
- Before a hello, and after `reset` (a power cut), no request is executed: every request frame is
  answered with RESET, so a host can never mistake a fresh chip for the one it was talking to.
- Reassembly never holds more than ``max_message`` bytes nor more than
  ``fragment_bound(max_message, max_frame)`` fragments, and takes no empty fragment but a
  message's last: such a message is refused with an ERROR frame and discarded. So a message
  costs the chip at most that many frames, each appended once (linear in its bytes).
- ``on_idle`` fires once when ``idle_timeout`` seconds pass with no valid frame after a request
  ran; it is armed again by the next request that runs.
- Line rates (protocol.md 12.7): the endpoint answers RATE only with a link open, and offers
  only ``rates`` (none: every RATE is answered "no switch"). After answering a switch it holds
  the new rate in `pending_rate` for its owner, who switches the UART once the answer has left
  and calls `switched`; if no valid frame arrives within ``rate_hold`` seconds of that, `poll`
  goes back to the rate before the switch (``on_rate``). A power cut (`reset`) forgets the
  switch: the owner's UART starts again at its first rate.
- One thread at a time: whoever owns the chip's wire calls `feed`, `poll` and `reset` in turn.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable

from trustprov.errors import FormatError
from trustprov.formats.frame import (
    MIN_FRAME,
    PROTOCOL_VERSION,
    RATE,
    RATE_HOLD,
    RATE_IDLE,
    SEQ_MOD,
    Frame,
    FrameDecoder,
    FrameType,
    LinkErrorReason,
    LinkInfo,
    decode_hello,
    encode_frame,
    encode_rates,
    first_seq,
    fragment_bound,
)
from trustprov.formats.limits import LIMITS

DEFAULT_WINDOW = 8


class ChipEndpoint:
    def __init__(
        self,
        handler: Callable[[bytes], bytes],
        *,
        max_message: int = LIMITS.link_message,
        max_frame: int = LIMITS.link_frame,
        idle_timeout: float = 30.0,
        on_idle: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        window: int = DEFAULT_WINDOW,
        rates: tuple[int, ...] = (),
        on_rate: Callable[[int], None] = lambda _baud: None,
        rate_hold: float = RATE_HOLD,
    ) -> None:
        if not MIN_FRAME <= max_frame <= LIMITS.link_frame:
            raise ValueError(f"max_frame must be in [{MIN_FRAME}, {LIMITS.link_frame}]")
        if not 1 <= max_message <= LIMITS.link_message:
            raise ValueError("max_message out of range")
        if not 1 <= window <= 255:
            raise ValueError("window must be in [1, 255]")
        self._handler = handler
        self.max_message = max_message
        self.max_frame = max_frame
        self.window = window
        self.max_fragments = fragment_bound(max_message, max_frame)
        self._idle_timeout = idle_timeout
        self._on_idle = on_idle
        self._clock = clock
        self.executed = 0  # requests handed to the handler since construction (for tests)
        self._rates_answer = encode_rates(rates)  # checks the list: a host must read it
        self.rates = rates
        self._on_rate = on_rate
        self._rate_hold = rate_hold
        self.reset()

    def __repr__(self) -> str:
        return f"ChipEndpoint(linked={self._link_id is not None}, next_seq={self._next_seq})"

    def reset(self) -> None:
        """Power cut: forget the link, the partial message and every cached response."""
        self._decoder = FrameDecoder(self.max_frame)
        self.boot_id = os.urandom(4)
        self._link_id: bytes | None = None
        self._hello_answer = b""
        self._next_seq = 0
        self._rx = bytearray()
        self._expected_frag = 0
        self._nak_sent = False
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._last_rx = self._clock()
        self._session_open = False
        self.pending_rate: int | None = None  # answered, for the owner to switch to
        self._switch: tuple[int, float] | None = None  # (rate to go back to, when switched)
        self._first_rate: int | None = None  # the power-on rate, once the UART left it

    def switched(self, old_rate: int) -> None:
        """The owner's UART now runs at the rate answered (the answer left at ``old_rate``):
        unless a valid frame arrives within the hold, `poll` goes back to ``old_rate``; and to
        the power-on rate once no valid frame has come for `RATE_IDLE`."""
        self._switch = (old_rate, self._clock())
        if self._first_rate is None:
            self._first_rate = old_rate

    @property
    def bad_frames(self) -> int:
        return self._decoder.bad_frames

    def poll(self) -> None:
        """Fire ``on_idle`` once if the host went quiet with a session open; go back to the
        rate before a switch that no valid frame confirmed within the hold."""
        now = self._clock()
        if self._switch is not None and now - self._switch[1] >= self._rate_hold:
            old, self._switch = self._switch[0], None
            self._on_rate(old)
            if old == self._first_rate:
                self._first_rate = None
        if self._first_rate is not None and now - self._last_rx >= RATE_IDLE:
            first, self._first_rate, self._switch = self._first_rate, None, None
            self._on_rate(first)  # a host that opens the line at the first rate finds it again
        if self._session_open and self._clock() - self._last_rx >= self._idle_timeout:
            self._session_open = False
            self._on_idle()

    def feed(self, data: bytes) -> bytes:
        """Bytes from the wire in; the bytes to send back (acks, naks, responses) out."""
        bad_before = self._decoder.bad_frames
        frames = self._decoder.feed(data)
        out = bytearray()
        if frames:
            self._last_rx = self._clock()
            self._switch = None  # a valid frame at the new rate: the switch holds
        for frame in frames:
            if frame.kind is FrameType.HELLO:
                out += self._hello(frame)
            elif frame.kind is FrameType.REQUEST:
                out += self._request(frame)
            elif frame.kind is FrameType.RATE:
                out += self._rate(frame)
            # any other type is not the host's to send: ignored
        if self._decoder.bad_frames != bad_before and self._link_id is not None:
            out += self._nak()
        return bytes(out)

    # -- frames -----------------------------------------------------------------------------
    def _hello(self, frame: Frame) -> bytes:
        try:
            _version, link_id = decode_hello(frame.payload)
        except FormatError:
            return b""
        if link_id != self._link_id:  # a new link; a repeated hello of this link changes nothing
            self._link_id = link_id
            self._next_seq = first_seq(self.boot_id, link_id)
            self._rx.clear()
            self._expected_frag = 0
            self._nak_sent = False
            self._cache.clear()
            self._hello_answer = encode_frame(
                FrameType.HELLO_ANSWER,
                payload=LinkInfo(
                    PROTOCOL_VERSION,
                    self.window,
                    self.max_frame,
                    self.max_message,
                    self.boot_id,
                    link_id,
                ).to_bytes(),
            )
        return self._hello_answer

    def _rate(self, frame: Frame) -> bytes:
        """Which rates (empty payload), or a switch to one of them (rate [4]); without a link, or
        with another payload, ignored. A rate not offered is answered empty: no switch."""
        if self._link_id is None or len(frame.payload) not in (0, RATE.size):
            return b""
        if not frame.payload:
            return encode_frame(FrameType.RATE_ANSWER, payload=self._rates_answer)
        (baud,) = RATE.unpack(frame.payload)
        if baud not in self.rates:
            return encode_frame(FrameType.RATE_ANSWER)
        self.pending_rate = baud
        return encode_frame(FrameType.RATE_ANSWER, payload=frame.payload)

    def _request(self, frame: Frame) -> bytes:
        if self._link_id is None:
            return encode_frame(FrameType.RESET, frame.seq, frame.frag)
        distance = (frame.seq - self._next_seq) % SEQ_MOD
        if distance == 0:
            if frame.frag == self._expected_frag:
                return self._accept(frame)
            if frame.frag < self._expected_frag:  # our ACK was lost: acknowledge again
                return encode_frame(FrameType.ACK, frame.seq, frame.frag)
            return self._nak()  # a fragment in between was lost
        if distance >= SEQ_MOD - self.window:
            return self._executed_before(frame)
        return self._nak()  # a later message: the rest of the current one was lost

    def _executed_before(self, frame: Frame) -> bytes:
        """A fragment of a message already run: never run again, answer from the cache."""
        cached = self._cache.get(frame.seq)
        if not frame.more and cached is not None:  # its response was lost: send it again
            return self._response_frames(frame.seq, cached)
        return encode_frame(FrameType.ACK, frame.seq, frame.frag)

    def _accept(self, frame: Frame) -> bytes:
        if len(self._rx) + len(frame.payload) > self.max_message:
            reason = LinkErrorReason.TOO_LARGE
        elif frame.more and frame.frag + 1 >= self.max_fragments:
            reason = LinkErrorReason.TOO_MANY_FRAGMENTS
        elif frame.more and not frame.payload:
            reason = LinkErrorReason.EMPTY_FRAGMENT
        else:
            self._rx += frame.payload
            self._expected_frag += 1
            self._nak_sent = False
            if frame.more:
                return encode_frame(FrameType.ACK, frame.seq, frame.frag)
            return self._execute(frame.seq)  # the response acknowledges the last fragment
        self._rx.clear()
        self._expected_frag = 0
        return encode_frame(FrameType.ERROR, frame.seq, frame.frag, bytes([reason]))

    def _execute(self, seq: int) -> bytes:
        request = bytes(self._rx)
        self._rx.clear()
        self._expected_frag = 0
        self._next_seq = (seq + 1) % SEQ_MOD
        self.executed += 1
        self._session_open = True
        response = self._handler(request)
        self._cache[seq] = response
        while len(self._cache) > self.window:
            self._cache.popitem(last=False)
        return self._response_frames(seq, response)

    def _response_frames(self, seq: int, response: bytes) -> bytes:
        size = self.max_frame
        count = max(1, -(-len(response) // size))
        return b"".join(
            encode_frame(
                FrameType.RESPONSE,
                seq,
                i,
                response[i * size : (i + 1) * size],
                more=i < count - 1,
            )
            for i in range(count)
        )

    def _nak(self) -> bytes:
        if self._nak_sent:  # one NAK per position: the host's timeout covers a lost NAK
            return b""
        self._nak_sent = True
        return encode_frame(FrameType.NAK, self._next_seq, self._expected_frag)
