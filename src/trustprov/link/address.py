"""Chips by address: ``tcp://HOST:PORT`` (a socket of a chip board) or
``serial:///dev/ttyUSB0?baud=1000000`` (a chip on a serial line).

Invariant: a malformed address is `InputError` with one line naming the address and what is
wrong; an address that parses but cannot be reached is `TransportError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trustprov.errors import InputError
from trustprov.link.framed import FramedLink
from trustprov.link.serial import SerialStream
from trustprov.link.stream import ByteStream
from trustprov.link.tcp import TcpStream

DEFAULT_BAUD = 115_200
FORMS = "tcp://HOST:PORT or serial:///dev/PORT[?baud=N]"


@dataclass(frozen=True)
class Address:
    scheme: str  # "tcp" or "serial"
    host: str = ""
    port: int = 0
    path: str = ""
    baud: int = DEFAULT_BAUD

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
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
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise bad("nothing may follow HOST:PORT")
        return Address("tcp", host=parts.hostname, port=port)
    if parts.scheme == "serial":
        if parts.netloc or not parts.path.startswith("/") or parts.fragment:
            raise bad("a device path is required, as serial:///dev/ttyUSB0")
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
        if set(query) - {"baud"} or any(len(v) != 1 for v in query.values()):
            raise bad("the only option is baud=N")
        baud = DEFAULT_BAUD
        if "baud" in query:
            text = query["baud"][0]
            if not text.isdigit() or not 50 <= int(text) <= 20_000_000:
                raise bad("baud must be a number from 50 to 20000000")
            baud = int(text)
        return Address("serial", path=parts.path, baud=baud)
    raise bad("unknown scheme")


def open_stream(address: str, *, connect_timeout: float = 5.0) -> ByteStream:
    where = parse_address(address)
    if where.scheme == "tcp":
        return TcpStream.connect(where.host, where.port, timeout=connect_timeout)
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
