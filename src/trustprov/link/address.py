"""Chips by address: ``tcp://HOST:PORT`` (a socket of a chip board) or
``serial:///dev/ttyUSB0?baud=1000000`` (a chip on a serial line). ``tcp://HOST:PORT?baud=N``
is a socket whose wire is a UART at N baud behind the board (`chip serve --baud`): the link
scales its timeouts to that line rate, as on a serial port.

Invariant: a malformed address is `InputError` with one line naming the address and what is
wrong; an address that parses but cannot be reached is `TransportError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trustprov.errors import InputError
from trustprov.link.framed import FramedLink
from trustprov.link.serial import SerialStream
from trustprov.link.stream import ByteStream
from trustprov.link.tcp import TcpStream

DEFAULT_BAUD = 115_200
FORMS = "tcp://HOST:PORT[?baud=N] or serial:///dev/PORT[?baud=N]"


@dataclass(frozen=True)
class Address:
    scheme: str  # "tcp" or "serial"
    host: str = ""
    port: int = 0
    path: str = ""
    baud: int = DEFAULT_BAUD
    line_baud: int | None = None  # tcp: the UART behind the socket, if the board says so

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            rate = "" if self.line_baud is None else f"?baud={self.line_baud}"
            return f"tcp://{host}:{self.port}{rate}"
        return f"serial://{self.path}?baud={self.baud}"


def parse_address(address: str) -> Address:
    def bad(why: str) -> InputError:
        return InputError(f"bad chip address {address!r}: {why} (expected {FORMS})")

    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as e:
        raise bad("malformed") from e
    if parts.scheme == "tcp":
        if not parts.hostname or port is None or port == 0:
            raise bad("host and port are required")
        if parts.path not in ("", "/") or parts.fragment or parts.username:
            raise bad("nothing but ?baud=N may follow HOST:PORT")
        line = _baud(parts.query, bad)
        return Address("tcp", host=parts.hostname, port=port, line_baud=line)
    if parts.scheme == "serial":
        if parts.netloc or not parts.path.startswith("/") or parts.fragment:
            raise bad("a device path is required, as serial:///dev/ttyUSB0")
        baud = _baud(parts.query, bad)
        return Address("serial", path=parts.path, baud=DEFAULT_BAUD if baud is None else baud)
    raise bad("unknown scheme")


def _baud(query_text: str, bad: Callable[[str], InputError]) -> int | None:
    """The ``baud=N`` of an address's query, None if it has none."""
    if not query_text:
        return None
    query = parse_qs(query_text, keep_blank_values=True, strict_parsing=False)
    if set(query) != {"baud"} or any(len(v) != 1 for v in query.values()):
        raise bad("the only option is baud=N")
    text = query["baud"][0]
    if not text.isdigit() or not 50 <= int(text) <= 20_000_000:
        raise bad("baud must be a number from 50 to 20000000")
    return int(text)


def open_stream(address: str, *, connect_timeout: float = 5.0) -> ByteStream:
    where = parse_address(address)
    if where.scheme == "tcp":
        stream = TcpStream.connect(where.host, where.port, timeout=connect_timeout)
        if where.line_baud is not None:
            stream.bytes_per_second = where.line_baud / 10  # 8N1
        return stream
    return SerialStream(where.path, where.baud)


def open_link(address: str, *, connect_timeout: float = 5.0, **options: Any) -> FramedLink:
    """A framed link to the chip at ``address``, hello done (``link.info`` holds the chip's
    limits). ``options`` go to `FramedLink` (timeout, max_retries, window, max_frame)."""
    stream = open_stream(address, connect_timeout=connect_timeout)
    link = FramedLink(stream, **options)
    try:
        link.hello()
    except BaseException:
        link.close()
        raise
    return link
