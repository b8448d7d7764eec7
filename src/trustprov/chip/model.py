"""What a chip holds, as plain data. Invariant: reprs never show secret bytes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from trustprov.errors import FormatError
from trustprov.formats import cbor

SHARE_LEN = 32


class Lifecycle(enum.IntEnum):
    """OTP lifecycle; it only ever advances."""

    BLANK = 0
    MANUFACTURED = 1
    PROVISIONED = 2
    LOCKED = 3


@dataclass(frozen=True)
class ImmutableMemory:
    """What the ICM burns into every chip of a family (the same for all of them)."""

    family_id: bytes
    hw_share: bytes = field(repr=False)
    rom_share: bytes = field(repr=False)
    k_oem_share: bytes = field(repr=False)
    k_oem_master_share: bytes = field(repr=False)
    k_puk_icm_prov: bytes  # SubjectPublicKeyInfo DER of the software signing key (public)

    def __post_init__(self) -> None:
        for name in ("hw_share", "rom_share", "k_oem_share", "k_oem_master_share"):
            if len(getattr(self, name)) != SHARE_LEN:
                raise FormatError(f"immutable memory: {name} must be {SHARE_LEN} bytes")

    def to_bytes(self) -> bytes:
        return cbor.encode(
            [
                self.family_id,
                self.hw_share,
                self.rom_share,
                self.k_oem_share,
                self.k_oem_master_share,
                self.k_puk_icm_prov,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ImmutableMemory:
        v = cbor.expect(cbor.decode(data, limit=4096, what="immutable memory"), list, "immutable")
        if len(v) != 6:
            raise FormatError("immutable memory: wrong layout")
        return cls(*(cbor.expect_bstr(x, "immutable memory") for x in v))


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
        m: dict[str, Any] = cbor.decode(data, limit=1 << 20, what="installed state")
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
