"""A CLI world, built once per session through the CLI itself.

Two chip families: family A (the ICM, its signed software, an OEM provisioning chip, a CM lot of
four chips, the OEM's keygen output and an epoch-2 regen) and family B (the same, smaller) for the
"another family's chip/bundle" cases. Everything in the world is read-only: a test that changes
chips copies the farm to its tmp_path first.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cbor2
import pytest

from .helpers import copy_farm, ok, write_assets

HERE = Path(__file__).parent
GUARD = "test_every_leaf_command_is_invoked"
CM_LOT = "LOT-A"
CM_CHIPS = 4


@dataclass(frozen=True)
class Family:
    icm: Path
    software: Path
    pubkey: Path
    oem_farm: Path
    oem_uid: str
    cm_farm: Path
    cm_lot: str
    cm_uids: tuple[str, ...]
    lot_json: Path
    oem_dir: Path

    @property
    def share(self) -> Path:
        return self.oem_dir / "enc-oem-share.cose"

    @property
    def bundle(self) -> Path:
        return self.oem_dir / "bundle.cbor"

    def secrets(self) -> list[bytes]:
        """HW_SHARE, ROM_SHARE, K_OEM_SHARE, K_OEM_MASTER_SHARE: must never appear in output."""
        return list(cbor2.loads((self.icm / "family-secrets.cbor").read_bytes()).values())


@dataclass(frozen=True)
class CliWorld:
    root: Path
    a: Family
    b: Family
    assets_toml: Path
    epoch2_dir: Path  # regen of family A's OEM state with epoch 2 (an update bundle)
    provisioned_farm: Path  # a copy of family A's CM farm, provisioned with a.bundle

    def fresh_farm(self, dest: Path, family: str = "a") -> Path:
        """A private copy of a family's CM farm (chips MANUFACTURED)."""
        return copy_farm(getattr(self, family).cm_farm, dest, "cm.farm")

    def provisioned_copy(self, dest: Path) -> Path:
        return copy_farm(self.provisioned_farm, dest, "cm.farm")


def _uids(lot_json: Path) -> tuple[str, ...]:
    return tuple(c["uid"] for c in json.loads(lot_json.read_text())["chips"])


def build_family(root: Path, assets_toml: Path, cm_chips: int) -> Family:
    root.mkdir(parents=True)
    icm = root / "icm"
    ok("icm", "init", icm, record=False)
    software = root / "software.cose"
    ok("icm", "sign-software", "--icm", icm, "--out", software, record=False)
    oem_farm, oem_lot = root / "oem.farm", root / "oem-lot.json"
    ok(
        "icm",
        "manufacture",
        "--icm",
        icm,
        "--farm",
        oem_farm,
        "--lot",
        "OEM",
        "--count",
        "1",
        "--manifest",
        oem_lot,
        record=False,
    )
    cm_farm, lot_json = root / "cm.farm", root / "lot.json"
    ok(
        "icm",
        "manufacture",
        "--icm",
        icm,
        "--farm",
        cm_farm,
        "--lot",
        CM_LOT,
        "--count",
        str(cm_chips),
        "--manifest",
        lot_json,
        record=False,
    )
    oem_uid = _uids(oem_lot)[0]
    oem_dir = root / "oem"
    ok(
        "oem",
        "keygen",
        "--farm",
        oem_farm,
        "--chip",
        oem_uid,
        "--software",
        software,
        "--assets",
        assets_toml,
        "--out",
        oem_dir,
        record=False,
    )
    return Family(
        icm=icm,
        software=software,
        pubkey=icm / "prov-signing.pub.pem",
        oem_farm=oem_farm,
        oem_uid=oem_uid,
        cm_farm=cm_farm,
        cm_lot=CM_LOT,
        cm_uids=_uids(lot_json),
        lot_json=lot_json,
        oem_dir=oem_dir,
    )


@pytest.fixture(scope="session")
def cw(tmp_path_factory: pytest.TempPathFactory) -> CliWorld:
    root = tmp_path_factory.mktemp("cliworld")
    assets_toml = write_assets(root / "assets")
    a = build_family(root / "a", assets_toml, CM_CHIPS)
    b = build_family(root / "b", assets_toml, 2)
    # FIG. 4 on a copy of the OEM chip: the same OEM domain, an epoch-2 bundle
    epoch2_toml = write_assets(root / "assets-epoch2", epoch=2)
    regen_farm = copy_farm(a.oem_farm, root / "regen")
    epoch2_dir = root / "epoch2"
    regen_state = root / "regen-state"  # regen records the epoch it issues in its state
    shutil.copytree(a.oem_dir, regen_state)
    ok(
        "oem",
        "regen",
        "--farm",
        regen_farm,
        "--chip",
        a.oem_uid,
        "--software",
        a.software,
        "--state",
        regen_state,
        "--assets",
        epoch2_toml,
        "--out",
        epoch2_dir,
        record=False,
    )
    provisioned = copy_farm(a.cm_farm, root / "provisioned", "cm.farm")
    ok(
        "cm",
        "provision",
        "--farm",
        provisioned,
        "--lot",
        a.cm_lot,
        "--software",
        a.software,
        "--share",
        a.share,
        "--bundle",
        a.bundle,
        "--json",
        record=False,
    )
    return CliWorld(root, a, b, assets_toml, epoch2_dir, provisioned)


# -- the guard runs last, and only judges a run of the whole package --------------------------
_partial_run = False


def _in_package(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents


def pytest_deselected(items: list[pytest.Item]) -> None:
    global _partial_run  # noqa: PLW0603 - one flag per session
    if any(_in_package(i) for i in items):
        _partial_run = True


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under pytest-xdist (``--dist loadgroup``) the package runs as one group in one process, so
    the guard sees every command the package invoked."""
    if _in_package(item):
        item.add_marker(pytest.mark.xdist_group("cli"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    global _partial_run  # noqa: PLW0603 - one flag per session
    files = {Path(str(i.path)).name for i in items if _in_package(i)}
    if files != {p.name for p in HERE.glob("test_*.py")}:
        _partial_run = True
    guards = [i for i in items if _in_package(i) and i.name == GUARD]
    for g in guards:
        items.remove(g)
    items.extend(guards)


@pytest.fixture
def whole_package_ran() -> bool:
    return not _partial_run
