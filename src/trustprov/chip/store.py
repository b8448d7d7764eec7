"""Where a chip's persistent state lives: the interface the chip model commits through.

Two stores keep it: a farm (`trustprov.chip.farm`, a lot of chips in one SQLite file) and one
chip's NVM file (`trustprov.chip.nvm_file`). Both keep the same invariants: every `save` is one
atomic commit (a power cut leaves the old state or the new one, never a mix), and the
lifecycle, the security counter and the provisioning counter only advance (`save` refuses a
write that lowers them, and one whose provisioning counter is not the one the writer saw).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from trustprov.chip.model import ChipState
from trustprov.chip.staging import StagedContent


class ChipStore(Protocol):
    def save(
        self,
        state: ChipState,
        blobs: Mapping[bytes, bytes | StagedContent] | None = None,
        *,
        installed_bytes: bytes | None = None,
        seen_prov_counter: int | None = None,
    ) -> None: ...

    def holds_blob(self, blob_id: bytes) -> bool: ...

    def blob_digest(self, blob_id: bytes) -> bytes: ...
