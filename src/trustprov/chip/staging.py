"""Flash staging of the virtual chip: a region's content received a chunk at a time.

A chip installs a firmware image of any size chunk by chunk (docs/protocol.md 6.4); what it has
received but not committed is staging, which a real chip keeps in a flash bank of its own, not
in RAM. The model keeps it in a temporary file (`tempfile.SpooledTemporaryFile`: small contents
stay in memory), so the host running the model holds a few chunks, not the image.

A region whose content the farm already holds (the same content id: the same OEM domain and the
same manifest digest, hence the same plaintext, which every chunk's AEAD and chain check proved
again) is not staged at all: the chip still receives, authenticates and decrypts every chunk, and
only counts its bytes. The farm stores each distinct content once anyway (`trustprov.chip.farm`),
so the thousandth chip of a lot costs the host no copy of the firmware.

Nothing staged is installed until `Hardware.install` commits it, in the one transaction of the
chip's commit; a session that ends otherwise drops it (`close`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

SPOOL = 1024 * 1024  # contents up to this stay in memory
PIECE = 1024 * 1024  # read back in pieces of this size into the farm


class StagedContent:
    """One region's content, staged: its length and, unless the farm holds it, its bytes."""

    def __init__(self, content_id: bytes, *, held: bool) -> None:
        self.content_id = content_id
        self.held = held  # the farm already holds this content: nothing is kept
        self.length = 0
        self._file: IO[bytes] | None = (
            None if held else tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 - closed by close()
        )

    def __repr__(self) -> str:
        return f"StagedContent(length={self.length}, held={self.held})"

    def write(self, data: bytes) -> None:
        if self._file is not None:
            self._file.write(data)
        self.length += len(data)

    def pieces(self) -> Iterator[bytes]:
        """The staged bytes, in order, a piece at a time (none when the farm holds them)."""
        if self._file is None:
            return
        self._file.seek(0)
        while piece := self._file.read(PIECE):
            yield piece

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
