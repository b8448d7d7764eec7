"""A socket's wire at a line rate: a UART behind a programmer (`--baud N --turnaround MS`).

`LineRate` is what the operator asks for: N baud, 8N1 (so N / 10 bytes per second each way),
and the chip taking MS to start answering. A `Pacer` carries one direction of one socket's wire
at that rate: what is offered to it comes out, in order and unchanged, no sooner than the line
could have carried it, in slices of a few milliseconds, so the receiver starts on the first
frame of a window while the rest is still crossing. Nothing busy-waits: a pacer runs from its
loop's `Timers`.

Invariants:
- Bytes come out in the order offered, none lost, none added: the concatenation of what a pacer
  delivers is the concatenation of what was offered to it (until `clear`).
- Over any transfer the average rate never exceeds ``bytes_per_second``, and a late timer never
  slows it: the line's clock advances by bytes carried, not by callbacks, so lateness is made up
  at the next slice. An idle line earns no credit: a burst after a pause goes at the line rate.
- A unit offered with ``ready_at`` (the chip's turnaround) starts crossing no sooner than that,
  nor before the units offered before it have crossed (the chip thinks while its UART sends).
- `set_rate` changes the rate of what has not crossed yet; `after` runs a callback once what was
  offered before it has crossed (a chip's UART switches rate after its answer left, 12.7).
- A pacer holds at most ``max_queued`` bytes not yet crossed: what a sender pushes beyond it is
  dropped, as a UART's buffer overruns (a host that ignores the line rate costs the board
  bounded memory, and its link recovers the loss as any other, section 12.4).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustprov.errors import InputError
from trustprov.formats.frame import MAX_RATES

if TYPE_CHECKING:
    from trustprov.board.timers import Timers

SLICE = 0.005  # seconds of line time delivered at once (a timer per slice)
MAX_QUEUED = 2 << 20  # bytes a direction holds before it overruns: twice a host's full window
MIN_BAUD = 300
MAX_BAUD = 20_000_000
MAX_TURNAROUND_MS = 10_000.0


#: the rates a virtual chip served with --baud offers (12.7), with --baud's own
DEFAULT_BAUDS = (115_200, 1_000_000, 3_000_000)


@dataclass(frozen=True)
class LineRate:
    """``baud`` None: no rate limit (only the turnaround, if any). ``bauds``: the rates the
    chips offer to switch to after the hello (protocol.md 12.7); empty: none (no switch)."""

    baud: int | None = None
    turnaround_ms: float = 0.0
    bauds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.baud is not None and not MIN_BAUD <= self.baud <= MAX_BAUD:
            raise InputError(f"--baud must be {MIN_BAUD} to {MAX_BAUD}")
        if self.bauds and self.baud is None:
            raise InputError("--bauds needs --baud (the rate the chips start at)")
        if len(self.bauds) > MAX_RATES or any(not MIN_BAUD <= b <= MAX_BAUD for b in self.bauds):
            raise InputError(f"--bauds: at most {MAX_RATES} rates, each {MIN_BAUD} to {MAX_BAUD}")
        if not 0 <= self.turnaround_ms <= MAX_TURNAROUND_MS:
            raise InputError(f"--turnaround must be 0 to {MAX_TURNAROUND_MS:.0f} ms")

    @classmethod
    def of(cls, baud: int | None, turnaround_ms: float = 0.0, bauds: str | None = None) -> LineRate:
        """From the command line: ``bauds`` a comma-separated list, "none", or None (with
        ``baud``: `DEFAULT_BAUDS` and ``baud``)."""
        if bauds is None:
            rates = () if baud is None else tuple(sorted({baud, *DEFAULT_BAUDS}))
        elif bauds.strip().lower() == "none":
            rates = ()
        else:
            try:
                rates = tuple(sorted({int(b) for b in bauds.split(",")}))
            except ValueError:
                raise InputError("--bauds: baud rates, comma-separated (or none)") from None
        return cls(baud, turnaround_ms, rates)

    @property
    def bytes_per_second(self) -> float | None:
        return None if self.baud is None else self.baud / 10  # 8N1: 10 bits a byte

    @property
    def turnaround(self) -> float:
        return self.turnaround_ms / 1000

    @property
    def active(self) -> bool:
        return self.baud is not None or self.turnaround_ms > 0


class Pacer:
    """One direction of a wire at ``bytes_per_second`` (None: as soon as ready)."""

    def __init__(
        self,
        bytes_per_second: float | None,
        timers: Timers,
        deliver: Callable[[bytes], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._bps = bytes_per_second
        self._max_queued = max_queued
        self._queued = 0  # bytes offered and not yet delivered
        self.overrun = 0  # bytes dropped because the queue was full
        self._timers = timers
        self._deliver = deliver
        self._clock = clock
        self._queue: deque[tuple[bytes, float]] = deque()  # (unit, when it may start)
        self._offset = 0  # bytes of the head unit already delivered
        self._line = 0.0  # the line's clock: when its last byte so far finished crossing
        self._armed = False
        self._epoch = 0  # `clear` makes a pending timer's pump a no-op
        self._delivered = 0  # bytes delivered since the last `clear`
        self._marks: deque[tuple[int, Callable[[], None]]] = deque()  # `after`

    def __repr__(self) -> str:
        return f"Pacer(bps={self._bps}, queued={len(self._queue)})"

    @property
    def idle(self) -> bool:
        return not self._queue

    def offer(self, data: bytes, ready_at: float | None = None) -> None:
        room = self._max_queued - self._queued
        if len(data) > room:
            self.overrun += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        if not data:
            return
        self._queued += len(data)
        now = self._clock()
        self._queue.append((data, now if ready_at is None else max(now, ready_at)))
        if not self._armed:
            self._pump(self._epoch)

    def set_rate(self, bytes_per_second: float | None) -> None:
        """From now on the line carries ``bytes_per_second`` (what is queued, too)."""
        self._bps = bytes_per_second

    def after(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once every byte offered so far has crossed (at once if none is left)."""
        if not self._queue:
            fn()
        else:
            self._marks.append((self._delivered + self._queued, fn))

    def clear(self) -> None:
        """Drop what has not crossed yet (the far end lost power, the cable was pulled)."""
        self._queue.clear()
        self._queued = 0
        self._offset = 0
        self._armed = False
        self._epoch += 1
        self._delivered = 0
        self._marks.clear()

    def _pump(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        self._armed = False
        now = self._clock()
        out: list[bytes] = []
        queue, bps = self._queue, self._bps
        while queue:
            data, ready = queue[0]
            start = max(self._line, ready)
            if start > now:
                break
            left = len(data) - self._offset
            n = left if bps is None else min(left, int((now - start) * bps))
            if n <= 0:
                break
            out.append(data[self._offset : self._offset + n])
            self._line = start + (0.0 if bps is None else n / bps)
            self._offset += n
            if self._offset < len(data):
                break
            queue.popleft()
            self._offset = 0
        if queue:
            data, ready = queue[0]
            start = max(self._line, ready)
            if bps is not None:
                start += min(len(data) - self._offset, max(1, int(bps * SLICE))) / bps
            self._armed = True
            self._timers.at(start, lambda: self._pump(epoch))
        if out:
            chunk = b"".join(out)
            self._queued -= len(chunk)
            self._delivered += len(chunk)
            self._deliver(chunk)
            while self._marks and self._marks[0][0] <= self._delivered:
                self._marks.popleft()[1]()
