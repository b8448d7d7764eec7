"""The host's handle on a farm of chips: the trays and the programming sockets.

A host lists the lots and chips in a farm and powers a chip on in a socket; it then talks to that
chip only through a `ChipClient` over a link. Nothing here reads a chip's memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.chip.ram import DEFAULT_RAM
from trustprov.chip.trng import Trng
from trustprov.link.client import ChipClient
from trustprov.link.port import ChipPort
from trustprov.link.transport import InProcessLink


class FarmLink:
    def __init__(
        self,
        path: Path,
        *,
        create: bool = False,
        ram_budget: int = DEFAULT_RAM,
        read_only: bool = False,
    ) -> None:
        """``read_only``: for a reader of the chips' status (a farm on read-only media)."""
        self._farm = Farm(path, create=create, read_only=read_only)
        self.path = Path(path)
        self._ram_budget = ram_budget

    def close(self) -> None:
        self._farm.close()

    def __enter__(self) -> FarmLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lots(self) -> list[str]:
        return self._farm.lots()

    def uids(self, lot: str | None = None) -> list[bytes]:
        return self._farm.uids(lot)

    def batch(self) -> AbstractContextManager[None]:
        """Many chips' writes in one transaction (manufacturing a lot)."""
        return self._farm.batch()

    def add_blank(self, uid: bytes, lot: str) -> None:
        """A blank chip from the fab goes into the farm (before the ICM burns it)."""
        self._farm.add_blank(uid, lot)

    @contextmanager
    def connect(self, uid: bytes, *, trng: Trng | None = None) -> Iterator[ChipClient]:
        """Power chip ``uid`` on in a socket; power it off (dropping its RAM) on exit."""
        chip = Chip(self._farm, self._farm.load(uid), trng=trng, ram_budget=self._ram_budget)
        yield ChipClient(InProcessLink(ChipPort(chip)))
