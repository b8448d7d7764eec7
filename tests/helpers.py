"""Helpers shared by the chip, firmware, link, roles, line and flow tests.

The constants of the shared world (KEY1, KEY2, the firmware image, the asset list) come from
``tests/conftest.py`` itself, loaded by path under a private module name, so they never drift
from what the ``world`` fixture built and never depend on which ``conftest`` module pytest last
imported.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.chip.model import Lifecycle
from trustprov.chip.probe import Probe, Reading
from trustprov.chip.ram import DEFAULT_RAM
from trustprov.chip.trng import Trng
from trustprov.crypto.keys import public_key_pem
from trustprov.firmware.commands import ProvisioningSoftware
from trustprov.formats.software import CODE_ROOT
from trustprov.link.client import ChipClient
from trustprov.link.port import ChipPort
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job, Outcome, provision_chip
from trustprov.roles.oem import SealResult
from trustprov.roles.oem import assets as asset_list

TESTS = Path(__file__).resolve().parent


def _load_conftest() -> ModuleType:
    name = "_trustprov_tests_root_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


_CONFTEST = _load_conftest()
KEY1: bytes = _CONFTEST.KEY1
KEY2: bytes = _CONFTEST.KEY2
ASSETS_TEMPLATE: str = _CONFTEST.ASSETS
ASSET_ENTRIES: str = _CONFTEST.ASSET_ENTRIES
CONFIG = b"mode=production"
#: a whole ICM/OEM run in a directory (tests/conftest.py), e.g. with other signing suites or keys
build_world: Callable[..., Any] = _CONFTEST.build_world
SIGNER_SLOT = 8


def firmware_bytes() -> bytes:
    data: bytes = _CONFTEST.firmware_bytes()
    return data


# -- bits and bytes ------------------------------------------------------------------------------
def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def windows(secret: bytes, size: int = 12, step: int = 4) -> list[bytes]:
    """The whole secret and overlapping slices of it, to catch partial leaks too."""
    if len(secret) <= size:
        return [secret]
    return [secret, *(secret[i : i + size] for i in range(0, len(secret) - size + 1, step))]


# -- chips on a test bench -----------------------------------------------------------------------
class RecordingLink:
    """An in-process link that keeps every raw (request, response) pair it carried."""

    def __init__(
        self, port: ChipPort, log: list[tuple[bytes, bytes]] | deque[tuple[bytes, bytes]]
    ) -> None:
        self._port = port
        self.log = log

    def exchange(self, request: bytes) -> bytes:
        response = self._port.handle(bytes(request))
        self.log.append((bytes(request), response))
        return response


class Bench:
    """A farm file on the test bench: chips powered on through the real link, read by the probe."""

    def __init__(self, farm_path: Path) -> None:
        self.path = Path(farm_path)
        self.farm = Farm(self.path)
        self.probe = Probe(self.path)
        self.log: deque[tuple[bytes, bytes]] = deque(maxlen=64)  # the latest exchanges

    def close(self) -> None:
        self.probe.close()
        self.farm.close()

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def uids(self, lot: str | None = None) -> list[bytes]:
        return self.farm.uids(lot)

    def chip(
        self,
        uid: bytes,
        *,
        ram_budget: int = DEFAULT_RAM,
        trng: Trng | None = None,
        code_root: Path = CODE_ROOT,
    ) -> Chip:
        """Power chip ``uid`` on (fresh RAM, no software running)."""
        return Chip(
            self.farm, self.farm.load(uid), trng=trng, ram_budget=ram_budget, code_root=code_root
        )

    def client(self, uid: bytes, **kw: Any) -> ChipClient:
        """Power chip ``uid`` on and talk to it over a recording in-process link."""
        return self.client_for(self.chip(uid, **kw))

    def client_for(self, chip: Chip) -> ChipClient:
        return ChipClient(RecordingLink(ChipPort(chip), self.log))

    def software(self, uid: bytes, image: bytes, **kw: Any) -> ProvisioningSoftware:
        """Power chip ``uid`` on, boot ``image`` and hand back the running firmware itself."""
        return ProvisioningSoftware(self.chip(uid, **kw).boot(image))

    def read(self, uid: bytes) -> Reading:
        return self.probe.read(uid)

    def provision(self, uid: bytes, job: Job) -> Outcome:
        return provision_chip(self.client(uid), uid, job)


def farm_rows(farm_path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(farm_path)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


# -- what a chip must hold -----------------------------------------------------------------------
def assert_untouched(r: Reading) -> None:
    """A manufactured chip that never accepted a bundle: nothing installed at all."""
    assert r.lifecycle == Lifecycle.MANUFACTURED
    assert r.slots == {}
    assert r.regions == {}
    assert r.domain_id is None
    assert r.bundle_id is None


def signer_public_pem(slot_value: bytes) -> bytes:
    return public_key_pem(ec.derive_private_key(int.from_bytes(slot_value), ec.SECP256R1()))


def assert_holds_world_assets(r: Reading, public_keys: dict[str, bytes]) -> None:
    """Exactly the assets of the conftest asset list, nothing more."""
    assert r.lifecycle == Lifecycle.PROVISIONED
    assert sorted(r.slots) == [1, 2, SIGNER_SLOT]
    assert (r.slots[1].asset, r.slots[1].key_type, r.slots[1].value) == ("aes-1", "aes-256", KEY1)
    assert (r.slots[2].asset, r.slots[2].key_type, r.slots[2].value) == ("aes-2", "aes-256", KEY2)
    signer = r.slots[SIGNER_SLOT]
    assert (signer.asset, signer.key_type) == ("signer", "ec-p256")
    assert signer_public_pem(signer.value) == public_keys["signer"]
    assert r.regions == {"app": firmware_bytes(), "config": CONFIG}
    assert r.region_assets == {"app": "fw", "config": "cfg"}


# -- artifacts -----------------------------------------------------------------------------------
def world_job(world: Any) -> Job:
    return Job.load(world.software, world.share, world.bundle)


def write_assets(
    d: Path,
    *,
    epoch: int = 1,
    aead: str = "AES-GCM",
    chunk_size: int | None = None,
    min_svn: int | None = None,
    extra: str = "",
    firmware: bytes | None = None,
) -> Path:
    """The conftest asset list with its own [bundle] table, in a directory of its own."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "key2.bin").write_bytes(KEY2)
    (d / "fw.bin").write_bytes(firmware if firmware is not None else firmware_bytes())
    bundle = f'epoch = {epoch}\naead = "{aead}"\n'
    bundle += f"chunk-size = {16384 if chunk_size is None else chunk_size}\n"  # the conftest's
    if min_svn is not None:
        bundle += f"min-security-version = {min_svn}\n"
    text = ASSETS_TEMPLATE.format(key1=KEY1.hex()).replace(
        "epoch = 1\nchunk-size = 16384\n", bundle, 1
    )
    toml = d / "assets.toml"
    toml.write_text(text + extra)
    return toml


def copy_farm(src: Path, dest: Path) -> Path:
    shutil.copyfile(src, dest)
    return dest


@dataclass(frozen=True)
class OemRun:
    """One OEM keygen or regen: its OEM_DIR and what the chip returned."""

    out: Path
    result: SealResult

    @property
    def share(self) -> Path:
        return self.out / "enc-oem-share.cose"

    @property
    def bundle(self) -> Path:
        return self.out / "bundle.cbor"

    def job(self, software: Path) -> Job:
        return Job.load(software, self.share, self.bundle)


def regen(
    world: Any,
    tmp: Path,
    name: str,
    *,
    farm: Path | None = None,
    uid: bytes | None = None,
    software: Path | None = None,
    **asset_options: Any,
) -> OemRun:
    """FIG. 4 with the world's kept state, on a private copy of the OEM's chip by default."""
    if farm is None:
        farm = copy_farm(world.oem_farm, tmp / f"{name}-oem.farm")
        uid = world.oem_uid
    assert uid is not None
    asset_options.setdefault("epoch", 2)  # an update: above the epoch of the kept state's bundle
    assets = asset_list.load(write_assets(tmp / f"{name}-assets", **asset_options))
    out = tmp / name
    result = oem.regen(
        farm,
        uid,
        software_path=software or world.software,
        state=copy_state(world.oem_dir, tmp / f"{name}-state"),
        assets=assets,
        out=out,
    )
    return OemRun(out, result)


def copy_state(state: Path, dest: Path) -> Path:
    """A private copy of an OEM state (keygen's directory): regen records in it each epoch it
    issues, so a test that regenerates from the world's state works on its own copy."""
    shutil.copytree(state, dest)
    return dest


def keygen_on(
    farm: Path, uid: bytes, software: Path, tmp: Path, name: str, **asset_options: Any
) -> OemRun:
    """FIG. 2 by an OEM of its own (a fresh OEM_RND_INPUT and RND_SHARE: another domain)."""
    assets = asset_list.load(write_assets(tmp / f"{name}-assets", **asset_options))
    out = tmp / name
    result = oem.keygen(farm, uid, software_path=software, assets=assets, out=out)
    return OemRun(out, result)


@dataclass(frozen=True)
class Family:
    """A second chip family: its own ICM, software, an OEM chip and that OEM's keygen output."""

    icm: icm.Icm
    software: Path
    farm: Path
    uid: bytes
    lot_json: Path
    oem: OemRun


def second_family(root: Path) -> Family:
    root.mkdir(parents=True, exist_ok=True)
    made = icm.init(root / "icm2")
    software = root / "software2.cose"
    icm.sign_software(made, software)
    farm = root / "family2.farm"
    lot = icm.manufacture(made, farm, "F2", 2, root / "family2-lot.json")
    run = keygen_on(farm, lot.uids[0], software, root, "oem2")
    return Family(made, software, farm, lot.uids[1], root / "family2-lot.json", run)


def provision_command(
    *,
    farm: Path,
    lot: str,
    software: Path,
    share: Path,
    bundle: Path,
    station: str,
    jobs: int,
    records: str | None = None,
) -> list[str]:
    """`trustprov cm provision ... --json` as a process of its own (signal and crash tests)."""
    argv = [sys.executable, "-c", "from trustprov.cli.main import main; main()", "cm", "provision"]
    argv += ["--farm", str(farm), "--lot", lot, "--software", str(software)]
    argv += ["--share", str(share), "--bundle", str(bundle)]
    if records is not None:
        argv += ["--records", records]
    return [*argv, "--station", station, "--jobs", str(jobs), "--json"]
