"""What a chip holds, as plain data. Invariant: reprs never show secret bytes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from trustprov.formats import cbor
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS


class Lifecycle(enum.IntEnum):
    """OTP lifecycle; it only ever advances."""

    BLANK = 0
    MANUFACTURED = 1
    PROVISIONED = 2
    LOCKED = 3


@dataclass(frozen=True)
class KeySlot:
    asset: str
    key_type: str
    value: bytes = field(repr=False)


@dataclass
class Installed:
    """The OEM domain installed on a chip and what it holds. Flash regions map to blob ids."""

    domain_id: bytes
    bundle_id: bytes
    epoch: int
    slots: dict[int, KeySlot] = field(default_factory=dict, repr=False)
    regions: dict[str, tuple[str, int, bytes]] = field(
        default_factory=dict
    )  # name -> asset, len, blob

    def to_bytes(self) -> bytes:
        return cbor.encode(
            {
                "domain": self.domain_id,
                "bundle": self.bundle_id,
                "epoch": self.epoch,
                "slots": {n: [s.asset, s.key_type, s.value] for n, s in self.slots.items()},
                "regions": {n: list(r) for n, r in self.regions.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Installed:
        m: dict[str, Any] = cbor.decode(
            data, limit=1 << 20, what="installed state", shape=LIMITS.installed_state_shape
        )
        return cls(
            domain_id=m["domain"],
            bundle_id=m["bundle"],
            epoch=m["epoch"],
            slots={int(n): KeySlot(*s) for n, s in m["slots"].items()},
            regions={n: (r[0], r[1], r[2]) for n, r in m["regions"].items()},
        )


@dataclass
class ChipState:
    uid: bytes
    lot: str
    lifecycle: Lifecycle = Lifecycle.BLANK
    security_counter: int = 0
    immutable: ImmutableMemory | None = field(default=None, repr=False)
    identity_key: bytes | None = field(default=None, repr=False)  # P-256 scalar, made on chip
    certificate: bytes | None = None  # DER, from the ICM's device CA
    installed: Installed | None = None
