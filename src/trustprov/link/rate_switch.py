"""A faster line after the hello (docs/protocol.md 12.7): the host asks the chip which line
rates it offers, switches both ends to the highest one it may use, and confirms it at the new
rate, or both go back to the first rate.

Invariants:
- Only between exchanges, on a link just opened or idle: no request is in flight, so nothing of
  the session is lost whatever happens to the switch.
- Every wait is bounded: a question is answered within T0 or taken as "no switch"; a switch is
  confirmed by a hello answer at the new rate within `CONFIRM` of the chip's answer, or the host
  goes back to the first rate once the chip has (its `RATE_HOLD` passed) and says hello again
  there, failing with "link-timeout" after as many tries as a hello.
- A chip that offers no rates (an answer without a list, a NAK of a frame type it does not know,
  or silence) is not switched; a list that is not 12.7's is `TransportError` "malformed".
- The hello that confirms carries the link's own id: the chip answers it as a duplicate
  (nothing changes), and an answer with another boot id is "chip-reset", as anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from trustprov.errors import FormatError, TransportError
from trustprov.formats.frame import (
    RATE,
    RATE_HOLD,
    FrameType,
    LinkInfo,
    decode_rates,
    encode_frame,
    encode_hello,
)
from trustprov.link.framed import FramedLink

L = TypeVar("L")
CONFIRM = RATE_HOLD / 2  # the host's bound to hear the chip at the new rate
RESEND = RATE_HOLD / 8  # the confirming hello is sent again this often
MARGIN = RATE_HOLD / 4  # past the chip's hold before the host speaks at the first rate again


def switch_rate(link: FramedLink, baud_max: int) -> int | None:
    """Switch ``link`` to the highest rate the chip offers that is at most ``baud_max`` and
    above the current one; the rate the link runs at afterwards (None: the stream has no line
    rate, so nothing to switch)."""
    info = link.info
    if info is None:
        raise TransportError("link not established: call hello()", code="link-down")
    bps = link.stream.bytes_per_second
    if not bps:
        return None
    first = round(bps * 10)
    offered = _offered(link)
    choice = max((r for r in offered if r <= baud_max), default=first)
    if choice <= first:
        return first
    wanted = RATE.pack(choice)
    asked = link.clock()
    answer = _ask(link, wanted)
    if answer == b"":
        return first  # the chip declined: nothing changed
    if answer is not None and answer != wanted:
        link.info = None
        raise TransportError("the chip answered a switch to another rate", code="malformed")
    if answer is not None:
        answered = link.clock()
        _set_baud(link, choice)
        if _confirm(link, info, answered + CONFIRM):
            return choice
        _set_baud(link, first)
        _drain(link, answered + RATE_HOLD + MARGIN)
    else:  # the answer was lost: the chip may have switched; it goes back within its hold
        _drain(link, asked + link.base_timeout + RATE_HOLD + MARGIN)
    tries = link.max_retries + 1
    if not _confirm(link, info, link.clock() + tries * link.base_timeout, link.base_timeout):
        link.info = None
        raise TransportError(
            "no hello answer at the first rate after a failed switch", code="link-timeout"
        )
    return first


def _offered(link: FramedLink) -> tuple[int, ...]:
    payload = _ask(link, b"")
    if not payload:
        return ()
    try:
        return decode_rates(payload)
    except FormatError as e:
        link.info = None
        raise TransportError(f"bad rate list from the chip: {e.message}", code="malformed") from e


def _ask(link: FramedLink, payload: bytes) -> bytes | None:
    """Send RATE and wait up to T0: the answer's payload, ``b""`` for a NAK (a chip that does
    not know the frame type), None if nothing came."""
    link.send_frame(encode_frame(FrameType.RATE, payload=payload))
    deadline = link.clock() + link.base_timeout
    while (left := deadline - link.clock()) > 0:
        for f in link.read_frames(left):
            if f.kind is FrameType.RATE_ANSWER:
                return f.payload
            if f.kind is FrameType.NAK:
                return b""
    return None


def _confirm(link: FramedLink, info: LinkInfo, until: float, resend: float = RESEND) -> bool:
    """Hello with the link's own id until the chip answers it (True) or ``until`` passes."""
    hello = encode_frame(FrameType.HELLO, payload=encode_hello(info.link_id))
    while (left := until - link.clock()) > 0:
        link.send_frame(hello)
        deadline = link.clock() + min(resend, left)
        while (wait := deadline - link.clock()) > 0:
            for f in link.read_frames(wait):
                if f.kind is not FrameType.HELLO_ANSWER:
                    continue
                try:
                    answer = LinkInfo.from_bytes(f.payload)
                except FormatError:
                    continue
                if answer.link_id != info.link_id:
                    continue
                if answer.boot_id != info.boot_id:
                    link.info = None
                    raise TransportError("the chip was reset", code="chip-reset")
                return True
    return False


def _drain(link: FramedLink, until: float) -> None:
    """Read and drop what arrives until ``until`` (bytes at a rate one end no longer runs)."""
    while (left := until - link.clock()) > 0:
        link.read_frames(left)


def _set_baud(link: FramedLink, baud: int) -> None:
    link.set_line_rate(baud)


def rate_opener(baud_max: int, opener: Callable[[str], L]) -> Callable[[str], L]:
    """``opener`` (an address to a link, hello done), then, for a framed link, the switch to the
    highest rate the chip offers at most ``baud_max``: what a station's ``--baud-max`` makes of
    its opener. The link switches again after each later hello (the station's next chip in the
    socket powers on at the first rate)."""

    def open_switched(address: str) -> L:
        link = opener(address)
        if isinstance(link, FramedLink):
            try:
                switch_rate(link, baud_max)
            except BaseException:
                link.close()
                raise
            link.after_hello = lambda again: switch_rate(again, baud_max)  # a new chip, too
        return link

    return open_switched
