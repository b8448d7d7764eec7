"""trustprov.crypto.schedule: F, G, H, the derived keys, generated-asset material."""

from __future__ import annotations

import pytest

from trustprov.crypto.schedule import (
    DOMAIN_ID_LEN,
    OemKeys,
    asset_material,
    derive_keys,
    f_oem_share,
    g_master_key,
    h_seed,
    key_context,
)

A32 = bytes(range(32))
B32 = bytes(range(32, 64))
C32 = bytes(range(64, 96))
RND16 = bytes(range(100, 116))
FAMILY = b"FAMILY01"
BAD_SECRET_LENS = [0, 16, 31, 33, 48]


@pytest.mark.parametrize("fn", [f_oem_share, h_seed])
@pytest.mark.parametrize("n", [0, 8, 15, 17, 24, 31, 33, 64])
def test_oem_rnd_input_is_16_or_32_bytes(fn, n: int) -> None:
    with pytest.raises(ValueError, match="OEM_RND_INPUT"):
        fn(bytes(n), A32)


@pytest.mark.parametrize("fn", [f_oem_share, h_seed])
@pytest.mark.parametrize("n", BAD_SECRET_LENS)
def test_rnd_share_is_32_bytes(fn, n: int) -> None:
    with pytest.raises(ValueError, match="RND_SHARE"):
        fn(RND16, bytes(n))


@pytest.mark.parametrize("fn", [f_oem_share, h_seed])
@pytest.mark.parametrize("n", [16, 32])
def test_f_and_h_accept_both_input_lengths(fn, n: int) -> None:
    assert len(fn(bytes(n), A32)) == 32


@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize("n", BAD_SECRET_LENS)
def test_g_checks_each_input_length(position: int, n: int) -> None:
    args = [A32, B32, C32]
    args[position] = bytes(n)
    with pytest.raises(ValueError, match="must be 32 bytes"):
        g_master_key(*args)


@pytest.mark.parametrize("n", [0, 7, 9, 16])
def test_family_id_is_8_bytes(n: int) -> None:
    with pytest.raises(ValueError, match="FAMILY_ID"):
        key_context(bytes(n))
    with pytest.raises(ValueError, match="FAMILY_ID"):
        derive_keys(A32, bytes(n))


def test_key_context_is_family_then_format_version() -> None:
    assert key_context(FAMILY) == FAMILY + b"\x01"


@pytest.mark.parametrize("n", BAD_SECRET_LENS)
def test_derive_keys_checks_k_mk_length(n: int) -> None:
    with pytest.raises(ValueError, match="K_MK"):
        derive_keys(bytes(n), FAMILY)


@pytest.mark.parametrize("n", BAD_SECRET_LENS)
def test_asset_material_checks_seed_length(n: int) -> None:
    with pytest.raises(ValueError, match="seed"):
        asset_material(bytes(n), "aes-256", "k", 32)


def test_f_and_h_are_separated_by_label() -> None:
    assert f_oem_share(RND16, A32) != h_seed(RND16, A32)


def test_f_depends_on_both_inputs() -> None:
    base = f_oem_share(RND16, A32)
    assert f_oem_share(bytes(16), A32) != base
    assert f_oem_share(RND16, B32) != base


def test_g_depends_on_every_share() -> None:
    base = g_master_key(A32, B32, C32)
    assert g_master_key(C32, B32, C32) != base
    assert g_master_key(A32, A32, C32) != base
    assert g_master_key(A32, B32, A32) != base


def test_g_combines_hw_and_rom_share_symmetrically() -> None:
    """HW_SHARE xor ROM_SHARE is symmetric: swapping the two shares gives the same K_MK."""
    assert g_master_key(A32, B32, C32) == g_master_key(A32, C32, B32)


def test_derived_keys_are_distinct_and_sized() -> None:
    keys = derive_keys(A32, FAMILY)
    assert len({keys.enck, keys.encd, keys.auth}) == 3
    assert all(len(k) == 32 for k in (keys.enck, keys.encd, keys.auth))
    assert len(keys.domain_id) == DOMAIN_ID_LEN
    assert keys.domain_id not in (keys.enck[:16], keys.encd[:16], keys.auth[:16])


def test_derived_keys_depend_on_family() -> None:
    assert derive_keys(A32, FAMILY) != derive_keys(A32, b"FAMILY02")


def test_oem_keys_repr_shows_no_secret() -> None:
    keys = derive_keys(A32, FAMILY)
    text = repr(keys) + str(keys)
    for secret in (keys.enck, keys.encd, keys.auth):
        assert secret.hex() not in text
        assert secret.hex().upper() not in text
        assert repr(secret) not in text
        assert repr(secret[:8])[2:-1] not in text
    assert "enck" not in text
    assert keys.domain_id.hex() in text or repr(keys.domain_id) in text


def test_oem_keys_repr_of_hand_made_keys() -> None:
    domain = b"\x01" * 16
    keys = OemKeys(enck=b"\xaa" * 32, encd=b"\xbb" * 32, auth=b"\xcc" * 32, domain_id=domain)
    text = repr(keys)
    for byte in ("aa", "bb", "cc"):
        assert byte * 4 not in text.lower()
        assert f"\\x{byte}" not in text
    assert text == f"OemKeys(domain_id={domain!r})"


def test_asset_material_separates_type_and_name() -> None:
    seed = A32
    base = asset_material(seed, "ec-p256", "signer", 40)
    assert asset_material(seed, "ec-p384", "signer", 40) != base
    assert asset_material(seed, "ec-p256", "signer2", 40) != base
    assert asset_material(B32, "ec-p256", "signer", 40) != base
    assert len(base) == 40


def test_asset_material_accepts_utf8_names() -> None:
    assert asset_material(A32, "aes-256", "clé", 32) != asset_material(A32, "aes-256", "cle", 32)
