"""Why and how a station stops before its lot is done: a signal, or a refusal that repeats.

Invariants:

- A stop never abandons a chip: the station stops claiming, the chips in flight finish (a worker
  stops between two chips, never inside one), every finished chip gets its record, and the
  claims not started go back to the lot as ``pending`` (docs/protocol.md section 9).
- The first SIGINT or SIGTERM asks for that stop; a second one raises `LineAborted` in the
  station, which then records nothing more: its claims stay, and the next run settles them from
  the chips, as after a crash. Neither prints a traceback.
- Worker processes never act on SIGINT or SIGTERM (a terminal or a service manager signals the
  whole process group): they are started with both signals blocked, so that no signal lands in
  the middle of their start-up, and ignore both once running; the station stops them through
  the shared ``flag``.
- `RepeatGuard` stops a lot whose first chip refuses the job for a reason every chip would
  repeat (`roles.cm.SYSTEMIC`), or whose chips fail with the same code ``stop_after`` times in a
  row.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from trustprov.roles.cm import SYSTEMIC, Outcome

STOP_AFTER = 10  # default of --stop-after: failures with one code in a row that stop a lot
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class LineAborted(BaseException):
    """A second signal: stop now, record nothing more. Like KeyboardInterrupt, no `except
    Exception` may swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@dataclass
class Stop:
    """A station's stop request. ``flag`` is shared with its worker processes (set to 1 when the
    station stops), so a worker leaves its batch between two chips."""

    flag: Any = None  # a multiprocessing RawValue("b"): no lock, safe to set in a handler
    reason: str = ""
    signum: int | None = None
    _signals: int = field(default=0, repr=False)

    @property
    def requested(self) -> bool:
        return bool(self.reason)

    def halt(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
        if self.flag is not None:
            self.flag.value = 1

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 2:
            raise LineAborted(signum)
        if self._signals == 1:
            self.signum = signum
            self.halt(f"stopped by {signal.Signals(signum).name}")
        # a third signal and after: the abort is already under way


@contextmanager
def catch_signals(stop: Stop) -> Iterator[Stop]:
    """SIGINT and SIGTERM ask ``stop`` to stop while the block runs (main thread only; in any
    other thread Python cannot handle signals, and the block runs without)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop.on_signal) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread while the block runs. A process or thread
    started inside inherits the mask, so a worker starts with both blocked (`ignore_signals`);
    a signal that arrives meanwhile is delivered to the station when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_signals() -> None:
    """In a worker: ignore SIGINT and SIGTERM (signals pending from start-up are dropped),
    then unblock them."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


class RepeatGuard:
    """Watches a line's outcomes in the order they are recorded and stops it (`Stop.halt`) when
    the first outcome is a systemic refusal, or ``stop_after`` in a row (0: never) failed with
    one code."""

    def __init__(self, stop: Stop, stop_after: int) -> None:
        self.stop = stop
        self.stop_after = stop_after
        self.first = True
        self.code: str | None = None
        self.run = 0

    def see(self, o: Outcome) -> None:
        first, self.first = self.first, False
        if o.ok:
            self.code, self.run = None, 0
            return
        code = o.error_code or "unknown"
        self.run = self.run + 1 if code == self.code else 1
        self.code = code
        if first and code in SYSTEMIC:
            self.stop.halt(
                f"the first chip, {o.uid.hex()}, refused the job with {code} ({o.error}), "
                "which every chip of the lot would repeat"
            )
        elif self.stop_after and self.run >= self.stop_after:
            self.stop.halt(
                f"{self.run} chips in a row failed with {code} ({o.error}); "
                f"stopped after {self.stop_after} (--stop-after)"
            )


def repeats(outcomes: list[Outcome], stop_after: int) -> bool:
    """Whether the last ``stop_after`` of ``outcomes`` failed with one code (a worker stops its
    batch there: the station would stop the lot on them)."""
    if not stop_after or len(outcomes) < stop_after:
        return False
    tail = outcomes[-stop_after:]
    return all(not o.ok and o.error_code == tail[0].error_code for o in tail)
