"""The key schedule of the patent: F, G, H and the derived keys, as pure functions over bytes.

    OEM_SHARE = F(OEM_RND_INPUT, RND_SHARE) = KDF(RND_SHARE, "F/oem-share", OEM_RND_INPUT)
    K_MK      = G(OEM_SHARE, HW_SHARE, ROM_SHARE)
              = KDF(HW_SHARE xor ROM_SHARE, "G/master-key", OEM_SHARE)
    K_ENCK, K_ENCD, K_AUTH, DOMAIN_ID
              = KDF(K_MK, "K/enck" | "K/encd" | "K/auth" | "K/domain", FAMILY_ID || FORMAT_VERSION)
    seed      = H(OEM_RND_INPUT, RND_SHARE) = KDF(RND_SHARE, "H/seed", OEM_RND_INPUT)
    asset     = KDF(seed, "H/asset", TYPE || 0x00 || NAME, L)

Invariant: only the provisioning software (``trustprov.firmware``) calls these with real
secrets. `docs/protocol.md` gives every label and encoding with known-answer vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustprov.crypto.kdf import KEY_LEN, kdf

FORMAT_VERSION = 1
FAMILY_ID_LEN = 8
DOMAIN_ID_LEN = 16
OEM_RND_INPUT_LENS = (16, 32)

LABEL_F = "F/oem-share"
LABEL_G = "G/master-key"
LABEL_H = "H/seed"
LABEL_ENCK = "K/enck"
LABEL_ENCD = "K/encd"
LABEL_AUTH = "K/auth"
LABEL_DOMAIN = "K/domain"
LABEL_ASSET = "H/asset"


def _check(value: bytes, what: str, lengths: tuple[int, ...] = (KEY_LEN,)) -> None:
    if len(value) not in lengths:
        raise ValueError(f"{what} must be {' or '.join(map(str, lengths))} bytes")


def f_oem_share(oem_rnd_input: bytes, rnd_share: bytes) -> bytes:
    """F: the OEM's share from its random input and the chip-made random share."""
    _check(oem_rnd_input, "OEM_RND_INPUT", OEM_RND_INPUT_LENS)
    _check(rnd_share, "RND_SHARE")
    return kdf(rnd_share, LABEL_F, oem_rnd_input)


def g_master_key(oem_share: bytes, hw_share: bytes, rom_share: bytes) -> bytes:
    """G: the OEM's master key K_MK from its share and the family's two immutable shares."""
    _check(oem_share, "OEM_SHARE")
    _check(hw_share, "HW_SHARE")
    _check(rom_share, "ROM_SHARE")
    family_key = (int.from_bytes(hw_share) ^ int.from_bytes(rom_share)).to_bytes(KEY_LEN)
    return kdf(family_key, LABEL_G, oem_share)


def h_seed(oem_rnd_input: bytes, rnd_share: bytes) -> bytes:
    """H: the seed of the assets generated on the chip."""
    _check(oem_rnd_input, "OEM_RND_INPUT", OEM_RND_INPUT_LENS)
    _check(rnd_share, "RND_SHARE")
    return kdf(rnd_share, LABEL_H, oem_rnd_input)


def key_context(family_id: bytes) -> bytes:
    """Context of the K_MK derivations: FAMILY_ID (8 bytes) || FORMAT_VERSION (1 byte)."""
    _check(family_id, "FAMILY_ID", (FAMILY_ID_LEN,))
    return family_id + bytes([FORMAT_VERSION])


@dataclass(frozen=True)
class OemKeys:
    """K_ENCK, K_ENCD, K_AUTH and the public OEM domain id, all from one K_MK."""

    enck: bytes = field(repr=False)
    encd: bytes = field(repr=False)
    auth: bytes = field(repr=False)
    domain_id: bytes


def derive_keys(k_mk: bytes, family_id: bytes) -> OemKeys:
    """KDF(K_MK, ...): the working keys of one OEM on one family.

    DOMAIN_ID names the OEM's key domain in the open (status, records); it is a one-way function of
    K_MK under its own label and reveals nothing of the keys.
    """
    _check(k_mk, "K_MK")
    ctx = key_context(family_id)
    return OemKeys(
        enck=kdf(k_mk, LABEL_ENCK, ctx),
        encd=kdf(k_mk, LABEL_ENCD, ctx),
        auth=kdf(k_mk, LABEL_AUTH, ctx),
        domain_id=kdf(k_mk, LABEL_DOMAIN, ctx, DOMAIN_ID_LEN),
    )


def asset_material(seed: bytes, asset_type: str, name: str, length: int) -> bytes:
    """The bytes a generated asset is made from: KDF(seed, "H/asset", TYPE || 0x00 || NAME, L)."""
    _check(seed, "seed")
    context = asset_type.encode("ascii") + b"\x00" + name.encode("utf-8")
    return kdf(seed, LABEL_ASSET, context, length)
