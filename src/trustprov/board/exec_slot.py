"""A socket whose chip is a program: `chip serve --exec CMD --tray DIR` (docs/protocol.md 13.4).

The chip in the socket is a process speaking the link layer (section 12) on its standard input
and output: the virtual chip (`trustprov chip run --nvm {nvm} --uid {uid} --stdio`), a chip
written in another language, or a bridge to a real programmer. CMD is split as a shell would
(no shell runs it); in each word ``{nvm}`` becomes the chip's NVM file in the tray, ``{uid}``
its UID (32 lowercase hex digits) and ``{lot}`` its lot.

Invariants:
- Seating a chip starts its program; removing it, or a power cycle, kills the program
  (SIGKILL: a power cut, so the program's commits must be atomic) and waits for it to be gone
  before anything else, so two processes never hold one chip's file; a power cycle then starts it
  again. A dead socket kills it for good. The board stopping kills every program.
- The wire's faults apply to the program's bytes as to a farm chip's (`Socket`).
- Writes to the program never block the board's loop: what the pipe does not take waits in
  the socket and goes when the pipe is writable (the host's window bounds it).
- What the program writes on standard error goes to the board's; only its standard output is
  the wire.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shlex
import shutil
import subprocess
from collections.abc import Callable
from typing import IO

from trustprov.board.faults import FaultDice
from trustprov.board.slot import Socket
from trustprov.board.timers import Timers
from trustprov.board.tray import Tray
from trustprov.errors import InputError

log = logging.getLogger(__name__)

READ_SIZE = 65536
PLACEHOLDERS = ("{nvm}", "{uid}", "{lot}")

#: the board's selector: register(file, events, callback) and unregister(file)
Watch = Callable[[int, int, Callable[[], None]], object]
Unwatch = Callable[[int], object]


def parse_command(text: str) -> list[str]:
    """CMD split into words; a program that cannot be found is refused before anything listens."""
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise InputError(f"--exec: {e}") from e
    if not words:
        raise InputError("--exec: no command")
    if any(p in words[0] for p in PLACEHOLDERS):
        raise InputError("--exec: the program itself cannot be a placeholder")
    if shutil.which(words[0]) is None:
        raise InputError(f"--exec: no program {words[0]!r} (not found, or not executable)")
    return words


class ExecSlot(Socket):
    def __init__(
        self,
        index: int,
        tray: Tray,
        command: list[str],
        dice: FaultDice,
        timers: Timers,
        *,
        watch: Watch,
        unwatch: Unwatch,
    ) -> None:
        super().__init__(index, dice, timers)
        self._tray = tray
        self._command = command
        self._watch = watch
        self._unwatch = unwatch
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = bytearray()  # input the program's pipe has not taken yet

    def argv(self, uid: bytes) -> list[str]:
        path, lot = self._tray.find(uid)
        values = {"{nvm}": str(path), "{uid}": uid.hex(), "{lot}": lot}
        out = []
        for word in self._command:
            filled = word
            for key, value in values.items():
                filled = filled.replace(key, value)
            out.append(filled)
        return out

    # -- power ------------------------------------------------------------------------------
    def _power_on(self) -> None:
        assert self.uid is not None  # noqa: S101 - only called with a chip in the socket
        self._power_off()
        argv = self.argv(self.uid)
        try:
            proc = subprocess.Popen(  # noqa: S603 - the operator's own chip command, no shell
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C at the board's terminal is the board's
            )
        except OSError as e:
            log.warning("socket %d: cannot start %s: %s", self.index, argv[0], e.strerror)
            return  # a socket whose chip never answers: the host's hellos time out
        assert proc.stdin is not None  # noqa: S101 - PIPE above
        assert proc.stdout is not None  # noqa: S101 - PIPE above
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        self._proc = proc
        self._held = {"in": None, "out": None}
        out = proc.stdout
        self._watch(out.fileno(), selectors.EVENT_READ, lambda: self._read(proc, out))

    def _power_off(self) -> None:
        proc, self._proc = self._proc, None
        self._pending.clear()
        if proc is None:
            return
        assert proc.stdin is not None  # noqa: S101 - PIPE
        assert proc.stdout is not None  # noqa: S101 - PIPE
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(KeyError, ValueError):  # not watched (any more)
                self._unwatch(f.fileno())
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                f.close()

    # -- bytes ------------------------------------------------------------------------------
    def _input(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return  # the program is gone: the bytes fall on a chip without power
        was_empty = not self._pending
        self._pending += data
        if was_empty:
            self._flush(proc, proc.stdin)
            if self._pending:
                stdin = proc.stdin
                self._watch(stdin.fileno(), selectors.EVENT_WRITE, lambda: self._flush(proc, stdin))

    def _flush(self, proc: subprocess.Popen[bytes], stdin: IO[bytes]) -> None:
        if proc is not self._proc:
            return
        try:
            while self._pending:
                n = os.write(stdin.fileno(), self._pending)
                del self._pending[:n]
        except BlockingIOError:
            return  # the pipe is full: the rest goes when it is writable
        except OSError:  # the program closed its input: it is gone
            self._pending.clear()
        with contextlib.suppress(KeyError, ValueError):
            self._unwatch(stdin.fileno())

    def _read(self, proc: subprocess.Popen[bytes], out: IO[bytes]) -> None:
        try:
            data = os.read(out.fileno(), READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the program ended on its own: a chip that no longer answers
            with contextlib.suppress(KeyError, ValueError):
                self._unwatch(out.fileno())
            code = proc.poll()
            log.warning("socket %d: the chip program ended (exit %s)", self.index, code)
            return
        if proc is self._proc:
            self._emit(data)
