"""What the board does for each handler request (docs/protocol.md, "Chip board: handler
protocol"): the token check, then ``status``, ``chips``, ``insert``, ``remove``,
``power-cycle`` and ``kill`` over the board's sockets.

Invariants: nothing here reads or writes a connection: `HandlerDispatch.answer` turns one
request line into one reply and says whether the connection must then be closed (``too-long``,
``unauthorized``); the board's loop (`trustprov.board.server`) does the I/O. On a board with a
token, a connection that has not presented it is answered nothing but ``unauthorized``; the
token is compared by `formats.token.token_matches` and never reaches a reply. One physical chip
sits in at most one socket (``in-socket``); a dead socket seats and powers nothing (``dead``).
Everything runs on the board's loop thread, as the sockets it drives do.
"""

from __future__ import annotations

from collections.abc import Callable

from trustprov.board import handler
from trustprov.board.faults import FaultDice
from trustprov.board.line_rate import LineRate
from trustprov.board.slot import Socket
from trustprov.errors import InputError
from trustprov.formats.token import token_matches


class HandlerDispatch:
    """The handler requests of one board over its sockets ``slots`` (the board's own list: a
    socket placed later is seen). ``check_chip`` raises `InputError` for a chip the board does
    not hold; ``uids`` lists the chips it holds (farm or tray)."""

    def __init__(
        self,
        slots: list[Socket],
        dice: FaultDice,
        *,
        token: str | None,
        line: LineRate,
        check_chip: Callable[[bytes], None],
        uids: Callable[[], list[bytes]],
    ) -> None:
        self._slots = slots
        self._dice = dice
        self._token = token
        self._line = line
        self._check_chip = check_chip
        self._uids = uids

    def answer(self, line: bytes, authed: list[bool]) -> tuple[bytes, bool]:
        """The reply to one request ``line`` of a connection (``authed[0]``: it presented the
        token, set here by ``auth``), and whether the connection must then be closed."""
        try:
            request = handler.parse_request(line)
            if request.op == "auth":
                if self._token is not None and not token_matches(request.token, self._token):
                    raise handler.HandlerError("wrong token", code="unauthorized")
                authed[0] = True
                return handler.ok(), False
            if not authed[0]:
                raise handler.HandlerError(
                    'this board needs its token first: {"op":"auth","token":...}',
                    code="unauthorized",
                )
            return self._execute(request), False
        except handler.HandlerError as e:
            return handler.error(e.code, e.message), e.code in ("too-long", "unauthorized")

    def _execute(self, req: handler.Request) -> bytes:
        if req.op == "status":
            line = {} if self._line.baud is None else {"baud": self._line.baud}
            return handler.ok(
                sockets=[
                    {
                        "socket": s.index,
                        "chip": s.uid.hex() if s.uid else None,
                        "state": s.state,
                        **line,
                    }
                    for s in self._slots
                ]
            )
        if req.op == "chips":  # what the tray or farm holds, seated or not (protocol.md 13.1)
            uids = self._uids()
            listed = uids[: handler.MAX_CHIPS_LISTED]
            return handler.ok(chips=[u.hex() for u in listed], more=len(uids) > len(listed))
        if req.socket >= len(self._slots):
            raise handler.HandlerError(f"no socket {req.socket}", code="no-socket")
        slot = self._slots[req.socket]
        if slot.dead and req.op in ("insert", "power-cycle"):  # it seats and powers nothing
            raise handler.HandlerError(f"socket {req.socket} is dead", code="dead")
        if req.op == "insert":
            if slot.uid is not None and not req.replace:
                raise handler.HandlerError(f"socket {req.socket} holds a chip", code="occupied")
            uid = self._misplaced(req.chip) if self._dice.misplace() else req.chip
            held = [s.index for s in self._slots if s.uid == uid and s is not slot]
            if held:  # one physical chip sits in one socket: two would share its state
                raise handler.HandlerError(
                    f"chip {uid.hex()} is in socket {held[0]}", code="in-socket"
                )
            try:
                self._check_chip(uid)
            except InputError as e:
                raise handler.HandlerError(e.message, code="no-chip") from e
            slot.remove()
            slot.insert(uid, claimed=req.chip if self._dice.lie() else None)
        elif req.op == "remove":
            slot.remove()
        elif req.op == "power-cycle":
            slot.power_cycle(req.after)
        else:
            slot.kill()
        return handler.ok()

    def _misplaced(self, uid: bytes) -> bytes:
        """Another chip of the farm than ``uid``, in no socket: the next one (a slip of the
        tray); ``uid`` itself if there is none."""
        uids = self._uids()
        if uid not in uids:
            return uid
        seated = {s.uid for s in self._slots}
        start = uids.index(uid)
        for step in range(1, len(uids)):
            other = uids[(start + step) % len(uids)]
            if other not in seated:
                return other
        return uid
