"""What a line reads from the chip boards' handlers before a run: their sockets, their chips.

Both lines over the wire (the CM's, line/boards.py; the ICM's, line/icm_line.py) read the boards
here, so they name the boards' sockets and report an unreachable board the same way.

Invariants:
- A board that refuses the line's token, or does not answer, is one error of the caller's type
  that names the board and what to do; the token itself is never shown.
- Only sockets in service are listed (a socket index, not "dead"); a socket's wire address is
  on the handler's host at the handler's port + 1 + its index (docs/protocol.md 13.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustprov.errors import TransportError, TrustprovError
from trustprov.link.handler import BoardClient, parse_tcp


@dataclass(frozen=True)
class Board:
    """One board as its handler described it."""

    address: str
    host: str
    sockets: list[dict[str, Any]]
    uids: list[bytes]

    def in_service(self) -> list[tuple[int, dict[str, Any]]]:
        """(index, status) of each socket in service, in the handler's order."""
        return [
            (s["socket"], s)
            for s in self.sockets
            if isinstance(s.get("socket"), int) and s.get("state") != "dead"
        ]

    def socket_address(self, index: int) -> str:
        port = int(self.address.rpartition(":")[2]) + 1 + index
        return f"tcp://{self.host}:{port}"


def read_board(
    address: str,
    token: str | None,
    *,
    who: str,
    error: type[TrustprovError],
    chips: bool = False,
) -> Board:
    """The board's sockets (and, with ``chips``, the UIDs it holds); ``who`` names the line in
    the message of a refused token ("station", "line")."""
    host, _ = parse_tcp(address)
    try:
        with BoardClient(address, token=token) as board:
            sockets = board.status()
            uids = board.chips() if chips else []
    except TransportError as e:
        if e.code == "unauthorized":
            raise error(
                f"board {address} refused this {who}'s token (or it gave none): "
                "--board-token-file FILE or TRUSTPROV_BOARD_TOKEN, as the board's"
            ) from e
        raise error(f"board {address} does not answer: start it first") from e
    return Board(address, host, sockets, uids)
