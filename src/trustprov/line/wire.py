"""The line over the wire: one station drives every socket of every chip board at once.

One thread waits on every wire at once (the chips do the crypto; the host mostly waits on I/O):
a selector loop (`link.hub.Hub`) on a thread of its own runs each socket's work as a task that
runs until it waits for its socket, so a silent or stalled socket holds up no other. The
runner's thread alone talks to the records store: it claims batches, hands their chips to the
sockets' tasks (a byte on a socket pair wakes the loop), and settles a batch once each of its
chips has an outcome, so a commit never holds up the sockets.

Each socket's task takes chips from the queue and hands each to its `SocketSession`
(line/wire_socket.py: placing, the UID check, FIG. 3, the retries on the same socket).

Invariants:
- One chip alone runs first (the canary; a bare port's one chip is its own), then every socket,
  at most `AHEAD` chips queued per socket in service (section 9, rule 6).
- A stop, by a signal or by the outcomes as they arrive (`RepeatGuard`), takes back every chip
  no socket has started; the chips that finished are recorded, the ones in flight stay claimed.
- A socket out of service gives its chip back to the queue for another; when no socket is left,
  the run ends with `WireError`, as it does when a board's handler no longer answers (its power
  is gone). The chips in flight stay claimed and the rerun settles them from the chips
  (`line.records`), so every chip is provisioned exactly once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trustprov.errors import InputError, TransportError
from trustprov.line.batches import LotRun
from trustprov.line.records import Claim
from trustprov.line.stopping import RepeatGuard
from trustprov.line.wire_socket import (
    LinkOpener,
    SocketLost,
    SocketRef,
    SocketSession,
    WireError,
    board_down,
    close_quietly,
)
from trustprov.link.client import ChipClient
from trustprov.link.hub import Hub
from trustprov.roles.cm import Job, Outcome

log = logging.getLogger(__name__)

AHEAD = 2  # chips queued per socket in service, so no socket waits for the store
STOP_WAIT = 10.0  # seconds the sockets' tasks get to finish their chip when the run ends


@dataclass(frozen=True)
class _Item:
    batch: int
    claim: Claim
    touched: bool = False  # an earlier attempt of this run sent it requests


class WireRunner:
    """Runs a `LotRun` over sockets; `run` is given to `provision_lot` as its runner."""

    def __init__(
        self,
        sockets: Sequence[SocketRef],
        job: Job,
        open_link: LinkOpener,
        *,
        lot_uids: frozenset[bytes] | None = None,
        board_token: str | None = None,
    ) -> None:
        """With ``lot_uids``: one bare port, whose chip (read from the chip) is the only one
        claimed, if it is a chip of the lot. ``board_token``: what the boards' handlers
        require beyond loopback (docs/protocol.md 13.1)."""
        self._board_token = board_token
        self.sockets = list(sockets)
        self.job = job
        self.open_link = open_link
        self._lot_uids = lot_uids
        self._work: deque[_Item] = deque()  # appended by the runner, taken by the tasks
        self._results: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._idle: list[Any] = []  # tasks parked until there is work (the hub's thread only)
        self._stop = threading.Event()
        self._hub: Hub | None = None
        # the runner wakes the hub's thread when it gives work or stops: a byte on this pair
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def run(self, line: LotRun) -> None:
        # the hub's thread sees each outcome as its chip finishes, and stops handing out chips
        # at once when the line stops (section 9 rule 6), as a worker process does
        self._halt = line.stop
        self._guard = RepeatGuard(line.stop, line.stop_after)
        hub = threading.Thread(target=self._serve, daemon=True, name="wire-hub")
        hub.start()
        try:
            self._run(line)
        finally:
            self._stop.set()
            self._nudge()
            hub.join(timeout=STOP_WAIT)
            self._wake_r.close()
            self._wake_w.close()

    def _serve(self) -> None:
        """The hub's thread: every socket's task, until each has ended."""
        try:
            with Hub() as hub:
                self._hub = hub
                hub.on_readable(self._wake_r, self._on_wake)
                for s in self.sockets:
                    hub.spawn(self._socket_loop, s)
                while hub.busy:
                    hub.run_once()
        except BaseException as e:  # noqa: BLE001 - handed to the runner, which raises it
            self._results.put(("fatal", e))
        finally:
            self._results.put(("ended", None))

    def _run(self, line: LotRun) -> None:
        """Section 9 rule 6 as over a farm: one chip alone first (the canary; a bare port's one
        chip is its own), then every socket; a stop, by a signal or by the outcomes seen as
        they arrive (`RepeatGuard`), takes back the chips no socket has started."""
        live = len(self.sockets)
        batches: dict[int, tuple[list[Claim], list[Outcome]]] = {}
        self._given_back: dict[int, int] = {}  # batch -> its chips taken back unstarted
        self._serials = itertools.count(1)
        queued = 0
        canary = 0  # the canary's batch while it runs
        try:
            next_batch = line.next_batch if self._lot_uids is None else self._port_claim(line)
            if self._lot_uids is None and not line.stop.requested:
                first = line.store.claim(line.ref, line.station, 1)
                if first:
                    canary = self._batch(batches, first)
                    queued = 1
            while True:
                while not canary and queued < AHEAD * live and (batch := next_batch()):
                    self._batch(batches, batch)
                    queued += len(batch)
                if not batches:
                    break
                if not self._next_result(batches):
                    live -= 1
                    if live == 0:
                        raise WireError("every socket is out of service; check the boards")
                    continue
                queued -= 1
                for done in self._complete(batches):
                    line.settle(*batches.pop(done), more=done != canary)
                    canary = 0 if done == canary else canary
        except BaseException:
            self._stop.set()
            unstarted = self._drain_queue()
            line._stop(lambda: self._record_partial(line, batches), unstarted)
            raise

    def _complete(self, batches: dict[int, tuple[list[Claim], list[Outcome]]]) -> list[int]:
        """The batches every chip of which has an outcome or was taken back."""
        return [
            serial
            for serial, (claims, outcomes) in batches.items()
            if len(outcomes) + self._given_back.get(serial, 0) == len(claims)
        ]

    def _batch(
        self, batches: dict[int, tuple[list[Claim], list[Outcome]]], claims: list[Claim]
    ) -> int:
        serial = next(self._serials)
        batches[serial] = (claims, [])
        for claim in claims:
            self._give(_Item(serial, claim))
        return serial

    def _nudge(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # a byte already waiting will do
            self._wake_w.send(b"\0")

    def _give(self, item: _Item) -> None:
        self._work.append(item)
        self._nudge()

    def _on_wake(self) -> None:
        """In the hub's thread: the runner gave work or stopped; wake the tasks it concerns."""
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        assert self._hub is not None  # noqa: S101 - set before any wake-up is read
        wanted = len(self._idle) if self._stop.is_set() else len(self._work)
        while self._idle and wanted > 0:
            self._hub.wake(self._idle.pop())
            wanted -= 1

    def _take(self) -> _Item | None:
        """The next chip for the calling task, parked until there is one; None: stop."""
        assert self._hub is not None  # noqa: S101 - tasks run in the hub
        while True:
            if self._stop.is_set():
                return None
            try:
                item = self._work.popleft()
            except IndexError:
                self._idle.append(self._hub.current_task())
                self._hub.park()
                continue
            if self._halt.requested and not item.touched:
                self._results.put(("back", item))  # the line stops: not started, given back
                continue
            return item

    def _next_result(self, batches: dict[int, tuple[list[Claim], list[Outcome]]]) -> bool:
        """Wait for a socket: True when it finished a chip, False when it was lost."""
        kind, value = self._results.get()
        if kind == "ended":  # every task ended without a word: cannot happen, but no hang
            raise WireError("the sockets' tasks ended early; check the boards")
        if kind == "fatal":
            raise value
        if kind == "lost":
            log.warning("socket %s out of service", value)
            return False
        if kind == "back":  # a chip no socket started, the line stopping: back to the lot
            self._given_back[value.batch] = self._given_back.get(value.batch, 0) + 1
            return True
        item, outcome = value
        batches[item.batch][1].append(outcome)
        return True

    def _port_claim(self, line: LotRun) -> Callable[[], list[Claim]]:
        """The claim of the chip on the bare port, once; then nothing."""
        assert self._lot_uids is not None  # noqa: S101 - only for a bare port
        address = self.sockets[0].address
        link = self.open_link(address)
        try:
            held = ChipClient(link).status().get("uid")
        finally:
            close_quietly(link)
        if not isinstance(held, bytes) or held not in self._lot_uids:
            shown = held.hex() if isinstance(held, bytes) else "?"
            raise InputError(f"the chip on {address} ({shown}) is not a chip of lot {line.ref.lot}")
        mine = [c for batch in line.backlog for c in batch if c.uid == held.hex()]
        claims = mine[:1] or line.store.claim_chip(line.ref, line.station, held.hex())
        if not claims:
            log.warning(
                "chip %s already has a final record, or another station holds it", held.hex()
            )
        pending = [claims]
        return lambda: pending.pop() if pending else []

    def _drain_queue(self) -> list[list[Claim]]:
        unstarted = [item.claim for item in self._work if not item.touched]
        self._work.clear()
        return [unstarted]

    def _record_partial(
        self, line: LotRun, batches: dict[int, tuple[list[Claim], list[Outcome]]]
    ) -> None:
        """Record the chips that finished; the ones in flight stay claimed for the rerun."""
        while True:  # outcomes that arrived while stopping
            try:
                kind, value = self._results.get_nowait()
            except queue.Empty:
                break
            if kind == "done":
                item, outcome = value
                if item.batch in batches:
                    batches[item.batch][1].append(outcome)
        for claims, outcomes in batches.values():
            if outcomes:
                line.settle(claims, outcomes, more=False, give_back_rest=False)

    # -- one socket -----------------------------------------------------------------------------
    def _socket_loop(self, ref: SocketRef) -> None:
        session = SocketSession(ref, self.job, self.open_link, self._board_token)
        try:
            while not self._stop.is_set():
                item = self._take()
                if item is None:
                    return
                try:
                    outcome = session.chip(item.claim, item.touched)
                except SocketLost:
                    self._give(replace(item, touched=True))
                    self._results.put(("lost", ref.address))
                    return
                self._guard.see(outcome)  # before this socket takes another chip
                self._results.put(("done", (item, outcome)))
        except TransportError as e:  # the board's handler refused, or is gone with its power
            self._results.put(("fatal", board_down(ref, e)))
        except Exception as e:  # noqa: BLE001 - handed to the runner, which raises it
            self._results.put(("fatal", e))
        finally:
            session.close()
