"""The line over the wire: one station drives every socket of every chip board at once.

One thread waits on every wire at once (the chips do the crypto; the host mostly waits on I/O):
a selector loop (`link.hub.Hub`) on a thread of its own runs each socket's work as a task that
runs until it waits for its socket, so a silent or stalled socket holds up no other. The
runner's thread alone talks to the records store: it claims batches, hands their chips to the
sockets' tasks (a byte on a socket pair wakes the loop), and settles a batch once each of its
chips has an outcome, so a commit never holds up the sockets.

Per chip, a socket's task: asks the board to place the chip in its socket (the chip before it
leaves in the same request); reads the chip's UID from the chip itself (``rom.status``) and records
a misplaced chip as an error without sending it anything else; runs FIG. 3 with the chunks streamed
through a window of frames. ``rom.status`` is not signed, so a board that lies passes that check:
what the chip signs decides the record, verified by the runner's thread when it settles the batch
(`roles.trust.LotTrust`, under the lot manifest's certificates). A transport failure (a cut cable,
a power cut, a lost frame past the link's retries) is retried on the same socket from the chip's
own status; a socket that will not say hello, or that its board reports dead, is taken out of
service and its chip goes back to the queue for another socket; a chip whose sessions keep breaking
is recorded failed, for a rerun. A board whose handler no longer answers has lost power: the run
ends with `WireError`, the chips in flight stay claimed, and the rerun settles them from the chips
(`line.records`), so every chip is provisioned exactly once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from trustprov.errors import InputError, TransportError, TrustprovError
from trustprov.line.batches import LotRun
from trustprov.line.records import Claim
from trustprov.line.stopping import RepeatGuard
from trustprov.link import messages
from trustprov.link.client import ChipClient, PreparedBundle
from trustprov.link.handler import BoardClient
from trustprov.link.hub import Hub
from trustprov.roles.cm import Job, Outcome, provision_chip

log = logging.getLogger(__name__)

ATTEMPTS = 8  # broken sessions of one chip on one socket before it is recorded failed
SILENT_TRIES = 2  # attempts in a row without a hello answer before a socket is out of service
AHEAD = 2  # chips queued per socket in service, so no socket waits for the store
STOP_WAIT = 10.0  # seconds the sockets' tasks get to finish their chip when the run ends


class WireError(TrustprovError):
    """The line over the wire cannot go on (a board is down, or no socket is left)."""

    code = "wire"


class ChipLink(Protocol):
    def exchange(self, request: bytes) -> bytes: ...

    def exchange_many(self, requests: Sequence[bytes]) -> list[bytes]: ...

    def hello(self) -> Any: ...

    def close(self) -> None: ...


LinkOpener = Callable[[str], ChipLink]


@dataclass(frozen=True)
class SocketRef:
    """One socket: its wire address, and its board's handler with its index there (or none:
    a bare port with one chip on it)."""

    address: str
    handler: str | None = None
    index: int = 0


@dataclass(frozen=True)
class _Item:
    batch: int
    claim: Claim
    touched: bool = False  # an earlier attempt of this run sent it requests


class _SocketLost(Exception):
    pass


class _StreamingClient(ChipClient):
    """FIG. 3 streamed: begin, the chunks and finish go out as one run through the link's window
    of outstanding frames (``exchange_many``), so round trips do not set the pace. The chip takes
    them one at a time, in order, and after a refusal has no session and refuses the rest, so the
    first refusal raised is the chip's answer; nothing is installed without an accepted finish."""

    def __init__(self, link: _WatchedLink) -> None:
        super().__init__(link)
        self._stream = link

    def provision(self, prepared: PreparedBundle, uid: bytes | None = None) -> dict[str, Any]:
        answers = [
            messages.decode_response(r) for r in self._stream.exchange_many(prepared.requests(uid))
        ]
        return answers[-1]


class _WatchedLink:
    """A link that remembers the transport failures `provision_chip` turns into outcomes."""

    def __init__(self, link: ChipLink) -> None:
        self.link = link
        self.failure: TransportError | None = None

    def exchange(self, request: bytes) -> bytes:
        try:
            return self.link.exchange(request)
        except TransportError as e:
            self.failure = e
            raise

    def exchange_many(self, requests: Sequence[bytes]) -> list[bytes]:
        try:
            return self.link.exchange_many(requests)
        except TransportError as e:
            self.failure = e
            raise


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
            _close_quietly(link)
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
        board = BoardClient(ref.handler, token=self._board_token) if ref.handler else None
        link: ChipLink | None = None
        try:
            while not self._stop.is_set():
                item = self._take()
                if item is None:
                    return
                try:
                    outcome, link = self._one_chip(ref, board, link, item)
                except _SocketLost:
                    self._give(replace(item, touched=True))
                    self._results.put(("lost", ref.address))
                    return
                self._guard.see(outcome)  # before this socket takes another chip
                self._results.put(("done", (item, outcome)))
        except TransportError as e:  # the board's handler refused, or is gone with its power
            self._results.put(("fatal", _board_down(ref, e)))
        except Exception as e:  # noqa: BLE001 - handed to the runner, which raises it
            self._results.put(("fatal", e))
        finally:
            if link is not None:
                _close_quietly(link)
            if board is not None:
                with contextlib.suppress(TransportError):  # a dead board holds no chip
                    board.remove(ref.index)
                board.close()

    def _one_chip(
        self, ref: SocketRef, board: BoardClient | None, link: ChipLink | None, item: _Item
    ) -> tuple[Outcome, ChipLink | None]:
        uid = bytes.fromhex(item.claim.uid)
        if board is not None:
            try:  # the chip before it leaves the socket in the same request
                board.insert(ref.index, uid, replace=True)
            except TransportError as e:
                if e.code == "dead":  # the socket died (13.1): out of service, the chip elsewhere
                    raise _SocketLost from e
                if e.code != "no-chip":
                    raise
                return Outcome(uid, "failed", "not-in-tray", e.message, 0, time.time()), link
        try:
            return self._attempts(ref, board, link, item, uid)
        except _SocketLost:
            if board is not None:  # out of the dead socket, before it is tried in another
                with contextlib.suppress(TransportError):
                    board.remove(ref.index)
            raise

    def _attempts(
        self,
        ref: SocketRef,
        board: BoardClient | None,
        link: ChipLink | None,
        item: _Item,
        uid: bytes,
    ) -> tuple[Outcome, ChipLink | None]:
        """FIG. 3 on the chip in the socket, taken up again from its status after a failure of
        the wire. A socket that will not even say hello, or that its board reports dead, is out
        of service; a chip whose sessions keep breaking is recorded failed (a rerun retries it)."""
        silent = 0
        error: TransportError | OSError | None = None
        for attempt in range(ATTEMPTS):
            touched = item.touched or attempt > 0
            linked = False
            try:
                if link is None:
                    link = self.open_link(ref.address)  # says hello
                else:
                    link.hello()  # a new chip in the socket: a new link, sequence from 0
                linked = True
                watched = _WatchedLink(link)
                outcome = self._provision(watched, uid, item.claim, touched)
                if watched.failure is None:
                    return outcome, link
                raise watched.failure
            except (TransportError, OSError) as e:
                log.info("socket %s, chip %s: %s; retrying", ref.address, uid.hex(), e)
                error = e
                if link is not None:
                    _close_quietly(link)
                link = None
                silent = 0 if linked else silent + 1
                dead = board is not None and _state(board, ref) == "dead"
                if dead or silent >= SILENT_TRIES:
                    raise _SocketLost from e
        code = error.code if isinstance(error, TransportError) else "transport"
        message = f"the wire kept failing ({error}); the chip is left to a rerun"
        return Outcome(uid, "failed", code, message[:300], 0, time.time()), None

    def _provision(self, link: _WatchedLink, uid: bytes, claim: Claim, touched: bool) -> Outcome:
        client = _StreamingClient(link)
        start = time.perf_counter()
        held = client.status().get("uid")
        if held != uid:
            other = held.hex() if isinstance(held, bytes) else "an unreadable UID"
            return Outcome(
                uid,
                "failed",
                "misplaced-chip",
                f"the socket holds chip {other}, not {uid.hex()}; it was not touched",
                int((time.perf_counter() - start) * 1e6),
                time.time(),
            )
        outcome = provision_chip(client, uid, self.job, status_first=claim.recovered or touched)
        if touched and not claim.recovered and outcome.result == "already-provisioned":
            # this run's earlier attempt installed it; its answer was lost on the wire
            outcome = replace(outcome, result="provisioned")
        return outcome


def _state(board: BoardClient, ref: SocketRef) -> str:
    for s in board.status():
        if s.get("socket") == ref.index:
            return str(s.get("state"))
    return "dead"


def _board_down(ref: SocketRef, e: TransportError) -> WireError:
    if e.code != "board-down":
        return WireError(f"{e.message} (socket {ref.index})")
    return WireError(
        f"board {ref.handler} stopped answering ({e.code}): its chips lost power; "
        "restart it and rerun the same command to resume the lot"
    )


def _close_quietly(link: ChipLink) -> None:
    with contextlib.suppress(OSError, TrustprovError):  # the wire is already gone
        link.close()
