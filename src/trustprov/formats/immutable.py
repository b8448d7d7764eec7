"""The immutable-memory image the ICM burns into every chip of a family.

Canonical CBOR array [FAMILY_ID, HW_SHARE, ROM_SHARE, K_OEM_SHARE, K_OEM_MASTER_SHARE,
K_PUK_ICM_PROV]. K_PUK_ICM_PROV names what the boot ROM verifies the provisioning software with:

- a bstr, the SubjectPublicKeyInfo DER of one key, whose algorithm is the only one its key type
  has (P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA, ML-DSA-65 → ML-DSA-65, ML-DSA-87 →
  ML-DSA-87); or
- for a hybrid suite, an array of [COSE alg (int), SPKI DER (bstr)], one per algorithm in the
  suite's order (classical first), every one of which the ROM requires.

The ICM's manufacturing tool encodes it; the chip's boot ROM accepts it once (`rom.burn`).
Invariants: the suite is one of `SUITES` and every key has its algorithm's key type; its repr
never shows a share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trustprov.crypto.keys import (
    SIGNATURE_ALGORITHMS,
    SIGNATURE_BY_ID,
    SUITES,
    key_type_of,
    load_public_key,
)
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS

SHARE_LEN = 32
MAX_IMAGE = LIMITS.immutable
_ALG_OF_KEY_TYPE = {a.key_type: a.name for a in SIGNATURE_ALGORITHMS.values()}


@dataclass(frozen=True)
class ImmutableMemory:
    """What the ICM burns into every chip of a family (the same for all of them)."""

    family_id: bytes
    hw_share: bytes = field(repr=False)
    rom_share: bytes = field(repr=False)
    k_oem_share: bytes = field(repr=False)
    k_oem_master_share: bytes = field(repr=False)
    software_keys: tuple[bytes, ...]  # SPKI DER of the software signing keys (public)
    software_suite: str = ""  # empty: the one algorithm of the single key's type

    def __post_init__(self) -> None:
        if len(self.family_id) != FAMILY_ID_LEN:
            raise FormatError(f"immutable memory: family id must be {FAMILY_ID_LEN} bytes")
        for name in ("hw_share", "rom_share", "k_oem_share", "k_oem_master_share"):
            if len(getattr(self, name)) != SHARE_LEN:
                raise FormatError(f"immutable memory: {name} must be {SHARE_LEN} bytes")
        types = [key_type_of(load_public_key(k)) for k in self.software_keys]
        if not self.software_suite and len(types) == 1 and types[0] in _ALG_OF_KEY_TYPE:
            object.__setattr__(self, "software_suite", _ALG_OF_KEY_TYPE[types[0]])
        algs = SUITES.get(self.software_suite)
        if algs is None or [SIGNATURE_ALGORITHMS[a].key_type for a in algs] != types:
            raise FormatError("immutable memory: software keys do not make a signature suite")

    @property
    def k_puk_icm_prov(self) -> bytes:
        """The (first) software signing key, SPKI DER."""
        return self.software_keys[0]

    @property
    def software_algorithms(self) -> tuple[str, ...]:
        return SUITES[self.software_suite]

    def to_bytes(self) -> bytes:
        puk: Any = self.software_keys[0]
        if len(self.software_keys) > 1:
            puk = [
                [SIGNATURE_ALGORITHMS[a].cose_id, k]
                for a, k in zip(self.software_algorithms, self.software_keys, strict=True)
            ]
        return cbor.encode(
            [
                self.family_id,
                self.hw_share,
                self.rom_share,
                self.k_oem_share,
                self.k_oem_master_share,
                puk,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ImmutableMemory:
        what = "immutable memory"
        v = cbor.expect(
            cbor.decode(data, limit=MAX_IMAGE, what=what, shape=LIMITS.immutable_shape), list, what
        )
        if len(v) != 6:
            raise FormatError("immutable memory: wrong layout")
        family_id, hw, rom, k_oem, k_master = (cbor.expect_bstr(x, what) for x in v[:5])

        def image(keys: tuple[bytes, ...], suite: str = "") -> ImmutableMemory:
            return cls(family_id, hw, rom, k_oem, k_master, keys, suite)

        if isinstance(v[5], bytes):
            return image((v[5],))
        entries = cbor.expect(v[5], list, f"{what}: software keys")
        if not 2 <= len(entries) <= max(len(a) for a in SUITES.values()):
            raise FormatError(f"{what}: a hybrid names 2 or more software keys")
        algs, keys = [], []
        for e in entries:
            if not isinstance(e, list) or len(e) != 2:
                raise FormatError(f"{what}: a software key is [alg, SPKI]")
            alg_id = cbor.expect(e[0], int, f"{what}: software key alg")
            if alg_id not in SIGNATURE_BY_ID:
                raise FormatError(f"{what}: unknown software key alg {cbor.show(alg_id)}")
            algs.append(SIGNATURE_BY_ID[alg_id].name)
            keys.append(cbor.expect_bstr(e[1], f"{what}: software key"))
        suite = "+".join(algs)
        if suite not in SUITES:
            raise FormatError(f"{what}: {suite} is not a signature suite")
        return image(tuple(keys), suite)
