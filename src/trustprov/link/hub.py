"""One thread waits on every wire of a station: a selector loop whose tasks are greenlets.

A station drives many sockets at once. A thread per socket costs a wake-up and a hand-over of the
interpreter lock per wait, more the more threads there are. Here one thread runs a `Hub`: one
`selectors` selector over every socket, and each socket's work as a task (a greenlet) that runs
until it waits for bytes, then lets the hub run another. The work itself stays plain sequential
code (the framed link, the chip client, FIG. 3): only the streams' waits (`wait`) change.

Invariants:
- One OS thread: the hub and its tasks never run at the same time, so they share state without
  locks; a task runs until it waits on a file descriptor, parks for work, or ends.
- A wait never blocks the thread while another task could run: a stalled or silent socket parks
  its own task only (until its timeout), every other socket goes on.
- Outside a task (no hub, or the hub's own loop), `wait` blocks the thread with poll, as before:
  the same streams serve a single link from a command line.
- An exception that escapes a task ends `run_once` with it: the caller decides (tasks are meant
  to report their failures themselves).
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import greenlet  # type: ignore[import-untyped]  # greenlet ships no type information

__all__ = ["READ", "WRITE", "Hub", "connect", "wait"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE

_local = threading.local()


class Hub:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._selector = selectors.DefaultSelector()
        self._loop: Any = greenlet.getcurrent()  # the greenlet that runs `run_once`
        self._ready: deque[tuple[Any, bool]] = deque()
        self._timers: list[tuple[float, int, Any]] = []
        self._waits: dict[Any, tuple[int, int]] = {}  # task -> (token, fd) of its wait
        self._watched: dict[int, tuple[Any, int, Any]] = {}  # fd -> (file, events, task)
        self._tokens = itertools.count()
        self._live = 0  # tasks spawned and not ended

    def __repr__(self) -> str:
        return f"Hub({self._live} tasks)"

    def __enter__(self) -> Hub:
        if getattr(_local, "hub", None) is not None:
            raise RuntimeError("a hub already runs in this thread")
        _local.hub = self
        self._loop = greenlet.getcurrent()
        return self

    def __exit__(self, *exc: object) -> None:
        _local.hub = None
        self._selector.close()

    def spawn(self, work: Callable[..., None], *args: Any) -> None:
        def body(_start: object) -> None:
            try:
                work(*args)
            finally:
                self._live -= 1

        task = greenlet.greenlet(body, parent=self._loop)
        self._live += 1
        self._ready.append((task, True))

    @property
    def busy(self) -> bool:
        """Whether a task has not ended yet."""
        return self._live > 0

    def current_task(self) -> Any:
        return greenlet.getcurrent()

    def in_task(self) -> bool:
        return greenlet.getcurrent() is not self._loop

    # -- from a task --------------------------------------------------------------------------
    def wait(self, fileobj: Any, events: int, timeout: float) -> bool:
        """Park the calling task until ``fileobj`` is ready for ``events`` (True) or ``timeout``
        seconds pass (False)."""
        task = greenlet.getcurrent()
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        # a file stays registered after its wait, so the next wait on it costs no system call;
        # a registration of another file (a closed socket's number reused) or events is redone
        watched = self._watched.get(fd)
        if watched != (fileobj, events, task):
            if watched is not None:
                self._selector.unregister(fd)
            self._selector.register(fileobj, events, task)
            self._watched[fd] = (fileobj, events, task)
        token = next(self._tokens)
        self._waits[task] = (token, fd)
        heapq.heappush(self._timers, (self._clock() + max(timeout, 0.0), token, task))
        try:
            return bool(self._loop.switch())
        finally:
            self._waits.pop(task, None)

    def on_readable(self, fileobj: Any, callback: Callable[[], None]) -> None:
        """Call ``callback`` in the loop whenever ``fileobj`` is readable (it must read it)."""
        self._selector.register(fileobj, READ, callback)

    def park(self) -> None:
        """Park the calling task until `wake` names it."""
        self._loop.switch()

    # -- from the loop ------------------------------------------------------------------------
    def wake(self, task: Any) -> None:
        self._ready.append((task, True))

    def run_once(self, max_wait: float = 1.0) -> None:
        """Run every task that can run; then wait for the next socket or timer (at most
        ``max_wait`` seconds) and make its task ready."""
        while self._ready:
            task, value = self._ready.popleft()
            if not task.dead:
                task.switch(value)
        if not self.busy:
            return  # nothing left to wait for
        now = self._clock()
        timeout = max_wait
        if self._timers:
            timeout = min(timeout, max(0.0, self._timers[0][0] - now))
        for key, _ in self._selector.select(timeout):
            task = key.data
            if not isinstance(task, greenlet.greenlet):
                task()  # an `on_readable` callback
            elif (waiting := self._waits.get(task)) is not None and waiting[1] == key.fd:
                del self._waits[task]
                self._ready.append((task, True))
            else:  # nobody waits on it now; level-triggered, it would fire again and again
                self._selector.unregister(key.fd)
                del self._watched[key.fd]
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            _, token, task = heapq.heappop(self._timers)
            waiting = self._waits.get(task)
            if waiting is not None and waiting[0] == token:
                del self._waits[task]
                self._ready.append((task, False))


def current_hub() -> Hub | None:
    hub: Hub | None = getattr(_local, "hub", None)
    return hub if hub is not None and hub.in_task() else None


def wait(fileobj: Any, events: int, timeout: float) -> bool:
    """Wait until ``fileobj`` (a socket or a file descriptor) is ready for ``events`` or
    ``timeout`` seconds pass: inside a hub's task, by parking the task; elsewhere with poll."""
    hub = current_hub()
    if hub is not None:
        return hub.wait(fileobj, events, timeout)
    poller = select.poll()
    mask = (select.POLLIN if events & READ else 0) | (select.POLLOUT if events & WRITE else 0)
    poller.register(fileobj, mask)
    return bool(poller.poll(max(0, int(timeout * 1000 + 0.999))))


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A non-blocking TCP connection to ``host``:``port``, its handshake waited for with `wait`:
    in a hub, a peer slow to accept (a full backlog retries its SYN after a second) parks only
    the calling task. OSError (TimeoutError on timeout) if it cannot be made."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(errno.EHOSTUNREACH, "no address")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                if not wait(sock, WRITE, timeout):
                    raise TimeoutError(errno.ETIMEDOUT, "timed out")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error
