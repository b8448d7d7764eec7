"""The immutable-memory image the ICM burns into every chip of a family.

Canonical CBOR array [FAMILY_ID, HW_SHARE, ROM_SHARE, K_OEM_SHARE, K_OEM_MASTER_SHARE,
K_PUK_ICM_PROV (SubjectPublicKeyInfo DER)]. The ICM's manufacturing tool encodes it; the chip's
boot ROM accepts it once (`rom.burn`). Invariant: its repr never shows a share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS

SHARE_LEN = 32
MAX_IMAGE = 4096


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
        if len(self.family_id) != FAMILY_ID_LEN:
            raise FormatError(f"immutable memory: family id must be {FAMILY_ID_LEN} bytes")
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
        v = cbor.expect(
            cbor.decode(
                data, limit=MAX_IMAGE, what="immutable memory", shape=LIMITS.immutable_shape
            ),
            list,
            "immutable",
        )
        if len(v) != 6:
            raise FormatError("immutable memory: wrong layout")
        return cls(*(cbor.expect_bstr(x, "immutable memory") for x in v))
