"""The asset list's `compress` (docs/assets.md, protocol.md 6.2, 9.1): what is deflated, and a
deflated firmware installs byte-identical to the uncompressed one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Bench,
    assert_holds_world_assets,
    copy_farm,
    copy_state,
    firmware_bytes,
    write_assets,
)

from trustprov.errors import InputError
from trustprov.roles import assets as asset_list
from trustprov.roles import oem
from trustprov.roles.cm import Job


def _list(tmp: Path, compress: str | None, firmware: bytes | None = None) -> Path:
    """The conftest's list (its firmware sealed as it is) with the firmware's ``compress``
    set, or left to its default (None)."""
    toml = write_assets(tmp, epoch=2, firmware=firmware)
    text = toml.read_text()
    line = next(x for x in text.splitlines(keepends=True) if x.startswith("compress ="))
    toml.write_text(text.replace(line, "" if compress is None else f'compress = "{compress}"\n'))
    return toml


def _fw(assets: asset_list.AssetList) -> asset_list.AssetSpec:
    return next(a for a in assets.assets if a.name == "fw")


def test_firmware_is_deflated_by_default_where_it_saves(tmp_path: Path) -> None:
    fw = _fw(asset_list.load(_list(tmp_path, None)))
    assert fw.deflate == 15
    assert sum(fw.deflated_lengths) < 0.95 * fw.length


def test_an_incompressible_firmware_is_not_deflated_by_default(tmp_path: Path) -> None:
    fw = _fw(asset_list.load(_list(tmp_path, None, os.urandom(40_000))))
    assert fw.deflate is None


def test_compress_deflate_deflates_even_what_saves_little(tmp_path: Path) -> None:
    fw = _fw(asset_list.load(_list(tmp_path, "deflate", os.urandom(40_000))))
    assert fw.deflate == 15


def test_compress_none_is_not_deflated(tmp_path: Path) -> None:
    assert _fw(asset_list.load(_list(tmp_path, "none"))).deflate is None


def test_the_default_chunk_size_makes_room_for_the_inflater(tmp_path: Path) -> None:
    def default_size(compress: str) -> int:
        toml = _list(tmp_path / compress, compress)
        toml.write_text(toml.read_text().replace("chunk-size = 16384\n", ""))
        return asset_list.load(toml).chunk_size

    assert default_size("deflate") < default_size("none")


@pytest.mark.parametrize(
    ("asset", "why"),
    [
        ('name = "k"\nkind = "key"\nkey-type = "aes-256"\nslot = 9\nhex = "{}"\n', "never"),
        ('name = "g"\nkind = "generate"\nkey-type = "ec-p256"\nslot = 9\n', "never"),
        ('name = "d"\nkind = "device-key"\nkey-type = "ec-p256"\nslot = 9\n', "never"),
        ('name = "fw2"\nkind = "firmware"\nregion = "r2"\nhex = "00"\n', "must be"),
    ],
    ids=["key", "generate", "device-key", "unknown-value"],
)
def test_compress_where_it_does_not_belong_is_one_line_error(
    tmp_path: Path, asset: str, why: str
) -> None:
    toml = write_assets(tmp_path, epoch=2)
    body = asset.format("00" * 32)
    value = "lz4" if why == "must be" else "deflate"
    toml.write_text(toml.read_text() + f'\n[[asset]]\n{body}compress = "{value}"\n')
    with pytest.raises(InputError, match=why) as e:
        asset_list.load(toml)
    assert "\n" not in e.value.message


def test_a_deflated_firmware_installs_byte_identical_to_the_uncompressed(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    """The same list sealed deflated and not: each chip holds the file's very bytes, and
    `chip show` reports the same SHA-256 for the region."""
    readings, shows = [], []
    for i, compress in enumerate(("deflate", "none")):
        d = tmp_path / compress
        d.mkdir()
        run = oem.regen(
            copy_farm(world.oem_farm, d / "oem.farm"),
            world.oem_uid,
            software_path=world.software,
            state=copy_state(world.oem_dir, d / "state"),
            assets=asset_list.load(_list(d / "assets", compress)),
            out=d / "out",
        )
        fw = next(a for a in run.bundle.manifest.assets if a.name == "fw")
        assert fw.deflate == (15 if compress == "deflate" else None)
        job = Job.load(world.software, d / "out/enc-oem-share.cose", d / "out/bundle.cbor")
        with Bench(cm_farm) as bench:
            uid = bench.uids()[i]
            assert bench.provision(uid, job).result == "provisioned"
            readings.append(bench.read(uid))
            shows.append(bench.client(uid).status(digests=True))
    deflated, plain = readings
    assert deflated.regions == plain.regions
    assert deflated.regions["app"] == firmware_bytes()
    assert_holds_world_assets(deflated, world.public_keys)
    region = hashlib.sha256(firmware_bytes()).digest()
    assert [s["installed"]["regions"]["app"]["sha256"] for s in shows] == [region, region]
    sizes = [(tmp_path / c / "out/bundle.cbor").stat().st_size for c in ("deflate", "none")]
    assert sizes[0] < sizes[1]
