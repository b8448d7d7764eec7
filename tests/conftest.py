"""Shared fixtures: a family, its signed software, farms of chips, an OEM's sealed bundle.

Everything is built once per session where it is read-only, and per test where a test changes
it (tmp_path copies). Tests run from any working directory: every path is absolute.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from softhsm import SoftHsm
from softhsm import start as softhsm_start

from trustprov.link.farm import FarmLink
from trustprov.roles import assets as asset_list
from trustprov.roles import icm, oem
from trustprov.roles.signer import close_sessions

pytest_plugins = ["boards"]  # tests/boards.py: chip boards as processes, always stopped

FIRMWARE_LEN = 40_000  # three chunks of 16 KiB: enough to exercise chunking quickly


@dataclass(frozen=True)
class World:
    """A complete, read-only run of ICM and OEM: copy ``cm_farm`` before changing chips."""

    root: Path
    icm: icm.Icm
    software: Path
    oem_farm: Path
    oem_uid: bytes
    cm_farm: Path
    cm_lot: str
    assets_toml: Path
    oem_dir: Path
    public_keys: dict[str, bytes]

    @property
    def share(self) -> Path:
        return self.oem_dir / "enc-oem-share.cose"

    @property
    def bundle(self) -> Path:
        return self.oem_dir / "bundle.cbor"

    def cm_uids(self, farm: Path | None = None) -> list[bytes]:
        with FarmLink(farm or self.cm_farm) as f:
            return f.uids(self.cm_lot)

    def fresh_cm_farm(self, dest: Path) -> Path:
        """A private copy of the CM farm (chips MANUFACTURED, nothing installed)."""
        target = dest / "cm.farm"
        shutil.copyfile(self.cm_farm, target)
        return target


ASSET_ENTRIES = """
[[asset]]
name = "aes-1"
kind = "key"
key-type = "aes-256"
slot = 1
hex = "{key1}"

[[asset]]
name = "aes-2"
kind = "key"
key-type = "aes-256"
slot = 2
file = "key2.bin"

[[asset]]
name = "fw"
kind = "firmware"
region = "app"
file = "fw.bin"
compress = "none"  # as it is: tests count and flip its 16 KiB chunks (deflated, tests/roles)

[[asset]]
name = "cfg"
kind = "config"
region = "config"
value = "mode=production"

[[asset]]
name = "signer"
kind = "generate"
key-type = "ec-p256"
slot = 8
"""
# 16 KiB chunks, not the default (the largest that fits): the tests count the firmware's three
ASSETS = "\n[bundle]\nepoch = 1\nchunk-size = 16384\n\n" + ASSET_ENTRIES

KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))


def firmware_bytes() -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(FIRMWARE_LEN))


def build_world(
    root: Path, cm_chips: int = 8, alg: str = "ES256", keys: str | None = None
) -> World:
    made = icm.init(root / "icm", alg=alg, keys=keys)
    software = root / "software.cose"
    icm.sign_software(made, software)
    oem_farm = root / "oem.farm"
    oem_lot = icm.manufacture(made, oem_farm, "OEM", 1, root / "oem-lot.json")
    cm_farm = root / "cm.farm"
    icm.manufacture(made, cm_farm, "LOT-A", cm_chips, root / "lot.json")
    assets_dir = root / "assets"
    assets_dir.mkdir()
    (assets_dir / "key2.bin").write_bytes(KEY2)
    (assets_dir / "fw.bin").write_bytes(firmware_bytes())
    toml = assets_dir / "assets.toml"
    toml.write_text(ASSETS.format(key1=KEY1.hex()))
    result = oem.keygen(
        oem_farm,
        oem_lot.uids[0],
        software_path=software,
        assets=asset_list.load(toml),
        out=root / "oem",
    )
    return World(
        root=root,
        icm=made,
        software=software,
        oem_farm=oem_farm,
        oem_uid=oem_lot.uids[0],
        cm_farm=cm_farm,
        cm_lot="LOT-A",
        assets_toml=toml,
        oem_dir=root / "oem",
        public_keys=result.public_keys,
    )


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


#: the software signature suites the whole flow and the software attacks run with
SUITE_WORLDS = ("ML-DSA-65", "ES256+ML-DSA-65")


@pytest.fixture(scope="session", params=SUITE_WORLDS)
def suite_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    """A complete world (4 CM chips) of a family whose software is signed with ML-DSA-65 or the
    ES256+ML-DSA-65 hybrid; ES256 is the shared ``world``."""
    alg: str = request.param
    return build_world(tmp_path_factory.mktemp(f"world-{alg}"), cm_chips=4, alg=alg)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A fresh SoftHSM2 token for the session (tests/softhsm.py)."""
    hsm = softhsm_start(tmp_path_factory.mktemp("softhsm"))
    yield hsm
    close_sessions()


@pytest.fixture
def cm_farm(world: World, tmp_path: Path) -> Path:
    return world.fresh_cm_farm(tmp_path)
