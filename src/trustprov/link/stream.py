"""The byte pipe under a framed link: what a TCP socket, a serial port or a test fault injector
provides. Every implementation raises `TransportError` (never an OSError) when the pipe is
closed or cut, and returns ``b""`` from `read` when nothing arrived within the timeout.
"""

from __future__ import annotations

from typing import Protocol


class ByteStream(Protocol):
    # bytes per second the pipe carries, to scale timeouts to frame sizes; None if not limited
    # by a line rate (a socket)
    @property
    def bytes_per_second(self) -> float | None: ...

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes`` bytes, waiting at most ``timeout`` seconds; ``b""`` on timeout."""
        ...

    def close(self) -> None: ...
