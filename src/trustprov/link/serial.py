"""A byte stream over a serial line (a USB-UART to a programmer; a pseudo-terminal in tests).

pyserial does the termios work (raw mode, baud rate) on Linux, macOS and Windows alike.
Invariant: pyserial's errors surface as `TransportError` with code "link-closed"; a read that
times out returns ``b""``. Timeouts scale with ``bytes_per_second`` (baud / 10: 8N1 framing).
"""

from __future__ import annotations

import select

import serial as pyserial

from trustprov.errors import TransportError
from trustprov.link.hub import READ, current_hub


class SerialStream:
    def __init__(self, path: str, baud: int = 115_200) -> None:
        try:
            self._port = pyserial.Serial(path, baudrate=baud, timeout=0)
        except (pyserial.SerialException, OSError, ValueError) as e:
            raise TransportError(f"cannot open serial port {path}", code="link-closed") from e
        self.path = path
        self.bytes_per_second: float | None = baud / 10
        fileno = getattr(self._port, "fileno", None)
        self._fd: int | None = fileno() if callable(fileno) else None

    def __repr__(self) -> str:
        return f"SerialStream({self.path!r})"

    def set_baud(self, baud: int) -> None:
        """The port at ``baud`` from now on (protocol.md 12.7's switch): what is still in the
        port's output buffer goes first, at the old rate."""
        try:
            self._port.flush()
            self._port.baudrate = baud
        except (pyserial.SerialException, OSError, ValueError) as e:
            why = f"cannot set {self.path} to {baud} baud"
            raise TransportError(why, code="link-closed") from e
        self.bytes_per_second = baud / 10

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (pyserial.SerialException, OSError) as e:
            raise TransportError("serial link cut while sending", code="link-closed") from e

    def read(self, max_bytes: int, timeout: float) -> bytes:
        try:
            if self._fd is not None:
                # wait with select: setting pyserial's timeout reprograms the port (tcsetattr)
                # on every call; the port stays non-blocking (timeout 0)
                hub = current_hub()
                if hub is not None:  # a station's selector loop: a pty or tty fd works there too
                    if not hub.wait(self._fd, READ, timeout):
                        return b""
                elif not select.select([self._fd], [], [], max(timeout, 0.0))[0]:
                    return b""
                return bytes(self._port.read(max(1, min(self._port.in_waiting, max_bytes))))
            self._port.timeout = max(timeout, 0.0)  # a port without a file descriptor
            first = bytes(self._port.read(1))
            if not first:
                return b""
            self._port.timeout = 0
            waiting = min(self._port.in_waiting, max_bytes - 1)
            return first + (bytes(self._port.read(waiting)) if waiting > 0 else b"")
        except (pyserial.SerialException, OSError) as e:
            raise TransportError("serial link cut while receiving", code="link-closed") from e

    def close(self) -> None:
        self._port.close()
