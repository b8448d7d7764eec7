"""The host's side of the link layer (docs/protocol.md, section 12): a `Link` over a byte stream.

`FramedLink` owns the link to one chip: the hello that learns the chip's limits and boot id, the
sequence number, the line rate and the timeouts scaled to it. It cuts each request into fragments
no larger than the chip announced in its hello and hands each run of requests to an `Exchange`
(link/exchange.py: the window, retransmission and reassembly of responses).

Invariants:
- Requests reach the chip in order; the chip executes each exactly once (it answers duplicates
  from its cache), so resending is always safe.
- A request above the chip's message limit, or needing more fragments than 12.4 allows, is
  refused ("too-large") before anything is sent, and the link stays up.
- A chip that lost its state (power cut) is reported as `TransportError` code "chip-reset",
  never talked to as if nothing happened: its RESET frame, or a hello answer with a new boot id,
  ends the exchange.
- A chip that stays silent is reported as "link-timeout" after ``max_retries`` timeouts in a
  row; a cut stream as "link-closed". After any error the link refuses to carry requests until
  `hello` is called again, since the chip's sequence state is then unknown; after a success the
  sequence number has advanced by the count of requests.
- A chip cannot make one exchange cost the host more than its requests call for (protocol.md
  12.4; how, in link/exchange.py).
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
    LinkInfo,
    encode_frame,
    encode_hello,
    encoded_size_bound,
    fragment_bound,
)
from trustprov.formats.limits import LIMITS
from trustprov.link.exchange import READ_SIZE, Exchange, LinkStats
from trustprov.link.payloads import SHARED_CACHE, PayloadCache
from trustprov.link.stream import ByteStream

__all__ = ["SHARED_CACHE", "FramedLink", "LinkInfo", "LinkStats", "PayloadCache"]


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
            responses = Exchange(
                self._stream,
                self._decoder,
                self.stats,
                self.info,
                requests,
                first_seq=self._seq,
                fragment=self._fragment,
                window=self._window,
                max_retries=self._max_retries,
                timeout=self._timeout,
                quiet=self._quiet,
                clock=self._clock,
                payload_cache=self._cache,
            ).run()
        except TransportError:
            self.info = None  # the chip's sequence state is unknown now
            raise
        self._seq = (self._seq + len(requests)) % SEQ_MOD
        return responses

    def _send(self, data: bytes) -> None:
        self._stream.write(data)
