"""What a chip holds, as plain data. Invariants: reprs never show secret bytes; the lifecycle
and the provisioning counter only advance (the chip and the farm refuse any write that lowers
them)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from trustprov.crypto.digest import DIGEST_LEN
from trustprov.crypto.schedule import DOMAIN_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.bundle import BUNDLE_ID_LEN, MAX_KEY_LEN, MAX_SLOT
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.installed import check_capacity, installed_digest
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
    digest: bytes  # the asset's manifest digest (public): part of the installed digest


@dataclass
class Installed:
    """The OEM domain installed on a chip and what it holds. Flash regions map to blob ids.

    Stored as canonical CBOR (docs/protocol.md 9); `validate` is the one check of what a chip
    may hold, applied before every commit and at every load, so any state a chip committed
    loads again at power-on."""

    domain_id: bytes
    bundle_id: bytes
    epoch: int
    slots: dict[int, KeySlot] = field(default_factory=dict, repr=False)
    regions: dict[str, tuple[str, int, bytes]] = field(
        default_factory=dict
    )  # name -> asset, len, blob (the content id)

    def to_bytes(self) -> bytes:
        return cbor.encode(
            {
                "domain": self.domain_id,
                "bundle": self.bundle_id,
                "epoch": self.epoch,
                "slots": {
                    n: [s.asset, s.key_type, s.value, s.digest] for n, s in self.slots.items()
                },
                "regions": {n: list(r) for n, r in self.regions.items()},
            }
        )

    def digest(self) -> bytes:
        """The public installed digest (docs/protocol.md 6.7), as `rom.status` reports it."""
        return installed_digest(
            domain_id=self.domain_id,
            bundle_id=self.bundle_id,
            epoch=self.epoch,
            slots={n: (s.asset, s.key_type, s.digest) for n, s in self.slots.items()},
            regions=self.regions,
        )

    def validate(self, encoded_len: int) -> None:
        """Raise `FormatError` unless a chip can hold this state (encoding to ``encoded_len``)."""
        check_capacity(len(self.slots), len(self.regions), encoded_len)
        for n, s in self.slots.items():
            cbor.expect_uint(n, "installed slot", MAX_SLOT)
            cbor.expect_name(s.asset, "installed slot asset", LIMITS.name)
            cbor.expect_name(s.key_type, "installed key type", LIMITS.name)
            cbor.expect_bstr(s.value, "installed key", max_len=MAX_KEY_LEN)
            cbor.expect_bstr(s.digest, "installed slot digest", DIGEST_LEN)
        for name, (asset, length, blob) in self.regions.items():
            cbor.expect_name(name, "installed region", LIMITS.name)
            cbor.expect_name(asset, "installed region asset", LIMITS.name)
            cbor.expect_uint(length, "installed region length", LIMITS.region)
            cbor.expect_bstr(blob, "installed region content", DIGEST_LEN)

    @classmethod
    def from_bytes(cls, data: bytes) -> Installed:
        what = "installed state"
        m = cbor.expect_map(
            cbor.decode(
                data,
                limit=LIMITS.installed_state,
                what=what,
                shape=LIMITS.installed_state_shape,
            ),
            what,
            {"domain", "bundle", "epoch", "slots", "regions"},
        )
        slots = cbor.expect(m["slots"], dict, f"{what}: slots")
        regions = cbor.expect(m["regions"], dict, f"{what}: regions")
        installed = cls(
            domain_id=cbor.expect_bstr(m["domain"], f"{what}: domain", DOMAIN_ID_LEN),
            bundle_id=cbor.expect_bstr(m["bundle"], f"{what}: bundle", BUNDLE_ID_LEN),
            epoch=cbor.expect_uint(m["epoch"], f"{what}: epoch", 2**32 - 1),
            slots={n: KeySlot(*_entry(s, 4, what)) for n, s in slots.items()},
            regions={n: _region(_entry(r, 3, what)) for n, r in regions.items()},
        )
        installed.validate(len(data))
        return installed


def _entry(value: object, n: int, what: str) -> list[Any]:
    v: list[Any] = cbor.expect(value, list, what)
    if len(v) != n:
        raise FormatError(f"{what}: malformed slot or region")
    return v


def _region(r: list[Any]) -> tuple[str, int, bytes]:
    return (r[0], r[1], r[2])  # their types: `Installed.validate`


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
    # OTP: how many bundles this chip has installed; it rises with each install, in the same
    # commit, and never falls (the receipt carries it, docs/protocol.md 6.8)
    prov_counter: int = 0

    def copy(self) -> ChipState:
        """A new state with the same values (shallow), to change and commit or throw away: a
        commit replaces a state's values, it never changes one in place."""
        return replace(self)
