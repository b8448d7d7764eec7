"""Artifacts of the attack suite, made once per session on top of the shared ``world``.

Everything here is read-only: an attack that changes chips works on a private farm copy
(``cm_farm`` of tests/conftest.py, or a lot of its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import Family, OemRun, copy_farm, keygen_on, regen, second_family

from trustprov.roles import icm

from .attack_helpers import Artifacts

#: the second bundle of the same OEM: another firmware, one more asset, a later epoch
OTHER_FIRMWARE = bytes((i * 13 + 5) % 253 for i in range(20_000))
EXTRA_ASSET = """
[[asset]]
name = "cfg-b"
kind = "config"
region = "config-b"
value = "mode=diagnostic"
"""


@pytest.fixture(scope="session")
def artifacts(world: Any) -> Artifacts:
    """What the OEM sent the CM: signed software, ENC(OEM_SHARE), the bundle (epoch 1)."""
    return Artifacts.load(world.software, world.share, world.bundle)


@pytest.fixture(scope="session")
def other_family(tmp_path_factory: pytest.TempPathFactory) -> Family:
    """A second chip family (another ICM): its software, chips and an OEM's keygen output."""
    return second_family(tmp_path_factory.mktemp("other-family"))


@pytest.fixture(scope="session")
def oem_b(world: Any, tmp_path_factory: pytest.TempPathFactory) -> OemRun:
    """OEM B: a second oem.keygen on a chip of the same family; its own OEM_SHARE and domain."""
    root = tmp_path_factory.mktemp("oem-b")
    farm = copy_farm(world.oem_farm, root / "oem-b.farm")
    return keygen_on(farm, world.oem_uid, world.software, root, "oem-b")


@pytest.fixture(scope="session")
def cm_own(world: Any, tmp_path_factory: pytest.TempPathFactory) -> OemRun:
    """The CM as its own OEM ([0034]): FIG. 2 on a chip of the lot it kept for itself, with a
    higher epoch than the OEM's bundle."""
    root = tmp_path_factory.mktemp("cm-own")
    farm = copy_farm(world.cm_farm, root / "cm-own.farm")
    uid = world.cm_uids(farm)[-1]
    return keygen_on(farm, uid, world.software, root, "cm-own", epoch=5)


@pytest.fixture(scope="session")
def bundle_b(world: Any, tmp_path_factory: pytest.TempPathFactory) -> OemRun:
    """The same OEM's second bundle (FIG. 4 from its kept state): another firmware, one more
    asset, epoch 2."""
    root = tmp_path_factory.mktemp("bundle-b")
    return regen(world, root, "bundle-b", epoch=2, firmware=OTHER_FIRMWARE, extra=EXTRA_ASSET)


@pytest.fixture(scope="session")
def software_svn(world: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The same code signed by the ICM at security versions 1, 2 and 3."""
    root = tmp_path_factory.mktemp("svn")
    images = {1: world.software}
    for svn in (2, 3):
        images[svn] = root / f"software-svn{svn}.cose"
        icm.sign_software(world.icm, images[svn], security_version=svn)
    return images
