"""One virtual chip as a program: its state in one NVM file, the link on two file descriptors.

`trustprov chip run --nvm FILE --uid HEX --stdio` runs this: the chip's end of the link layer
(docs/protocol.md 12, `trustprov.chip.uart`) reads the host's bytes from standard input and writes
its frames to standard output, so a board (`chip serve --exec`, `trustprov.board.exec_slot`) or
any bridge to a real programmer can seat it. Nothing but link frames goes to standard output.

Invariants:
- Starting the program is powering the chip on: its RAM is empty, its state is what the NVM
  file holds committed (`trustprov.chip.nvm_file`); a new file is a blank chip with the fab's UID.
- Every chip write is one atomic commit of the file, so killing the program at any instant
  (a power cut) loses nothing committed and leaves nothing half-written.
- EOF on the input or SIGTERM ends it cleanly (exit 0), between two inputs, never mid-commit.
- The idle timeout (12.5) ends an open session as a power-on would, keeping the link.
- With a line rate (`--baud`, `--turnaround`: `trustprov.board.line_rate`) the bytes cross at
  that rate each way, paced by timers of this loop, never a busy wait; at EOF what is still on
  the wire is carried to its end first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from pathlib import Path
from types import FrameType

from trustprov.board.line_rate import LineRate, Pacer
from trustprov.board.slot import IDLE_TIMEOUT
from trustprov.board.timers import Timers
from trustprov.chip.device import Chip
from trustprov.chip.nvm_file import NvmFile
from trustprov.chip.uart import ChipEndpoint
from trustprov.link.port import ChipPort

log = logging.getLogger(__name__)

READ_SIZE = 65536
TICK = 0.05  # seconds between checks of the idle timer and of a stop request


class ChipProgram:
    """The chip behind two file descriptors (``rfd`` in, ``wfd`` out)."""

    def __init__(
        self,
        nvm: NvmFile,
        *,
        rfd: int = 0,
        wfd: int = 1,
        idle_timeout: float = IDLE_TIMEOUT,
        line: LineRate | None = None,
    ) -> None:
        self._nvm = nvm
        self._rfd, self._wfd = rfd, wfd
        nvm.load()  # a damaged file or another chip's is refused before any byte is answered
        nvm.hold()  # one process per chip
        self._port = self._power_on()
        self._line = line or LineRate()
        self._endpoint = ChipEndpoint(
            self._handle,
            idle_timeout=idle_timeout,
            on_idle=self._on_idle,
            rates=self._line.bauds,
            on_rate=self._set_rate,
        )
        self._stopping = False
        self._baud = self._line.baud
        self._timers = Timers()
        bps = self._line.bytes_per_second
        self._in = Pacer(bps, self._timers, self._take)
        self._out = Pacer(bps, self._timers, lambda data: _write_all(self._wfd, data))

    def _power_on(self) -> ChipPort:
        return ChipPort(Chip(self._nvm, self._nvm.load()))

    def _on_idle(self) -> None:
        self._port = self._power_on()  # the session's keys go with the dropped RAM

    def _handle(self, request: bytes) -> bytes:
        return self._port.handle(request)

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self._stopping = True

    def _set_rate(self, baud: int) -> None:
        """The chip's UART at ``baud`` both ways (protocol.md 12.7's switch, or its revert)."""
        self._baud = baud
        self._in.set_rate(baud / 10)
        self._out.set_rate(baud / 10)

    def _take(self, data: bytes) -> None:
        """Bytes that crossed the wire in: the chip answers what they complete."""
        out = self._endpoint.feed(data)
        if out:
            if self._line.active:
                self._out.offer(out, time.monotonic() + self._line.turnaround)
            else:
                _write_all(self._wfd, out)
        new, self._endpoint.pending_rate = self._endpoint.pending_rate, None
        if new is not None and self._baud is not None:  # switch once the answer has left
            old = self._baud
            self._out.after(lambda: self._switched(new, old))

    def _switched(self, new: int, old: int) -> None:
        self._set_rate(new)
        self._endpoint.switched(old)

    def run(self) -> None:
        """Serve until EOF on the input or `stop` (SIGTERM)."""
        sel = selectors.DefaultSelector()
        try:
            sel.register(self._rfd, selectors.EVENT_READ)
            waits = True
        except (PermissionError, ValueError):  # a regular file: always readable, read it
            waits = False
        ended = False
        try:
            while not self._stopping:
                due = self._timers.next_due()
                wait = TICK if due is None else max(0.0, min(TICK, due - time.monotonic()))
                if not ended and (not waits or sel.select(wait)):
                    try:
                        data = os.read(self._rfd, READ_SIZE)
                    except InterruptedError:
                        continue
                    if not data:
                        ended = True  # the host (or the board) closed the wire
                    elif self._line.active:
                        self._in.offer(data)
                    else:
                        self._take(data)
                elif ended and due is not None:
                    time.sleep(wait)
                self._timers.run_due()
                if ended and self._in.idle and self._out.idle:
                    return
                self._endpoint.poll()
        finally:
            sel.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[n:]


def run_stdio(
    path: Path,
    uid: bytes,
    lot: str,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    line: LineRate | None = None,
) -> None:
    """`chip run --stdio`: the chip on this process's standard input and output."""
    nvm = NvmFile(path, uid=uid, lot=lot)
    try:
        program = ChipProgram(nvm, idle_timeout=idle_timeout, line=line)
        signal.signal(signal.SIGTERM, program.stop)
        with contextlib.suppress(BrokenPipeError):  # the reader went away: the chip is unplugged
            program.run()
    finally:
        nvm.release()
