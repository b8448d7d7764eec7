"""One socket of a board: the chip in it, the chip's end of the link, and the faults on its wire.

A socket holds at most one chip. Placing a chip powers it on: its persistent state is loaded
from the farm (the chip's flash) and its RAM starts empty. A power cycle builds a fresh chip from
what the farm holds committed and resets the link endpoint: open sessions and keys are gone,
nothing half-written survives (the farm's commits are atomic). The host reaches the chip only
through the bytes of `feed`; whatever the socket answers goes out through `send`.

Invariant: all of a socket's work runs on its board's one loop thread (the farm connection is
that thread's), so a chip is never touched by two threads. A socket given a line rate (`pace`)
carries its bytes each way at that rate, after the wire's faults (`board.line_rate`); a chip of
a farm that answered a switch of rate (protocol.md 12.7) has both directions switched once its
answer crossed, and back when its endpoint reverts, when it powers on again, and on a new cable.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from trustprov.board.faults import FaultDice, apply_corruption
from trustprov.board.line_rate import LineRate, Pacer
from trustprov.board.timers import Timers
from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.chip.uart import ChipEndpoint
from trustprov.errors import TrustprovError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS
from trustprov.link.port import ChipPort

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0  # seconds without input that end an open session (keys dropped)
REORDER_HOLD = 0.050  # a unit held back for reordering goes out after this if nothing follows


class Socket:
    """A socket's wire and the handler's operations on it, whatever chip it holds: a chip of a
    farm (`Slot`) or a chip program (`trustprov.board.exec_slot.ExecSlot`). A subclass powers
    its chip on and off and takes the host's bytes (`_input`); it hands the chip's to `_emit`."""

    def __init__(self, index: int, dice: FaultDice, timers: Timers) -> None:
        self.index = index
        self._dice = dice
        self._timers = timers
        self.uid: bytes | None = None
        self.dead = False
        self._claimed: bytes | None = None  # the UID a lying board reports (`insert`)
        self._cut_after: int | None = None  # input bytes until a power cycle
        self._held: dict[str, bytes | None] = {"in": None, "out": None}
        self.send: Callable[[bytes], None] = _nowhere  # set by the wire in use
        self.hang_up: Callable[[], None] = lambda: None  # cut the cable of this socket
        self._pacers: dict[str, Pacer] = {}  # the wire's line rate, if any (`pace`)
        self._turnaround = 0.0
        self._rate = LineRate()
        self.baud: int | None = None  # the rate the socket's wire runs at now

    def pace(self, rate: LineRate) -> None:
        """Put the socket's wire at ``rate``: each direction at its bytes per second, and the
        chip's answers starting ``rate.turnaround`` after what it answers (`board.line_rate`)."""
        if not rate.active:
            return
        self._rate, self.baud = rate, rate.baud
        bps = rate.bytes_per_second
        self._pacers = {
            "in": Pacer(bps, self._timers, self._feed),
            "out": Pacer(bps, self._timers, self._send_out),
        }
        self._turnaround = rate.turnaround

    @property
    def state(self) -> str:
        return "dead" if self.dead else ("empty" if self.uid is None else "powered")

    # -- the chip, per kind of socket -----------------------------------------------------------
    def _power_on(self) -> None:
        """Power the chip ``self.uid`` on (again): RAM empty, state as committed."""
        raise NotImplementedError

    def _power_off(self) -> None:
        """The chip loses power (it stays in the socket or leaves it: the caller says)."""
        raise NotImplementedError

    def _input(self, data: bytes) -> None:
        """Bytes for the powered chip."""
        raise NotImplementedError

    def close(self) -> None:
        """The board stops: every chip loses power."""
        self._power_off()

    # -- the handler's operations --------------------------------------------------------------
    def insert(self, uid: bytes, *, claimed: bytes | None = None) -> None:
        """``claimed``: the UID this socket's ``rom.status`` answers are rewritten to name
        (the ``lie`` fault), whatever chip sits in it."""
        self._clear_wire("in", "out")
        self.uid = uid
        self._claimed = claimed
        self._power_on()
        self._cut_after = self._dice.powercut_after()

    def remove(self) -> None:
        self._clear_wire("in", "out")
        self.uid = None
        self._claimed = None
        self._power_off()
        self._cut_after = None

    def power_cycle(self, after: int = 0) -> None:
        if self.uid is None:
            return  # an empty socket: nothing to cut, and no cut waits for the next chip
        if after:
            self._cut_after = after
        elif self.uid is not None:
            log.info("socket %d: power cycle", self.index)
            self._clear_wire("out")  # the chip's UART stops mid-answer
            self._power_on()

    def kill(self) -> None:
        self.dead = True
        self._clear_wire("in", "out")
        self._power_off()
        self.hang_up()

    # -- the wire -------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes from the host's wire, after the wire's faults."""
        if self.dead or not data:
            return
        self._fault("in", data, self._feed_paced)

    def poll(self) -> None:
        """Called by the board's loop every tick."""

    def _feed_paced(self, data: bytes) -> None:
        if "in" in self._pacers:
            self._pacers["in"].offer(data)
        else:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        if self.uid is None:
            return  # no chip: the bytes fall on an empty socket
        if self._cut_after is not None and len(data) >= self._cut_after:
            head, data = data[: self._cut_after], data[self._cut_after :]
            self._input(head)
            log.info("socket %d: power cut mid-message", self.index)
            self._cut_after = None
            self._power_on()
        elif self._cut_after is not None:
            self._cut_after -= len(data)
        if data:
            self._input(data)

    def _emit(self, data: bytes) -> None:
        if data and not self.dead:
            self._fault("out", data, self._send_paced)

    def _send_paced(self, data: bytes) -> None:
        if "out" in self._pacers:
            self._pacers["out"].offer(data, time.monotonic() + self._turnaround)
        else:
            self.send(data)

    def _send_out(self, data: bytes) -> None:
        if not self.dead:
            self.send(data)  # looked up now: the wire in use sets ``send`` after `pace`

    def new_cable(self) -> None:
        """A new host connection: the old one's bytes still on the line are gone with it, and
        the wire is back at its first rate (the programmer's UART is reset)."""
        self._clear_wire("in", "out")
        self._set_rate(self._rate.baud)

    def _set_rate(self, baud: int | None) -> None:
        """Both directions of the wire at ``baud`` from now on (12.7's switch and its revert)."""
        if baud is None or not self._pacers or baud == self.baud:
            return
        log.info("socket %d: line at %d baud", self.index, baud)
        self.baud = baud
        for pacer in self._pacers.values():
            pacer.set_rate(baud / 10)

    def _clear_wire(self, *ways: str) -> None:
        for way in ways:
            if way in self._pacers:
                self._pacers[way].clear()

    def _fault(self, way: str, data: bytes, deliver: Callable[[bytes], None]) -> None:
        v = self._dice.unit(len(data))
        if v.cut:
            deliver(data[: len(data) // 2])
            self.hang_up()
            return
        if v.drop:
            return
        if v.corrupt_bit is not None:
            data = apply_corruption(data, v.corrupt_bit)
        units = [data, data] if v.dup else [data]
        if v.reorder and self._held[way] is None:
            self._held[way] = data
            self._timers.at(time.monotonic() + REORDER_HOLD, lambda: self._release(way, deliver))
            return
        for unit in units:
            if v.delay:
                self._timers.at(time.monotonic() + v.delay, functools.partial(deliver, unit))
            else:
                deliver(unit)
        self._release(way, deliver)

    def _release(self, way: str, deliver: Callable[[bytes], None]) -> None:
        held, self._held[way] = self._held[way], None
        if held is not None:
            deliver(held)


class Slot(Socket):
    """A socket holding a chip of the board's farm, run in the board's own process."""

    def __init__(
        self,
        index: int,
        farm: Farm,
        dice: FaultDice,
        timers: Timers,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        super().__init__(index, dice, timers)
        self._farm = farm
        self._idle_timeout = idle_timeout
        self._port: ChipPort | None = None
        self._endpoint: ChipEndpoint | None = None

    def poll(self) -> None:
        if self._endpoint is not None and not self.dead:
            self._endpoint.poll()

    def _input(self, data: bytes) -> None:
        endpoint = self._endpoint
        if endpoint is None:
            return
        self._emit(endpoint.feed(data))
        new, endpoint.pending_rate = endpoint.pending_rate, None
        if new is not None and "out" in self._pacers:  # the UART switches once the answer left
            old = self.baud
            self._pacers["out"].after(lambda: self._switched(endpoint, new, old))

    def _switched(self, endpoint: ChipEndpoint, new: int, old: int | None) -> None:
        if endpoint is self._endpoint and old is not None:
            self._set_rate(new)
            endpoint.switched(old)

    def _power_off(self) -> None:
        self._port = None
        self._endpoint = None

    def _power_on(self) -> None:
        assert self.uid is not None  # noqa: S101 - only called with a chip in the socket
        self._port = ChipPort(Chip(self._farm, self._farm.load(self.uid)))
        if self._endpoint is None:
            self._endpoint = ChipEndpoint(
                self._handle,
                idle_timeout=self._idle_timeout,
                on_idle=self._on_idle,
                rates=self._rate.bauds,
                on_rate=self._set_rate,
            )
        else:
            self._endpoint.reset()
        self._set_rate(self._rate.baud)  # a chip powers on at its first rate
        self._held = {"in": None, "out": None}

    def _on_idle(self) -> None:
        """The host went quiet with a session open: the chip ends it, as its RAM is dropped."""
        if self.uid is not None:
            self._port = ChipPort(Chip(self._farm, self._farm.load(self.uid)))

    def _handle(self, request: bytes) -> bytes:
        # the endpoint outlives the chips placed in the socket: it always reaches the current one
        assert self._port is not None  # noqa: S101 - the endpoint exists only with a chip
        answer = self._port.handle(request)
        if self._claimed is not None:
            answer = _lie(request, answer, self._claimed)
        return answer


def _lie(request: bytes, answer: bytes, uid: bytes) -> bytes:
    """The ``lie`` fault: a ``rom.status`` answer rewritten to name chip ``uid``. What the chip
    signs (a receipt, an attestation) the board cannot rewrite without the chip's key."""
    try:
        asked = cbor.decode(request, limit=LIMITS.link_message, what="request")
        said = cbor.decode(answer, limit=LIMITS.link_message, what="answer")
    except TrustprovError:
        return answer
    if not (isinstance(asked, dict) and asked.get("op") == "rom.status"):
        return answer
    if not (isinstance(said, dict) and isinstance(said.get("ok"), dict)):
        return answer
    return cbor.encode({"ok": {**said["ok"], "uid": uid}})


def _nowhere(_data: bytes) -> None:
    """No wire attached yet: what the socket says is lost."""
