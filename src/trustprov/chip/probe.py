"""TEST-ONLY readback of a chip's memory: a stand-in for a physical probe on silicon.

The firmware and the host tools never import this module (a test enforces it). Tests and the
demo use it to check that a chip holds exactly the OEM's assets, and that nothing else leaked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trustprov.chip.farm import Farm
from trustprov.chip.model import KeySlot, Lifecycle
from trustprov.formats.immutable import ImmutableMemory


@dataclass(frozen=True)
class Reading:
    uid: bytes
    lifecycle: Lifecycle
    security_counter: int
    immutable: ImmutableMemory | None = field(repr=False)
    slots: dict[int, KeySlot] = field(repr=False)
    regions: dict[str, bytes] = field(repr=False)
    region_assets: dict[str, str]
    domain_id: bytes | None
    bundle_id: bytes | None
    epoch: int | None


class Probe:
    def __init__(self, farm_path: Path) -> None:
        self._farm = Farm(farm_path)
        self._blobs: dict[bytes, bytes] = {}

    def close(self) -> None:
        self._farm.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _blob(self, blob_id: bytes) -> bytes:
        if blob_id not in self._blobs:
            self._blobs[blob_id] = self._farm.blob(blob_id)
        return self._blobs[blob_id]

    def read(self, uid: bytes) -> Reading:
        s = self._farm.load(uid)
        i = s.installed
        return Reading(
            uid=uid,
            lifecycle=s.lifecycle,
            security_counter=s.security_counter,
            immutable=s.immutable,
            slots=dict(i.slots) if i else {},
            regions={n: self._blob(r[2]) for n, r in i.regions.items()} if i else {},
            region_assets={n: r[0] for n, r in i.regions.items()} if i else {},
            domain_id=i.domain_id if i else None,
            bundle_id=i.bundle_id if i else None,
            epoch=i.epoch if i else None,
        )
