"""Test-only wires between a `FramedLink` and a `ChipEndpoint`.

- `LoopStream`: the chip endpoint called synchronously inside ``write``, under a fake clock that
  a read with nothing to deliver advances by its timeout. Deterministic and instant.
- `serve_tcp` / `serve_pty`: a thread pumping bytes between a real socket or pseudo-terminal and
  an endpoint, as a chip board does (a stand-in, not the board).
- `FaultyStream`: wraps any stream and, from a seeded RNG, drops, corrupts, duplicates and delays
  whole frames written, and corrupts or drops bytes read.
"""

from __future__ import annotations

import os
import random
import re
import select
import socket
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import TransportError
from trustprov.link.stream import ByteStream

FRAME = re.compile(rb"\xc0[^\xc0]+\xc0")


def split_frames(data: bytes) -> list[bytes]:
    return FRAME.findall(data)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LoopStream:
    """Host side of a synchronous wire: every write is fed to the endpoint at once."""

    bytes_per_second: float | None = None

    def __init__(
        self,
        endpoint: ChipEndpoint,
        clock: FakeClock,
        *,
        to_chip: Callable[[bytes], bytes] = lambda d: d,
        to_host: Callable[[bytes], bytes] = lambda d: d,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.to_chip = to_chip  # a fault on the way in (e.g. drop the nth frame)
        self.to_host = to_host
        self.pending = bytearray()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            raise TransportError("closed", code="link-closed")
        self.written.append(data)
        self.pending += self.to_host(self.endpoint.feed(self.to_chip(data)))

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self.closed:
            raise TransportError("closed", code="link-closed")
        if not self.pending:
            self.clock.now += timeout
            self.endpoint.poll()
            return b""
        data = bytes(self.pending[:max_bytes])
        del self.pending[:max_bytes]
        return data

    def close(self) -> None:
        self.closed = True


@dataclass
class Faults:
    """Probabilities per frame written (drop, corrupt, duplicate, delay) and per chunk read."""

    drop: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0  # hold a frame back and send it after the next write (reordering)
    read_corrupt: float = 0.0
    read_drop: float = 0.0
    seed: int = 1
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def hit(self, what: str) -> bool:
        p = getattr(self, what)
        if p and self.rng.random() < p:
            self.counts[what] = self.counts.get(what, 0) + 1
            return True
        return False

    def corrupt_bytes(self, data: bytes) -> bytes:
        out = bytearray(data)
        out[self.rng.randrange(len(out))] ^= 1 << self.rng.randrange(8)
        return bytes(out)


class FaultyStream:
    def __init__(self, inner: ByteStream, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.held: list[bytes] = []

    @property
    def bytes_per_second(self) -> float | None:
        return self.inner.bytes_per_second

    def write(self, data: bytes) -> None:
        f = self.faults
        out = list(self.held)
        self.held = []
        for original in split_frames(data):
            if f.hit("drop"):
                continue
            frame = f.corrupt_bytes(original) if f.hit("corrupt") else original
            if f.hit("delay"):
                self.held.append(frame)
                continue
            out.append(frame)
            if f.hit("duplicate"):
                out.append(frame)
        if out:
            self.inner.write(b"".join(out))

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data = self.inner.read(max_bytes, timeout)
        if data and self.faults.hit("read_drop"):
            return b""
        if data and self.faults.hit("read_corrupt"):
            return self.faults.corrupt_bytes(data)
        return data

    def close(self) -> None:
        self.inner.close()


# -- threads that stand in for a chip board ----------------------------------------------------
def _pump(
    *,
    endpoint: ChipEndpoint,
    lock: threading.Lock,
    stop: threading.Event,
    recv: Callable[[], bytes | None],
    send: Callable[[bytes], None],
    ready: Callable[[float], bool],
) -> None:
    while not stop.is_set():
        if not ready(0.02):
            with lock:
                endpoint.poll()
            continue
        data = recv()
        if data is None:
            return
        with lock:
            out = endpoint.feed(data)
        if out:
            send(out)


@dataclass
class Served:
    address: str
    endpoint: ChipEndpoint
    lock: threading.Lock  # hold it to reset the endpoint (a power cut) between feeds


@contextmanager
def serve_tcp(endpoint: ChipEndpoint) -> Iterator[Served]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()
    lock = threading.Lock()

    server.settimeout(5)

    def run() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:

            def recv() -> bytes | None:
                try:
                    return conn.recv(65536) or None
                except OSError:
                    return None

            def ready(t: float) -> bool:
                return bool(select.select([conn], [], [], t)[0])

            _pump(
                endpoint=endpoint, lock=lock, stop=stop, recv=recv, send=conn.sendall, ready=ready
            )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield Served(f"tcp://127.0.0.1:{port}", endpoint, lock)
    finally:
        stop.set()
        server.close()
        thread.join(5)


@contextmanager
def serve_pty(endpoint: ChipEndpoint) -> Iterator[Served]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()
    lock = threading.Lock()

    def recv() -> bytes | None:
        try:
            return os.read(master, 65536) or None
        except OSError:
            return None

    def send(data: bytes) -> None:
        view = memoryview(data)
        while view:
            select.select([], [master], [], 1)
            view = view[os.write(master, view) :]

    def ready(t: float) -> bool:
        return bool(select.select([master], [], [], t)[0])

    pump = {"endpoint": endpoint, "lock": lock, "stop": stop, "recv": recv, "send": send}
    thread = threading.Thread(target=_pump, kwargs={**pump, "ready": ready}, daemon=True)
    thread.start()
    try:
        yield Served(f"serial://{path}?baud=1000000", endpoint, lock)
    finally:
        stop.set()
        thread.join(5)
        os.close(master)
        os.close(slave)
