"""A byte stream over a TCP connection (a chip board on the factory network).

Invariants: socket errors and a peer's close surface as `TransportError` with code
"link-closed"; a read that times out returns ``b""``; a write that cannot proceed for
``write_timeout`` seconds (the peer stopped reading) is "link-timeout", never a hang.

The socket stays non-blocking and waits with poll: a station drives many sockets and reads
after every window, and Python's socket timeouts cost an extra system call per operation. Inside
a task of a station's selector loop (`link.hub`) it waits through the loop instead, so a silent
or stalled socket parks only its own task.
"""

from __future__ import annotations

import select
import socket
import time

from trustprov.errors import TransportError
from trustprov.link.hub import READ, WRITE, connect, current_hub

WRITE_TIMEOUT = 30.0


class TcpStream:
    bytes_per_second: float | None = None  # a socket is not paced by a line rate

    def __init__(self, sock: socket.socket, *, write_timeout: float = WRITE_TIMEOUT) -> None:
        # frames are small and a window waits on their ACKs: send each at once
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock = sock
        self._write_timeout = write_timeout
        self._in = select.poll()
        self._in.register(sock, select.POLLIN)
        self._out = select.poll()
        self._out.register(sock, select.POLLOUT)
        self._closed = False

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = 5.0) -> TcpStream:
        try:
            sock = connect(host, port, timeout)  # in a station's selector loop, parks its task
        except OSError as e:
            raise TransportError(
                f"cannot connect to tcp://{host}:{port}: {e.strerror or e or 'no answer'}",
                code="link-closed",
            ) from e
        return cls(sock)

    def __repr__(self) -> str:
        return f"TcpStream(closed={self._closed})"

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("link closed", code="link-closed")

    def write(self, data: bytes) -> None:
        self._check_open()
        view = memoryview(data)
        deadline = 0.0
        try:
            while view:
                try:
                    view = view[self._sock.send(view) :]
                    continue
                except BlockingIOError:
                    pass
                now = time.monotonic()
                deadline = deadline or now + self._write_timeout
                if now >= deadline:
                    raise TransportError("the other end stopped reading", code="link-timeout")
                hub = current_hub()
                if hub is not None:  # a station's selector loop: let the other sockets run
                    hub.wait(self._sock, WRITE, deadline - now)
                else:
                    self._out.poll(max(1, int((deadline - now) * 1000)))
        except OSError as e:
            raise TransportError("link cut while sending", code="link-closed") from e

    def read(self, max_bytes: int, timeout: float) -> bytes:
        self._check_open()
        try:
            hub = current_hub()
            if hub is not None:  # a station's selector loop: let the other sockets run
                if not hub.wait(self._sock, READ, timeout):
                    return b""
            elif not self._in.poll(max(0, int(timeout * 1000 + 0.999))):
                return b""
            data = self._sock.recv(max_bytes)
        except BlockingIOError:
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
