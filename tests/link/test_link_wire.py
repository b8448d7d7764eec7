"""FIG. 3 on a chip at the other end of a real wire: a TCP loopback socket and a pseudo-terminal
opened through pyserial, the chip behind `ChipEndpoint`, the host on `FramedLink`, with faults on
the wire and a power cut mid-run. Each run ends with the chip provisioned exactly once."""

from __future__ import annotations

import socket as socket_module
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import Bench, assert_holds_world_assets, assert_untouched, world_job
from wire import Faults, FaultyStream, Served, serve_pty, serve_tcp

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import InputError, TransportError
from trustprov.formats.limits import LIMITS
from trustprov.link import messages
from trustprov.link.address import open_link, open_stream, parse_address
from trustprov.link.client import ChipClient
from trustprov.link.framed import FramedLink
from trustprov.link.port import ChipPort
from trustprov.link.tcp import TcpStream
from trustprov.roles.cm import Job, provision_chip

TIMEOUTS = {"timeout": 0.25, "max_retries": 12}


class Socket:
    """A chip in a programming socket: power it on, count the requests its port runs.

    The chip is powered on in the thread that serves the wire, on that thread's own farm
    connection (SQLite connections stay in their thread)."""

    def __init__(self, bench: Bench, uid: bytes, max_frame: int) -> None:
        self.bench = bench
        self.uid = uid
        self.requests: list[bytes] = []
        self.port: ChipPort | None = None
        self.farm: Farm | None = None
        self.endpoint = ChipEndpoint(
            self._handle,
            max_message=LIMITS.link_message,
            max_frame=max_frame,
            idle_timeout=30.0,
            on_idle=lambda: None,
        )

    def _handle(self, request: bytes) -> bytes:
        self.requests.append(request)
        if self.port is None:
            self.farm = self.farm or Farm(self.bench.path)
            self.port = ChipPort(Chip(self.farm, self.farm.load(self.uid)))
        return self.port.handle(request)

    def power_cycle(self) -> None:
        """RAM and the link are lost; persistent state (the farm) is what it is."""
        self.port = None
        self.endpoint.reset()

    def ops(self) -> list[str]:
        return [messages.decode_request(r)[0] for r in self.requests]


@pytest.fixture
def bench(cm_farm: Path) -> Iterator[Bench]:
    with Bench(cm_farm) as b:
        yield b


@pytest.fixture
def job(world: Any) -> Job:
    return world_job(world)


@contextmanager
def serving(kind: str, socket: Socket) -> Iterator[Served]:
    with (serve_tcp if kind == "tcp" else serve_pty)(socket.endpoint) as served:
        yield served


def faulty_link(address: str, faults: Faults) -> FramedLink:
    link = FramedLink(FaultyStream(open_stream(address), faults), **TIMEOUTS)
    link.hello()
    return link


def expected_ops(job: Job) -> list[str]:
    return ["rom.boot", "cm.begin"] + ["cm.chunk"] * len(job.prepared.chunks) + ["cm.finish"]


@pytest.mark.parametrize("kind", ["tcp", "pty"])
def test_fig3_over_the_wire(kind: str, bench: Bench, job: Job, world: Any) -> None:
    uid = bench.uids()[0]
    socket = Socket(bench, uid, max_frame=4096 if kind == "pty" else LIMITS.link_frame)
    with serving(kind, socket) as served:
        link = open_link(served.address, **TIMEOUTS)
        try:
            outcome = provision_chip(ChipClient(link), uid, job)
        finally:
            link.close()
    assert outcome.result == "provisioned", outcome
    assert socket.ops() == expected_ops(job)
    assert_holds_world_assets(bench.read(uid), world.public_keys)


@pytest.mark.parametrize(("kind", "seed"), [("tcp", 1), ("tcp", 2), ("pty", 3)])
def test_fig3_pipelined_through_faults_runs_each_request_once(
    kind: str, seed: int, bench: Bench, job: Job, world: Any
) -> None:
    uid = bench.uids()[1]
    socket = Socket(bench, uid, max_frame=2048)
    faults = Faults(
        drop=0.04, corrupt=0.04, duplicate=0.04, delay=0.04, read_corrupt=0.03, seed=seed
    )
    requests = [job.boot_request, job.prepared.begin, *job.prepared.chunks, job.prepared.finish]
    with serving(kind, socket) as served:
        link = faulty_link(served.address, faults)
        try:
            responses = link.exchange_many(requests)
        finally:
            link.close()
    for response in responses:
        messages.decode_response(response)  # every one is an answer, none a refusal
    assert socket.requests == requests  # in order, exactly once
    assert sum(faults.counts.values()) > 0, faults.counts
    if faults.counts.get("drop") or faults.counts.get("corrupt"):
        assert link.stats.resent > 0
    assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_a_power_cut_mid_chunk_is_reported_and_a_rerun_provisions_once(
    bench: Bench, job: Job, world: Any
) -> None:
    uid = bench.uids()[2]
    socket = Socket(bench, uid, max_frame=1024)
    cut_at = 3  # boot, begin, one chunk ran; then the power goes
    with serve_tcp(socket.endpoint) as served:
        link = open_link(served.address, **TIMEOUTS)
        stream = link._stream
        real_write = stream.write

        def write(data: bytes) -> None:
            if len(socket.requests) == cut_at and not cut_at_done:
                with served.lock:
                    socket.power_cycle()
                    cut_at_done.append(True)
            real_write(data)

        cut_at_done: list[bool] = []
        stream.write = write  # type: ignore[method-assign]
        first = provision_chip(ChipClient(link), uid, job)
        assert cut_at_done
        assert (first.result, first.error_code) == ("failed", "chip-reset")
        assert_untouched(bench.read(uid))
        runs_before = len(socket.requests)
        stream.write = real_write  # type: ignore[method-assign]
        link.hello()  # the station starts over on the fresh chip, knowingly
        second = provision_chip(ChipClient(link), uid, job)
        link.close()
    assert second.result == "provisioned", second
    assert socket.ops()[runs_before:] == expected_ops(job)
    assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_a_cut_cable_is_link_closed(bench: Bench) -> None:
    socket = Socket(bench, bench.uids()[3], max_frame=1024)
    with serve_tcp(socket.endpoint) as served:
        link = open_link(served.address, **TIMEOUTS)
        link._stream.close()
        with pytest.raises(TransportError) as e:
            ChipClient(link).status()
    assert e.value.code in ("link-closed", "link-down")


def test_nobody_listening_is_a_transport_error() -> None:
    with serve_tcp(ChipEndpoint(lambda r: r)) as served:
        address = served.address
    with pytest.raises(TransportError) as e:
        open_link(address, connect_timeout=1.0, **TIMEOUTS)
    assert e.value.code in ("link-closed", "link-timeout")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1:7000", "tcp://127.0.0.1:7000"),
        ("tcp://[::1]:7000", "tcp://[::1]:7000"),
        ("tcp://127.0.0.1:7000?baud=115200", "tcp://127.0.0.1:7000?baud=115200"),
        ("serial:///dev/ttyUSB0?baud=1000000", "serial:///dev/ttyUSB0?baud=1000000"),
        ("serial:///dev/pts/3", "serial:///dev/pts/3?baud=115200"),
    ],
)
def test_addresses_parse(address: str, expected: str) -> None:
    assert str(parse_address(address)) == expected


@pytest.mark.parametrize(
    "address",
    [
        "",
        "localhost:7000",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:99999",
        "tcp://127.0.0.1:port",
        "tcp://:7000",
        "tcp://127.0.0.1:7000/x",
        "tcp://127.0.0.1:7000?baud=fast",
        "tcp://127.0.0.1:7000?baud=30000000",
        "tcp://127.0.0.1:7000?speed=9600",
        "udp://127.0.0.1:7000",
        "serial://dev/ttyUSB0",
        "serial:///dev/ttyUSB0?baud=fast",
        "serial:///dev/ttyUSB0?speed=9600",
        "serial:///dev/ttyUSB0?baud=1&baud=2",
    ],
)
def test_bad_addresses_are_input_errors_in_one_line(address: str) -> None:
    with pytest.raises(InputError) as e:
        parse_address(address)
    assert "\n" not in e.value.message
    assert repr(address) in e.value.message


def test_a_serial_line_whose_far_end_goes_away_is_a_transport_error() -> None:
    with serve_pty(ChipEndpoint(lambda r: r)) as served:
        link = open_link(served.address, **TIMEOUTS)
        assert link.exchange(b"ping") == b"ping"
    with pytest.raises(TransportError) as e:  # the pseudo-terminal's master side is closed
        link.exchange(b"ping")
    assert e.value.code == "link-closed"
    link.close()


def test_a_peer_that_stops_reading_fails_the_write_instead_of_hanging() -> None:
    server = socket_module.create_server(("127.0.0.1", 0))
    try:
        client = socket_module.create_connection(server.getsockname())
        peer, _ = server.accept()  # accepted, never read
        stream = TcpStream(client, write_timeout=0.2)
        with pytest.raises(TransportError) as e:  # fills both kernel buffers, then waits 0.2 s
            stream.write(bytes(256 * 1024 * 1024))
        assert e.value.code == "link-timeout"
        stream.close()
        peer.close()
    finally:
        server.close()
