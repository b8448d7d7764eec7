"""The board process: a handler port and N chip sockets (TCP), or one chip behind a pty.

One thread runs one selector loop over every port of the board, so the farm (one SQLite
connection, the chips' flash) is only ever used by that thread. The host reaches a chip only
through the bytes on its socket's port, exactly as silicon behind a programmer.

Ports: the handler listens on PORT and socket k on PORT+1+k. With PORT 0 the system picks
PORT, and the board binds PORT+1.. next to it (retrying if taken); `addresses` tells the real
ones. A socket port serves one connection at a time: a new connection replaces the old one (a
host reconnecting after a cut cable). `stop` (SIGTERM) ends the loop; every chip loses power.

Invariants: this module is the I/O (ports, connections, the pty, the loop); what a handler
request does is `trustprov.board.dispatch`, which it hands each request line and whose reply it
sends (closing the connection when told to).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import selectors
import socket
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from trustprov.board import handler
from trustprov.board.dispatch import HandlerDispatch
from trustprov.board.exec_slot import ExecSlot, parse_command
from trustprov.board.faults import FaultDice, Faults
from trustprov.board.line_rate import LineRate
from trustprov.board.slot import IDLE_TIMEOUT, Slot, Socket
from trustprov.board.timers import Timers
from trustprov.board.tray import Tray
from trustprov.chip.farm import Farm
from trustprov.errors import InputError
from trustprov.formats.token import BOARD_TOKEN_ENV, check_token, needs_token

log = logging.getLogger(__name__)

MAX_SOCKETS = 256
READ_SIZE = 65536
TICK = 0.05  # seconds between polls of the chips' inactivity timers
BIND_TRIES = 20


class Board:
    """A board over a farm (``farm_path``: its chips run in this process), or over a tray of
    chip programs (``tray`` and ``command``: `trustprov.board.exec_slot`)."""

    def __init__(
        self,
        farm_path: Path | None,
        *,
        faults: Faults | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        tray: Path | None = None,
        command: str | None = None,
        token: str | None = None,
        line: LineRate | None = None,
    ) -> None:
        """``token``: what a handler connection must present first (`formats.token`);
        required to listen beyond loopback. ``line``: every socket's wire at that line rate
        and turnaround (a UART behind a programmer), none by default."""
        self._line = line or LineRate()
        self._token = None if token is None else check_token(token)
        self._farm_path = Path(farm_path) if farm_path is not None else None
        self._idle_timeout = idle_timeout
        self._tray: Tray | None = None
        self._command: list[str] = []
        if self._farm_path is not None:
            Farm(self._farm_path).close()  # refuse a missing farm before anything is listening
        else:
            if tray is None or command is None:
                raise InputError("a board needs a farm, or a tray and a chip command")
            self._command = parse_command(command)
            self._tray = Tray(tray)
        self._faults = faults or Faults()
        self._sel = selectors.DefaultSelector()
        self._timers = Timers()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, lambda: self._wake_r.recv(64))
        self.slots: list[Socket] = []
        self._farm: Farm | None = None
        self._after_open: list[Callable[[Farm | None], None]] = []

    # -- set-up ---------------------------------------------------------------------------------
    def listen_tcp(self, host: str, port: int, sockets: int) -> dict[str, object]:
        if not 1 <= sockets <= MAX_SOCKETS:
            raise InputError(f"--sockets must be 1 to {MAX_SOCKETS}")
        if needs_token(host) and self._token is None:
            raise InputError(
                f"a board listening on {host} (beyond loopback) needs a token: "
                f"--token-file FILE, or {BOARD_TOKEN_ENV}"
            )
        listeners = _bind_run(host, port, sockets + 1)
        base = listeners[0].getsockname()[1]
        self._add_listener(listeners[0], self._accept_handler)
        for k, lsock in enumerate(listeners[1:]):
            self._after_open.append(functools.partial(self._add_slot, k=k, lsock=lsock))
        return {
            "handler": f"tcp://{host}:{base}",
            "sockets": [f"tcp://{host}:{base + 1 + k}" for k in range(sockets)],
        }

    def listen_pty(self, uid: bytes) -> dict[str, object]:
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.set_blocking(master, False)

        def place(farm: Farm | None) -> None:
            self._check_chip(uid)  # a chip not in the farm is refused before the port is announced
            slot = self._new_slot(0, farm)
            slot.send = lambda data: _write_all(master, data)
            slot.insert(uid)
            self.slots.append(slot)
            self._sel.register(master, selectors.EVENT_READ, lambda: self._read_pty(master, slot))

        self._after_open.append(place)
        self._keep = slave  # held open, so the master never reads EIO between host sessions
        return {"port": f"serial://{name}"}

    # -- the loop -------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the farm on the calling thread (the loop's) and place the sockets."""
        self._farm = Farm(self._farm_path) if self._farm_path is not None else None
        self._dice = FaultDice(self._faults)
        self._dispatch = HandlerDispatch(
            self.slots,
            self._dice,
            token=self._token,
            line=self._line,
            check_chip=self._check_chip,
            uids=self._uids,
        )
        for step in self._after_open:
            step(self._farm)

    def serve(self) -> None:
        """Run until `stop`; must run on the thread that called `open`."""
        next_poll = time.monotonic()
        try:
            while not self._stop.is_set():
                due = self._timers.next_due()
                timeout = TICK if due is None else max(0.0, min(TICK, due - time.monotonic()))
                for key, _ in self._sel.select(timeout):
                    key.data()
                self._timers.run_due()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + TICK
                    for slot in self.slots:
                        slot.poll()
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # already closed: the loop is gone
            self._wake_w.send(b"x")

    def close(self) -> None:
        for slot in self.slots:
            slot.close()  # every chip loses power; a chip program is killed
        for key in list(self._sel.get_map().values()):
            fileobj = key.fileobj
            if isinstance(fileobj, socket.socket):
                fileobj.close()
            elif isinstance(fileobj, int):
                os.close(fileobj)
        self._sel.close()
        self._wake_w.close()
        if self._farm is not None:
            self._farm.close()
            self._farm = None

    # -- TCP ------------------------------------------------------------------------------------
    def _add_listener(
        self, lsock: socket.socket, on_accept: Callable[[socket.socket], None]
    ) -> None:
        lsock.setblocking(False)

        def accept() -> None:
            try:
                conn, _ = lsock.accept()
            except BlockingIOError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(5.0)  # a host that stops reading is dropped, not waited for
            on_accept(conn)

        self._sel.register(lsock, selectors.EVENT_READ, accept)

    def _new_slot(self, k: int, farm: Farm | None) -> Socket:
        slot = self._new_socket(k, farm)
        slot.pace(self._line)
        return slot

    def _new_socket(self, k: int, farm: Farm | None) -> Socket:
        if farm is not None:
            return Slot(k, farm, self._dice, self._timers, idle_timeout=self._idle_timeout)
        assert self._tray is not None  # noqa: S101 - a board has a farm or a tray
        return ExecSlot(
            k,
            self._tray,
            self._command,
            self._dice,
            self._timers,
            watch=self._sel.register,
            unwatch=self._sel.unregister,
        )

    def _check_chip(self, uid: bytes) -> None:
        """`InputError` unless the chip is in the farm or the tray."""
        if self._farm is not None:
            self._farm.load(uid)
        elif self._tray is not None:
            self._tray.find(uid)

    def _uids(self) -> list[bytes]:
        if self._farm is not None:
            return self._farm.uids()
        assert self._tray is not None  # noqa: S101 - a board has a farm or a tray
        return self._tray.uids()

    def _add_slot(self, farm: Farm | None, k: int, lsock: socket.socket) -> None:
        slot = self._new_slot(k, farm)
        self.slots.append(slot)
        current: list[socket.socket] = []

        def hang_up() -> None:
            while current:
                self._drop(current.pop())

        def send(data: bytes) -> None:
            if current:
                try:
                    current[0].sendall(data)
                except OSError:
                    hang_up()

        def on_accept(conn: socket.socket) -> None:
            hang_up()  # one host per socket: the newer connection wins
            slot.new_cable()
            current.append(conn)
            self._sel.register(conn, selectors.EVENT_READ, lambda: read(conn))

        def read(conn: socket.socket) -> None:
            data = _recv(conn)
            if data is None:
                if current and current[0] is conn:
                    hang_up()
                else:
                    self._drop(conn)
                return
            slot.receive(data)

        slot.send = send
        slot.hang_up = hang_up
        self._add_listener(lsock, on_accept)

    def _accept_handler(self, conn: socket.socket) -> None:
        buf = bytearray()
        authed = [self._token is None]  # a board with a token: nothing before it is shown

        def read() -> None:
            data = _recv(conn)
            if data is None:
                self._drop(conn)
                return
            buf.extend(data)
            while (n := buf.find(b"\n")) >= 0:
                line = bytes(buf[:n])
                del buf[: n + 1]
                if not self._answer(conn, line, authed):
                    return
            if len(buf) > handler.MAX_REQUEST:
                self._answer(conn, bytes(buf), authed)

        self._sel.register(conn, selectors.EVENT_READ, read)

    def _answer(self, conn: socket.socket, line: bytes, authed: list[bool]) -> bool:
        reply, close = self._dispatch.answer(line, authed)
        if close:
            _send_quietly(conn, reply)
            self._drop(conn)
            return False
        return _send_quietly(conn, reply) or self._drop(conn)

    def _drop(self, conn: socket.socket) -> bool:
        with contextlib.suppress(KeyError, ValueError):  # never registered, or already dropped
            self._sel.unregister(conn)
        conn.close()
        return False

    # -- pty ------------------------------------------------------------------------------------
    def _read_pty(self, master: int, slot: Socket) -> None:
        try:
            data = os.read(master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:  # no host on the other end
                return
            raise
        slot.receive(data)


def _recv(conn: socket.socket) -> bytes | None:
    """Bytes read, or None once the connection is gone."""
    try:
        data = conn.recv(READ_SIZE)
    except BlockingIOError:
        return b""
    except OSError:
        return None
    return data or None


def _send_quietly(conn: socket.socket, data: bytes) -> bool:
    try:
        conn.sendall(data)
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)  # the host has not read yet; the pty buffer drains
            continue
        view = view[n:]


def _bind_run(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on consecutive ports from ``port`` (0: any free run)."""
    for _ in range(BIND_TRIES if port == 0 else 1):
        bound: list[socket.socket] = []
        try:
            first = port
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                bound.append(s)
                s.bind((host, first + i if i or port else 0))
                if i == 0:
                    first = s.getsockname()[1]
                s.listen(8)
            return bound
        except OSError as e:
            for s in bound:
                s.close()
            if port != 0 or e.errno != errno.EADDRINUSE:
                raise InputError(f"cannot listen on {host}:{port or first}: {e.strerror}") from e
    raise InputError(f"no run of {count} free ports on {host}")
