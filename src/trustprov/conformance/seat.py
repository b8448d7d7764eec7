"""A fresh chip for one conformance run, seated in a socket of a chip board through its handler
(docs/protocol.md 14.4): `chip conformance --board tcp://HANDLER --socket K [--chip UID]`.

The suite seats a chip of the board's tray (13.1 `chips`, `insert` with `replace`), reads its
`rom.status` over the socket's link, and keeps it only when it is blank (`family` null): the
chip's own answer decides, never the board's word. Without `--chip` it walks the tray in UID
order, skipping chips seated in other sockets, and takes the first blank one; with `--chip` it
takes that chip or stops. Power cuts go through the same handler (`power-cycle` of socket K).

Invariants:
- Host side: the board is reached only through `link.handler.BoardClient` and the socket only
  through the link (section 12); nothing here imports the board.
- A chip that is not blank is never written to: only `rom.status`, which changes nothing, is
  sent to it before it is given back to the tray (`remove`); nor is a chip whose `rom.status`
  names another UID than the one asked for (a board that misplaced it).
- Failures are one line each: `NotFresh` (exit 1) for a chip or a tray with no blank chip,
  `InputError` (exit 2) for a socket the board does not have or that is dead; the board's own
  refusals come through as its `TransportError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustprov.errors import InputError, TransportError, TrustprovError
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient, parse_tcp

#: chips of the tray tried for a blank one before giving up (each is seated and asked its status)
MAX_TRIES = 64


class NotFresh(TrustprovError):
    """The chip in the socket, or every chip of the tray tried, is not blank."""

    code = "not-fresh"


@dataclass(frozen=True)
class Seated:
    """The chip the run uses: its UID, the socket's link address, the handler and socket."""

    uid: bytes
    address: str
    handler: str
    socket: int
    token: str | None = None

    def __repr__(self) -> str:  # the token never shows
        return f"Seated({self.uid.hex()}, {self.address!r}, socket {self.socket})"

    def power_cycle(self) -> None:
        """Cut and restore the chip's power through the board's handler."""
        with BoardClient(self.handler, token=self.token) as board:
            board.power_cycle(self.socket)


def socket_address(handler: str, entry: dict[str, Any]) -> str:
    """Socket k of a board whose handler is tcp://HOST:PORT listens on PORT + 1 + k (section
    13); a socket with a line rate says so (13.5), and the link's timeouts follow it."""
    host, port = parse_tcp(handler)
    baud = entry.get("baud")
    rate = f"?baud={baud}" if type(baud) is int and 50 <= baud <= 20_000_000 else ""
    return f"tcp://{host}:{port + 1 + int(entry['socket'])}{rate}"


def seat_fresh_chip(
    handler: str,
    socket: int,
    *,
    chip: bytes | None = None,
    token: str | None = None,
    reply_timeout: float = 1.0,
) -> Seated:
    """Seat a blank chip (``chip``, or the first blank one of the tray) in ``socket``."""
    with BoardClient(handler, token=token) as board:
        sockets = board.status()
        entry = next((s for s in sockets if s.get("socket") == socket), None)
        if entry is None:
            raise InputError(f"board {handler} has no socket {socket} ({len(sockets)} sockets)")
        if entry.get("state") == "dead":
            raise InputError(f"socket {socket} of board {handler} is dead: use another")
        address = socket_address(handler, entry)
        if chip is not None:
            candidates = [chip]
        else:
            elsewhere = {s.get("chip") for s in sockets if s.get("socket") != socket}
            listed = board.chips()
            if not listed:
                raise NotFresh(
                    f"board {handler} holds no chip: its tray is empty (trustprov chip blank "
                    "--tray DIR --count N makes blank chips)"
                )
            candidates = [u for u in listed if u.hex() not in elsewhere]
            if not candidates:
                raise NotFresh(f"every chip of board {handler} is seated in another socket")
        tried = 0
        for uid in candidates[:MAX_TRIES]:
            board.insert(socket, uid, replace=True)
            tried += 1
            status = _status(address, reply_timeout)
            if status.get("uid") != uid:  # the board seated another chip: test none of it
                board.remove(socket)
                raise TransportError(
                    f"board {handler} was asked for chip {uid.hex()} in socket {socket}, and the "
                    "chip there names another UID",
                    code="misplaced-chip",
                )
            if status.get("family") is None and status.get("lifecycle") == "BLANK":
                return Seated(uid, address, handler, socket, token)
            if chip is not None:
                board.remove(socket)
                raise NotFresh(
                    f"chip {uid.hex()} in socket {socket} is not fresh (lifecycle "
                    f"{status.get('lifecycle')}, burned): the suite needs a blank chip, a new "
                    "one per run"
                )
        if tried:
            board.remove(socket)
        raise NotFresh(
            f"no blank chip in the tray of board {handler}: "
            f"{tried if tried < len(candidates) else 'all'} of the {len(candidates)} chips in no "
            "other socket tried, each burned (one blank chip per run; trustprov chip blank "
            "--tray DIR --count N makes more)"
        )


def _status(address: str, reply_timeout: float) -> dict[str, Any]:
    link = open_link(address, timeout=reply_timeout, max_retries=4)
    try:
        return ChipClient(link).status()
    except TransportError as e:
        raise TransportError(
            f"the chip in {address} does not answer rom.status ({e.message})", code=e.code
        ) from e
    finally:
        link.close()
