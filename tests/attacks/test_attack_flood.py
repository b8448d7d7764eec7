"""Fragment flood: a chip, a board or a programmer between the station and a chip answers a
request with frames no genuine chip sends (tens of thousands of empty fragments, fragments of
one byte past the bound, ACKs of nothing, bytes without a frame), as fast as the socket takes
them. The station drives every socket from one thread (`link.hub`): the flood must end the
flooding socket's exchange after a bounded amount of work, and the other sockets must keep their
pace meanwhile (docs/protocol.md 12.4; docs/threat-model.md, "link flood").

Before this bound the host re-added the lengths of all earlier fragments at each new one: the
empty-fragment flood held the station's thread for many seconds, and every other socket with it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from wire import serve_tcp

from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import TransportError
from trustprov.formats.frame import (
    PROTOCOL_VERSION,
    FrameDecoder,
    FrameType,
    LinkInfo,
    decode_hello,
    encode_frame,
    fragment_bound,
)
from trustprov.formats.limits import LIMITS
from trustprov.link.address import open_link
from trustprov.link.hub import Hub

Flood = Callable[[int], bytes]  # the seq of the request -> one burst of flood bytes
BOUND = fragment_bound(LIMITS.link_message, LIMITS.link_frame)


def _empty(seq: int) -> bytes:
    return b"".join(encode_frame(FrameType.RESPONSE, seq, k, b"", more=True) for k in range(4096))


def _tiny(seq: int) -> bytes:
    frames = (encode_frame(FrameType.RESPONSE, seq, k, b"x", more=True) for k in range(BOUND * 4))
    return b"".join(frames)


def _stale(seq: int) -> bytes:
    return encode_frame(FrameType.ACK, (seq - 1000) % 65536, 0) * 4096


def _junk(_seq: int) -> bytes:
    return b"\x55" * 65536  # never an END: the decoder drops it, a byte budget bounds it


FLOODS: dict[str, tuple[Flood, set[str]]] = {
    "empty-fragments": (_empty, {"malformed", "link-flood"}),
    "fragments-past-the-bound": (_tiny, {"malformed", "link-flood"}),
    "stale-acks": (_stale, {"link-flood"}),
    "no-frame-at-all": (_junk, {"link-flood", "link-timeout"}),
}


@pytest.fixture
def flooder(request: pytest.FixtureRequest) -> Iterator[str]:
    """A "chip" on a TCP port that says hello properly, then answers the first request with
    ``flood`` bursts until the station hangs up."""
    flood: Flood = request.param
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        decoder = FrameDecoder()
        boot = b"\xb0\x07\x5e\xed"
        with conn:
            conn.settimeout(10)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for f in decoder.feed(data):
                    if f.kind is FrameType.HELLO:
                        _, link_id = decode_hello(f.payload)
                        info = LinkInfo(
                            PROTOCOL_VERSION, 8, LIMITS.link_frame, 1 << 20, boot, link_id
                        )
                        conn.sendall(encode_frame(FrameType.HELLO_ANSWER, payload=info.to_bytes()))
                    elif f.kind is FrameType.REQUEST:
                        burst = flood(f.seq)
                        try:
                            while not stop.is_set():
                                conn.sendall(burst)
                        except OSError:
                            return  # the station hung up: the flood is over

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()
    thread.join(10)


@pytest.mark.parametrize(
    ("flooder", "codes"),
    [pytest.param(f, c, id=name) for name, (f, c) in FLOODS.items()],
    indirect=["flooder"],
)
def test_a_flooding_chip_ends_its_own_exchange_and_holds_up_no_other(
    flooder: str, codes: set[str]
) -> None:
    genuine = ChipEndpoint(lambda r: b"re:" + r)
    latencies: list[float] = []
    flood_result: dict[str, object] = {}
    flooding = threading.Event()

    with serve_tcp(genuine) as served:

        def flooded() -> None:
            link = open_link(flooder, timeout=0.5)
            start = time.perf_counter()
            flooding.set()
            try:
                link.exchange(b"status")
            except TransportError as e:
                flood_result["code"] = e.code
            finally:
                flood_result["seconds"] = time.perf_counter() - start
                flooding.clear()
                link.close()

        def other() -> None:
            link = open_link(served.address, timeout=0.5)
            try:
                for k in range(400):
                    t = time.perf_counter()
                    assert link.exchange(b"%d" % k) == b"re:%d" % k
                    if flooding.is_set():
                        latencies.append(time.perf_counter() - t)
                    if "seconds" in flood_result and k > 20:
                        break
            finally:
                link.close()

        with Hub() as hub:
            hub.spawn(other)
            hub.spawn(flooded)
            deadline = time.monotonic() + 60
            while hub.busy and time.monotonic() < deadline:
                hub.run_once(0.05)

    assert flood_result.get("code") in codes, flood_result
    seconds = float(flood_result["seconds"])  # type: ignore[arg-type]
    worst = max(latencies, default=0.0)
    median = sorted(latencies)[len(latencies) // 2] if latencies else 0.0
    print(
        f"\nflood ended in {seconds * 1000:.0f} ms ({flood_result['code']}); the other socket "
        f"during it: {len(latencies)} exchanges, median {median * 1000:.2f} ms, "
        f"worst {worst * 1000:.2f} ms"
    )
    # the flood costs bounded work: at most the message's time budget (9 x 0.5 s) for the
    # frameless one, far less for the others; and the other socket never waits for it long
    assert seconds < 6.0
    assert worst < 0.5
