"""A byte stream over a TCP connection (a chip board on the factory network).

Invariant: socket errors and a peer's close surface as `TransportError` with code "link-closed";
a read that times out returns ``b""``.
"""

from __future__ import annotations

import socket

from trustprov.errors import TransportError


class TcpStream:
    bytes_per_second: float | None = None  # a socket is not paced by a line rate

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )  # frames are small, latency matters
        self._sock = sock
        self._closed = False

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = 5.0) -> TcpStream:
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise TransportError(
                f"cannot connect to tcp://{host}:{port}: {e.strerror or type(e).__name__}",
                code="link-closed",
            ) from e
        return cls(sock)

    def __repr__(self) -> str:
        return f"TcpStream(closed={self._closed})"

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportError("link closed", code="link-closed")
        try:
            self._sock.settimeout(None)
            self._sock.sendall(data)
        except OSError as e:
            raise TransportError("link cut while sending", code="link-closed") from e

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._closed:
            raise TransportError("link closed", code="link-closed")
        try:
            self._sock.settimeout(max(timeout, 0.0))
            data = self._sock.recv(max_bytes)
        except TimeoutError:
            return b""
        except OSError as e:
            raise TransportError("link cut while receiving", code="link-closed") from e
        if not data:
            raise TransportError("the other end closed the link", code="link-closed")
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()
