"""The station's selector loop: many sockets' tasks on one thread, a silent socket parking only
its own task, and the same streams outside a hub."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from trustprov.errors import TransportError
from trustprov.link.hub import READ, Hub, connect, wait
from trustprov.link.tcp import TcpStream


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A TCP server that echoes each connection, except one that sends "mute" first: that one
    is answered nothing, ever (a stalled chip)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data or data.startswith(b"mute"):
                    stop.wait()  # a stalled chip: holds the connection, answers nothing
                    return
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[:2]
    stop.set()
    server.close()


def test_many_sockets_run_on_one_thread(echo: tuple[str, int]) -> None:
    threads: set[int] = set()
    answers: list[bytes] = []

    def task(k: int) -> None:
        stream = TcpStream.connect(*echo)
        try:
            for round_ in range(5):
                message = f"{k}:{round_};".encode()
                stream.write(message)
                got = b""
                while len(got) < len(message):
                    got += stream.read(4096, 5.0)
                answers.append(got)
                threads.add(threading.get_ident())
        finally:
            stream.close()

    with Hub() as hub:
        for k in range(64):
            hub.spawn(task, k)
        while hub.busy:
            hub.run_once()
    assert sorted(answers) == sorted(f"{k}:{r};".encode() for k in range(64) for r in range(5))
    assert threads == {threading.get_ident()}  # every socket served by this one thread


def test_a_silent_socket_parks_only_its_own_task(echo: tuple[str, int]) -> None:
    done: dict[str, float] = {}
    start = time.monotonic()

    def silent() -> None:
        stream = TcpStream.connect(*echo)
        stream.write(b"mute")
        assert stream.read(4096, 1.5) == b""  # the timeout, not a hang
        done["silent"] = time.monotonic() - start
        stream.close()

    def busy(k: int) -> None:
        stream = TcpStream.connect(*echo)
        for _ in range(20):
            stream.write(b"ping")
            assert stream.read(4096, 5.0) == b"ping"
        done[f"busy{k}"] = time.monotonic() - start
        stream.close()

    with Hub() as hub:
        hub.spawn(silent)
        for k in range(8):
            hub.spawn(busy, k)
        while hub.busy:
            hub.run_once()
    assert done["silent"] >= 1.5
    assert all(done[f"busy{k}"] < 1.0 for k in range(8))  # none waited for the silent one


def test_a_connection_refused_in_a_task_is_link_closed() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: the connection is refused
        errors: list[TransportError] = []

        def task() -> None:
            try:
                TcpStream.connect("127.0.0.1", port, timeout=2.0)
            except TransportError as e:
                errors.append(e)

        with Hub() as hub:
            hub.spawn(task)
            while hub.busy:
                hub.run_once()
    assert [e.code for e in errors] == ["link-closed"]


def test_outside_a_hub_waits_block_with_poll(echo: tuple[str, int]) -> None:
    sock = connect(*echo, 2.0)
    with sock:
        assert not wait(sock, READ, 0.05)  # nothing yet: the timeout
        sock.send(b"x")
        assert wait(sock, READ, 2.0)
        assert sock.recv(10) == b"x"


def test_one_hub_per_thread() -> None:
    with Hub(), pytest.raises(RuntimeError), Hub():
        pass


def test_a_socket_closed_and_its_number_reused_is_watched_anew(echo: tuple[str, int]) -> None:
    numbers: list[int] = []
    answers: list[bytes] = []

    def task() -> None:
        for k in range(3):  # each connection likely gets the number the last one freed
            sock = connect(*echo, 2.0)
            numbers.append(sock.fileno())
            sock.send(b"%d" % k)
            assert wait(sock, READ, 2.0)
            answers.append(sock.recv(10))
            sock.close()

    with Hub() as hub:
        hub.spawn(task)
        while hub.busy:
            hub.run_once()
    assert answers == [b"0", b"1", b"2"]
    assert len(numbers) == 3
