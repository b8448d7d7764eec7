"""What one exchange may cost the host, whatever the chip sends (docs/protocol.md 12.4).

A chip (or a board, or anything on the wire) can answer a request with frames the request does
not call for: tens of thousands of empty fragments, duplicates, ACKs of nothing. Each costs the
station's one selector thread a frame's decoding. `WireBudget` bounds that cost by what the
host sent, so a flood ends the exchange ("link-flood") after a bounded amount of work, and the
other sockets of the station are served meanwhile.

Invariants:
- A response has at most ``max_frags`` = fragment_bound(link message, the chip's max frame)
  fragments (`fragment_bound`): the frames of one response are bounded before any is kept.
- The frames (valid or damaged) and bytes read during one exchange never exceed its credit: a
  slack for stale frames of an earlier exchange, then, per request frame sent, two frames (an
  ACK or NAK, on a line that may duplicate it) and per last fragment sent two whole responses;
  bytes at most ``frame_bytes`` (a frame of the chip's max frame, worst-case stuffing) a frame.
- `time_budget` is the longest a message may take, once the oldest without its response, to
  get it: every retry's wait and, at a line rate, its request's and the largest response's
  frames on the wire. Progress (ACKs) cannot stretch it.
"""

from __future__ import annotations

from trustprov.errors import TransportError
from trustprov.formats.frame import LinkInfo, encoded_size_bound, fragment_bound
from trustprov.formats.limits import LIMITS

# frames a chip may send beyond what the exchange's own frames call for, besides a window of
# stale responses: a few stray ACKs or NAKs of an earlier exchange
FLOOD_SLACK = 64


class WireBudget:
    def __init__(
        self,
        info: LinkInfo,
        *,
        retries: int,
        timeout: float,
        fragment: int,
        bytes_per_second: float | None,
    ) -> None:
        self.max_frags = fragment_bound(LIMITS.link_message, info.max_frame)
        self.frame_bytes = encoded_size_bound(info.max_frame)
        self.credit = FLOOD_SLACK + info.window * self.max_frags
        self.frames = 0  # frames and damaged segments read from the chip
        self.bytes = 0
        self._retries = retries
        self._timeout = timeout
        self._fragment = fragment
        self._bps = bytes_per_second

    def __repr__(self) -> str:
        return f"WireBudget({self.frames}/{self.credit} frames, {self.bytes} bytes)"

    def earn(self, frames: int, lasts: int) -> None:
        """``frames`` request frames sent, ``lasts`` of them the last of their message."""
        self.credit += 2 * (frames + lasts * self.max_frags)

    def spend(self, nbytes: int, frames: int) -> None:
        """``nbytes`` read, holding ``frames`` frames or damaged segments; `TransportError`
        "link-flood" past the credit."""
        self.frames += frames
        self.bytes += nbytes
        if self.frames > self.credit or self.bytes > self.credit * self.frame_bytes:
            raise TransportError(
                f"the chip sent {self.frames} frames ({self.bytes} bytes) where the requests "
                f"call for at most {self.credit}: a flood",
                code="link-flood",
            )

    def time_budget(self, request_frames: int) -> float:
        """Seconds a message of ``request_frames`` fragments may take to be answered."""
        budget = (self._retries + 1) * self._timeout
        if self._bps:
            wire = request_frames * encoded_size_bound(self._fragment)
            budget += (wire + self.max_frags * self.frame_bytes) / self._bps
        return budget

    def check_response_fragment(self, frag: int, more: bool, empty: bool) -> None:
        """`TransportError` "malformed" for a response fragment beyond the bound, or empty
        but not the last."""
        if frag + more >= self.max_frags:
            raise TransportError(
                f"a response from the chip has more than {self.max_frags} fragments",
                code="malformed",
            )
        if more and empty:
            raise TransportError(
                "the chip sent an empty response fragment that is not the last", code="malformed"
            )
