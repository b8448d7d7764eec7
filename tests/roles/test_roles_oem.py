"""The OEM's tools: FIG. 4 regeneration, AEAD choice, chunk sizes, and what OEM_DIR holds."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    SIGNER_SLOT,
    Bench,
    assert_holds_world_assets,
    copy_farm,
    copy_state,
    regen,
    second_family,
    world_job,
    write_assets,
)

from trustprov.errors import ChipRefused, FormatError, InputError, TrustprovError, VerificationError
from trustprov.formats.bundle import Bundle
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list

PRIVATE_OEM_FILES = ("enc-oem-rnd-input.cose", "enc-rnd-share.cose")
PUBLIC_OEM_FILES = ("enc-oem-share.cose", "bundle.cbor", "oem.json", "generated/signer.pub.pem")


@pytest.fixture(scope="module")
def family2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return second_family(tmp_path_factory.mktemp("family2"))


def _install(bench: Bench, uid: bytes, job: Job) -> None:
    assert bench.provision(uid, job).result == "provisioned"


# -- FIG. 4 --------------------------------------------------------------------------------------
def test_regen_regenerates_the_generated_key_bit_for_bit(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    run = regen(world, tmp_path, "regen")
    assert run.result.public_keys == world.public_keys
    pem = "generated/signer.pub.pem"
    assert (run.out / pem).read_bytes() == (world.oem_dir / pem).read_bytes()
    assert (
        run.result.bundle.manifest.bundle_id
        != Bundle.from_bytes(world.bundle.read_bytes()).manifest.bundle_id
    )  # a new bundle, sealed afresh
    with Bench(cm_farm) as bench:
        a, b = bench.uids()[:2]
        _install(bench, a, world_job(world))
        _install(bench, b, run.job(world.software))
        ra, rb = bench.read(a), bench.read(b)
    assert_holds_world_assets(ra, world.public_keys)
    assert_holds_world_assets(rb, world.public_keys)
    assert ra.slots[SIGNER_SLOT].value == rb.slots[SIGNER_SLOT].value
    assert ra.domain_id == rb.domain_id  # the same OEM_SHARE, the same K_MK


def test_regen_on_another_chip_of_the_family_gives_the_same_keys(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    with Bench(cm_farm) as bench:
        other_uid = bench.uids()[6]
    other_chip = copy_farm(cm_farm, tmp_path / "other-chip.farm")
    run = regen(world, tmp_path, "elsewhere", farm=other_chip, uid=other_uid)
    assert run.result.public_keys == world.public_keys
    with Bench(cm_farm) as bench:
        uid = bench.uids()[0]
        _install(bench, uid, run.job(world.software))
        assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_enc_oem_share_of_keygen_and_regen_are_interchangeable(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    run = regen(world, tmp_path, "mix")
    image = world.software.read_bytes()
    keygen_share, regen_share = world.share.read_bytes(), run.share.read_bytes()
    assert keygen_share != regen_share  # sealed again, with a fresh nonce
    with Bench(cm_farm) as bench:
        a, b = bench.uids()[:2]
        _install(bench, a, Job.from_bytes(image, keygen_share, run.bundle.read_bytes()))
        _install(bench, b, Job.from_bytes(image, regen_share, world.bundle.read_bytes()))
        assert_holds_world_assets(bench.read(a), world.public_keys)
        assert_holds_world_assets(bench.read(b), world.public_keys)


def test_regen_writes_everything_but_the_values_the_oem_keeps(world: Any, tmp_path: Path) -> None:
    run = regen(world, tmp_path, "kept")
    for name in PUBLIC_OEM_FILES:
        assert (run.out / name).is_file(), name
    for name in PRIVATE_OEM_FILES:
        assert not (run.out / name).exists(), name


def test_regen_refuses_state_that_is_not_the_oems(world: Any, tmp_path: Path) -> None:
    state = tmp_path / "fake-state"
    state.mkdir()
    share = world.share.read_bytes()  # all the CM holds
    (state / "enc-oem-rnd-input.cose").write_bytes(share)
    (state / "enc-rnd-share.cose").write_bytes(share)
    assets = asset_list.load(write_assets(tmp_path / "assets"))
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    with pytest.raises(TrustprovError):
        oem.regen(
            farm,
            world.oem_uid,
            software_path=world.software,
            state=state,
            assets=assets,
            out=tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


# -- AEAD and chunk sizes ------------------------------------------------------------------------
def test_an_aes_ccm_bundle_provisions(world: Any, cm_farm: Path, tmp_path: Path) -> None:
    run = regen(world, tmp_path, "ccm", aead="AES-CCM")
    manifest = run.result.bundle.manifest
    assert manifest.aead.cose_id == 31
    assert all(len(a.nonce) == 8 for a in manifest.assets)
    with Bench(cm_farm) as bench:
        uid = bench.uids()[0]
        _install(bench, uid, run.job(world.software))
        assert_holds_world_assets(bench.read(uid), world.public_keys)


@pytest.mark.parametrize(
    ("aead", "chunk_size"),
    [("AES-GCM", 256), ("AES-GCM", 16384), ("AES-CCM", 65535), ("AES-GCM", 65536)],
)
def test_every_chunk_size_the_asset_list_accepts_seals_and_installs(
    world: Any, cm_farm: Path, tmp_path: Path, aead: str, chunk_size: int
) -> None:
    """The asset list documents chunk-size 256..65536 (CCM: ..65535); a chip with the default
    64 KiB of RAM must seal and install every bundle made with one of them, or the list must
    refuse the size up front."""
    toml = write_assets(tmp_path / "assets", epoch=2, aead=aead, chunk_size=chunk_size)
    try:
        assets = asset_list.load(toml)
    except InputError:
        return  # refused up front with a clear error: fine
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    run = oem.regen(
        farm,
        world.oem_uid,
        software_path=world.software,
        state=copy_state(world.oem_dir, tmp_path / "state"),
        assets=assets,
        out=tmp_path / "out",
    )
    assert run.bundle.manifest.chunk_size == chunk_size
    job = Job.load(
        world.software, tmp_path / "out/enc-oem-share.cose", tmp_path / "out/bundle.cbor"
    )
    with Bench(cm_farm) as bench:
        uid = bench.uids()[0]
        _install(bench, uid, job)
        assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_the_default_chunk_size_is_the_largest_that_seals_and_installs(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    toml = write_assets(tmp_path / "assets", epoch=2)
    toml.write_text(toml.read_text().replace("chunk-size = 16384\n", ""))
    assets = asset_list.load(toml)
    assert assets.chunk_size % 1024 == 0
    assert assets.chunk_size > 16384
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    run = oem.regen(
        farm,
        world.oem_uid,
        software_path=world.software,
        state=copy_state(world.oem_dir, tmp_path / "state"),
        assets=assets,
        out=tmp_path / "out",
    )
    assert run.bundle.manifest.chunk_size == assets.chunk_size
    job = Job.load(
        world.software, tmp_path / "out/enc-oem-share.cose", tmp_path / "out/bundle.cbor"
    )
    with Bench(cm_farm) as bench:
        uid = bench.uids()[0]
        _install(bench, uid, job)
        assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_the_default_chunk_size_leaves_room_for_a_long_manifest(tmp_path: Path) -> None:
    """64 assets of 64-character names: a manifest of some KiB, so smaller chunks by default,
    and still room for the highest min-security-version; 1 KiB more would not fit."""
    doc = {
        "asset": [
            {
                "name": f"{i:02d}" + "n" * 62,
                "kind": "config",
                "region": f"{i:02d}" + "r" * 62,
                "value": "x" * 40_000,
            }
            for i in range(64)
        ]
    }
    assets = asset_list.parse(doc, tmp_path)
    assert 1024 <= assets.chunk_size < 31744
    assert assets.chunk_size % 1024 == 0
    asset_list.check_fits(assets, 2**32 - 1)
    bigger = dataclasses.replace(assets, chunk_size=assets.chunk_size + 1024)
    with pytest.raises(InputError, match="RAM"):
        asset_list.check_fits(bigger, 2**32 - 1)


@pytest.mark.parametrize(
    ("key_type", "value"),
    [
        ("ec-p256", bytes(32)),
        ("ec-p256", b"\xff" * 32),
        ("ec-p384", bytes(48)),
    ],
    ids=["p256-zero", "p256-above-order", "p384-zero"],
)
def test_the_asset_list_refuses_an_invalid_ec_private_key(
    tmp_path: Path, key_type: str, value: bytes
) -> None:
    """Every chip refuses such a key at install ("bad-asset"); the OEM's tool must say so
    before it seals a bundle that no chip at the CM will ever take."""
    toml = tmp_path / "assets.toml"
    toml.write_text(
        f'[[asset]]\nname = "k"\nkind = "key"\nkey-type = "{key_type}"\nslot = 4\n'
        f'hex = "{value.hex()}"\n'
    )
    with pytest.raises(InputError):
        asset_list.load(toml)


# -- OEM_DIR -------------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_oem_dir_private_files_are_0600(world: Any) -> None:
    for name in PRIVATE_OEM_FILES:
        assert _mode(world.oem_dir / name) == 0o600, name
    for name in PUBLIC_OEM_FILES:
        assert _mode(world.oem_dir / name) == 0o644, name
    assert not _mode(world.oem_dir) & 0o077  # the directory itself is the OEM's alone


def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(d)): (p.read_bytes(), _mode(p))
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def _staging_left(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith(".partial")]


def test_keygen_into_a_non_empty_dir_refuses_and_leaves_it_untouched(
    world: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "enc-rnd-share.cose").write_bytes(b"the OEM's precious state")
    (out / "sub" / "note").write_text("keep")
    before = _snapshot(out)
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    assets = asset_list.load(world.assets_toml)
    with pytest.raises(InputError):
        oem.keygen(farm, world.oem_uid, software_path=world.software, assets=assets, out=out)
    assert _snapshot(out) == before
    assert _staging_left(tmp_path) == []


def test_keygen_into_an_empty_dir_fills_it(world: Any, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    assets = asset_list.load(world.assets_toml)
    oem.keygen(farm, world.oem_uid, software_path=world.software, assets=assets, out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "bundle.cbor",
            "enc-oem-rnd-input.cose",
            "enc-oem-share.cose",
            "enc-rnd-share.cose",
            "generated",
            "issued-epochs.json",
            "oem.json",
        ]
    )


@pytest.mark.parametrize("bad", ["other family's software", "garbage software", "no farm"])
def test_a_failed_keygen_leaves_no_output_dir(
    world: Any, family2: Any, tmp_path: Path, bad: str
) -> None:
    software = world.software
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    if bad == "other family's software":
        software = family2.software
    elif bad == "garbage software":
        software = tmp_path / "garbage.cose"
        software.write_bytes(b"\xd2\x84garbage")
    else:
        farm = tmp_path / "missing.farm"
    out = tmp_path / "out"
    assets = asset_list.load(world.assets_toml)
    with pytest.raises(TrustprovError) as e:
        oem.keygen(farm, world.oem_uid, software_path=software, assets=assets, out=out)
    if bad == "other family's software":
        assert isinstance(e.value, ChipRefused)
        assert e.value.code == "bad-signature"
    assert not out.exists()
    assert _staging_left(tmp_path) == []


def test_keygen_refuses_a_min_security_version_above_the_software(
    world: Any, tmp_path: Path
) -> None:
    assets = asset_list.load(write_assets(tmp_path / "assets", min_svn=2))
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    with pytest.raises(InputError):
        oem.keygen(
            farm, world.oem_uid, software_path=world.software, assets=assets, out=tmp_path / "o"
        )
    assert not (tmp_path / "o").exists()


# -- the OEM's checks of what it is sent, and the CM's of what it is sent -------------------------
def test_the_oem_verifies_the_software_against_the_icm_key(world: Any, family2: Any) -> None:
    software = oem.verify_software(world.software, world.icm.path / "prov-signing.pub.pem")
    assert software.security_version == 1
    with pytest.raises(VerificationError):
        oem.verify_software(world.software, family2.icm.path / "prov-signing.pub.pem")
    with pytest.raises(VerificationError):
        oem.verify_software(family2.software, world.icm.path / "prov-signing.pub.pem")


def test_the_cm_pre_check_refuses_inconsistent_artifacts(
    world: Any, family2: Any, tmp_path: Path
) -> None:
    image = world.software.read_bytes()
    share, bundle = world.share.read_bytes(), world.bundle.read_bytes()
    with pytest.raises(FormatError):  # families differ
        Job.from_bytes(image, family2.oem.share.read_bytes(), bundle)
    with pytest.raises(FormatError):  # a bundle is no software, a share no bundle
        Job.from_bytes(bundle, share, bundle)
    with pytest.raises(FormatError):
        Job.from_bytes(image, share, share)
    with pytest.raises(FormatError):  # ENC(RND_SHARE) is not ENC(OEM_SHARE)
        Job.from_bytes(image, (world.oem_dir / "enc-rnd-share.cose").read_bytes(), bundle)
    svn0 = tmp_path / "svn0.cose"
    icm.sign_software(world.icm, svn0, security_version=0)
    with pytest.raises(InputError):  # the bundle needs security version 1
        Job.from_bytes(svn0.read_bytes(), share, bundle)
    with pytest.raises(InputError):
        Job.load(world.software, tmp_path / "missing.cose", world.bundle)
    assert Job.from_bytes(image, share, bundle).family_id == world.icm.family_id
    assert Job.load(world.software, world.share, world.bundle).image == image
