"""One socket of the line over the wire: the chips placed in it one at a time, each taken from
its placing to its outcome (line/wire.py schedules the lot over every socket).

Per chip: the board places the chip in the socket (the chip before it leaves in the same
request); the chip's UID is read from the chip itself (``rom.status``), and a misplaced chip is
recorded as an error without being sent anything else; FIG. 3 runs with the chunks streamed
through the link's window of frames.

Invariants:
- ``rom.status`` is not signed, so a board that lies passes the UID check: what the chip signs
  decides the record, verified when the batch is settled (`roles.trust.LotTrust`).
- A transport failure is retried on the same socket from the chip's own status, at most
  `ATTEMPTS` times, then the chip is recorded failed (for a rerun); nothing is installed without
  an accepted finish, and an install whose answer was lost is recorded provisioned, once.
- A socket that will not say hello `SILENT_TRIES` times in a row, or that its board reports
  dead, raises `SocketLost`, with the chip out of the socket, so it can go to another.
- A board whose handler stops answering ends the run as `WireError` (`board_down`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from trustprov.errors import TransportError, TrustprovError
from trustprov.line.records import Claim
from trustprov.link import messages
from trustprov.link.client import ChipClient, PreparedBundle
from trustprov.link.handler import BoardClient
from trustprov.roles.cm import Job, Outcome, provision_chip

log = logging.getLogger("trustprov.line.wire")  # one logger for the line over the wire

ATTEMPTS = 8  # broken sessions of one chip on one socket before it is recorded failed
SILENT_TRIES = 2  # attempts in a row without a hello answer before a socket is out of service


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


class SocketLost(Exception):
    """The socket is out of service: its chip goes back to the queue for another."""


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


class SocketSession:
    """One socket's chips, one at a time, each from its placing to its outcome; it keeps the
    socket's board connection and, between chips, the link to the socket."""

    def __init__(
        self, ref: SocketRef, job: Job, open_link: LinkOpener, board_token: str | None = None
    ) -> None:
        self.ref = ref
        self.job = job
        self.open_link = open_link
        self.board = BoardClient(ref.handler, token=board_token) if ref.handler else None
        self.link: ChipLink | None = None

    def chip(self, claim: Claim, touched: bool) -> Outcome:
        """The outcome of the claimed chip, placed in this socket; ``touched``: an earlier
        attempt of this run sent it requests. Raises `SocketLost` when the socket is out of
        service (the chip is then out of it, to be tried in another)."""
        ref, board = self.ref, self.board
        uid = bytes.fromhex(claim.uid)
        if board is not None:
            try:  # the chip before it leaves the socket in the same request
                board.insert(ref.index, uid, replace=True)
            except TransportError as e:
                if e.code == "dead":  # the socket died (13.1): out of service, the chip elsewhere
                    raise SocketLost from e
                if e.code != "no-chip":
                    raise
                return Outcome(uid, "failed", "not-in-tray", e.message, 0, time.time())
        try:
            return self._attempts(claim, touched, uid)
        except SocketLost:
            if board is not None:  # out of the dead socket, before it is tried in another
                with contextlib.suppress(TransportError):
                    board.remove(ref.index)
            raise

    def close(self) -> None:
        """The link closed and the socket emptied; a dead board holds no chip."""
        if self.link is not None:
            close_quietly(self.link)
        if self.board is not None:
            with contextlib.suppress(TransportError):
                self.board.remove(self.ref.index)
            self.board.close()

    def _attempts(self, claim: Claim, touched_before: bool, uid: bytes) -> Outcome:
        """FIG. 3 on the chip in the socket, taken up again from its status after a failure of
        the wire. A socket that will not even say hello, or that its board reports dead, is out
        of service; a chip whose sessions keep breaking is recorded failed (a rerun retries it)."""
        ref, board, link = self.ref, self.board, self.link
        silent = 0
        error: TransportError | OSError | None = None
        for attempt in range(ATTEMPTS):
            touched = touched_before or attempt > 0
            linked = False
            try:
                if link is None:
                    link = self.open_link(ref.address)  # says hello
                else:
                    link.hello()  # a new chip in the socket: a new link, sequence from 0
                linked = True
                watched = _WatchedLink(link)
                outcome = self._provision(watched, uid, claim, touched)
                if watched.failure is None:
                    self.link = link
                    return outcome
                raise watched.failure
            except (TransportError, OSError) as e:
                log.info("socket %s, chip %s: %s; retrying", ref.address, uid.hex(), e)
                error = e
                if link is not None:
                    close_quietly(link)
                link = None
                silent = 0 if linked else silent + 1
                dead = board is not None and _state(board, ref) == "dead"
                if dead or silent >= SILENT_TRIES:
                    raise SocketLost from e
        self.link = None  # closed by the last attempt
        code = error.code if isinstance(error, TransportError) else "transport"
        message = f"the wire kept failing ({error}); the chip is left to a rerun"
        return Outcome(uid, "failed", code, message[:300], 0, time.time())

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


def board_down(ref: SocketRef, e: TransportError) -> WireError:
    if e.code != "board-down":
        return WireError(f"{e.message} (socket {ref.index})")
    return WireError(
        f"board {ref.handler} stopped answering ({e.code}): its chips lost power; "
        "restart it and rerun the same command to resume the lot"
    )


def close_quietly(link: ChipLink) -> None:
    with contextlib.suppress(OSError, TrustprovError):  # the wire is already gone
        link.close()
