"""The host's side of a chip board's handler protocol (docs/protocol.md, "Chip board: handler
protocol"): place a chip of the board's tray in a socket, take it out, read what each socket
holds, power-cycle a socket.

JSON lines over TCP. Invariant: every answer is bounded (`MAX_ANSWER` bytes), must be one JSON
object, and anything else, or a board that does not answer within the timeout, raises
`TransportError` with code ``board-down`` (the connection is then useless and closed); a refusal
by the board raises `TransportError` with the board's code.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from trustprov.errors import InputError, TransportError
from trustprov.link.hub import READ, WRITE, connect, wait

MAX_ANSWER = 1 << 20
TIMEOUT = 5.0


def parse_tcp(address: str, what: str = "board") -> tuple[str, int]:
    host, sep, port = address.removeprefix("tcp://").rpartition(":")
    if not address.startswith("tcp://") or not sep or not host or not port.isdigit():
        raise InputError(f"{what} address {address!r} is not tcp://HOST:PORT")
    if not 0 < int(port) <= 65535:
        raise InputError(f"{what} address {address!r}: port out of range")
    return host, int(port)


class BoardClient:
    """One connection to a board's handler; one per thread. With ``token`` (a board beyond
    loopback requires one), every new connection presents it first; it is never shown."""

    def __init__(self, address: str, *, timeout: float = TIMEOUT, token: str | None = None) -> None:
        self.address = address
        self._where = parse_tcp(address)
        self._timeout = timeout
        self._token = token
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    def __repr__(self) -> str:
        return f"BoardClient({self.address!r})"

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> BoardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> list[dict[str, Any]]:
        sockets = self._call({"op": "status"}).get("sockets")
        if not isinstance(sockets, list) or not all(isinstance(s, dict) for s in sockets):
            raise TransportError(f"board {self.address}: malformed status", code="board-down")
        return sockets

    def chips(self) -> list[bytes]:
        """The UIDs of the chips the board holds (its farm or tray), seated or not; at most
        `MAX_CHIPS_LISTED` of them (a board holding more says so: the host is told)."""
        doc = self._call({"op": "chips"})
        listed = doc.get("chips")
        if not isinstance(listed, list) or not all(
            isinstance(u, str) and len(u) == 32 for u in listed
        ):
            raise TransportError(f"board {self.address}: malformed chip list", code="board-down")
        try:
            return [bytes.fromhex(u) for u in listed]
        except ValueError as e:
            raise TransportError(
                f"board {self.address}: malformed chip list", code="board-down"
            ) from e

    def insert(self, socket_index: int, uid: bytes, *, replace: bool = False) -> None:
        """Place chip ``uid``; with ``replace``, whatever chip is in the socket leaves first."""
        request: dict[str, Any] = {"op": "insert", "socket": socket_index, "chip": uid.hex()}
        self._call({**request, "replace": True} if replace else request)

    def remove(self, socket_index: int) -> None:
        self._call({"op": "remove", "socket": socket_index})

    def power_cycle(self, socket_index: int, after: int = 0) -> None:
        self._call({"op": "power-cycle", "socket": socket_index, "after": after})

    def kill(self, socket_index: int) -> None:
        self._call({"op": "kill", "socket": socket_index})

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._sock is None and self._token is not None:
            self._exchange({"op": "auth", "token": self._token})
        return self._exchange(request)

    def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            sock = self._connect()
            self._send(sock, json.dumps(request, separators=(",", ":")).encode() + b"\n")
            answer = self._line(sock)
        except OSError as e:
            self.close()
            raise TransportError(
                f"board {self.address} does not answer ({e.strerror or e or 'no answer'})",
                code="board-down",
            ) from e
        try:
            doc = json.loads(answer)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
            self.close()
            raise TransportError(f"board {self.address}: malformed answer", code="board-down")
        if not doc["ok"]:
            code, message = doc.get("error"), doc.get("message")
            raise TransportError(
                f"board {self.address}: {message if isinstance(message, str) else 'refused'}"[:300],
                code=code if isinstance(code, str) and code.isprintable() else "board",
            )
        return doc

    def _connect(self) -> socket.socket:
        if self._sock is None:
            # non-blocking, every wait through `link.hub.wait`: in a station's selector loop a
            # slow board parks only the task asking it; elsewhere the wait is poll
            sock = connect(*self._where, self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._buf.clear()
        return self._sock

    def _send(self, sock: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                if not wait(sock, WRITE, self._timeout):
                    raise TimeoutError("the board stopped reading") from None

    def _line(self, sock: socket.socket) -> bytes:
        while (n := self._buf.find(b"\n")) < 0:
            if len(self._buf) > MAX_ANSWER:
                raise ConnectionError("answer too long")
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                if not wait(sock, READ, self._timeout):
                    raise TimeoutError("no answer") from None
                continue
            if not data:
                raise ConnectionResetError("connection closed")
            self._buf.extend(data)
        line = bytes(self._buf[:n])
        del self._buf[: n + 1]
        return line
