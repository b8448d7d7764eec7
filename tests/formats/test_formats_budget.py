"""trustprov.formats.budget: one set of numbers, and the chip refuses exactly what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import Bench, copy_farm, world_job

from trustprov.crypto.aead import AEAD_ALIASES
from trustprov.errors import ChipRefused, FormatError
from trustprov.formats import budget
from trustprov.formats.bundle import Bundle
from trustprov.formats.limits import LIMITS
from trustprov.link.client import BundleParams
from trustprov.roles import assets as asset_list
from trustprov.roles.cm import provision_chip


def _check(**over: int) -> None:
    shape = {"manifest_len": 1000, "chunk_size": 16384, "assets": 5, "bundle_len": 100_000}
    budget.check_bundle(**(shape | over))


def test_a_bundle_within_every_limit_passes() -> None:
    _check()
    fits = budget.CHIP_RAM - budget.provisioning_ram(0, 16384)
    _check(manifest_len=fits)  # exactly the chip's RAM
    _check(bundle_len=LIMITS.bundle)


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"manifest_len": LIMITS.manifest + 1}, "manifest would be"),
        ({"manifest_len": budget.CHIP_RAM - budget.provisioning_ram(0, 16384) + 1}, "RAM"),
        ({"chunk_size": 32 * 1024}, "RAM"),
        ({"assets": 400, "chunk_size": 24576}, "seal"),
        ({"bundle_len": LIMITS.bundle + 1}, "cm provision"),
    ],
)
def test_a_bundle_over_a_limit_is_refused_with_its_reason(
    over: dict[str, int], reason: str
) -> None:
    with pytest.raises(FormatError, match=reason):
        _check(**over)


def test_the_chip_refuses_exactly_where_the_budget_says(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    """The chip's reservations are the budget's numbers: a chip with exactly the RAM that
    provisioning_ram names installs the bundle, one with a byte less refuses it."""
    job = world_job(world)
    bundle = Bundle.from_bytes(world.bundle.read_bytes())
    m = bundle.manifest
    need = budget.provisioning_ram(len(bundle.signed.to_bytes()), m.chunk_size, m.deflated)
    with Bench(cm_farm) as bench:
        short, enough = bench.uids()[:2]
        refused = provision_chip(bench.client(short, ram_budget=need - 1), short, job)
        assert refused.error_code == "ram-budget", refused
        done = provision_chip(bench.client(enough, ram_budget=need), enough, job)
        assert done.ok, done


def test_the_planned_sizes_are_those_of_the_sealed_bundle(world: Any) -> None:
    """The OEM's tool checks the bundle before the chip seals it: its sizes must be exact."""
    assets = asset_list.load(world.assets_toml)
    bundle = Bundle.from_bytes(world.bundle.read_bytes())
    planned = asset_list.planned_sizes(assets, bundle.manifest.min_security_version)
    assert planned == (len(bundle.signed.to_bytes()), world.bundle.stat().st_size)


def test_the_sealing_chip_refuses_a_bundle_no_chip_could_install(
    world: Any, tmp_path: Path
) -> None:
    """A host tool other than the OEM's may ask for chunks of 32 KiB: a small asset seals, but
    every chip would refuse the bundle for its RAM. The sealing chip refuses to MAC it."""
    farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    with Bench(farm) as bench:
        chip = bench.client(world.oem_uid)
        chip.boot(world.software.read_bytes())
        chip.keygen(bytes(32), BundleParams(1, 1, AEAD_ALIASES["AES-GCM"].cose_id, 32 * 1024))
        chip.seal_asset("cfg", "config", 100, {"region": "config"})
        chip.seal_chunk(0, bytes(100))
        with pytest.raises(ChipRefused) as e:
            chip.seal_finish()
    assert e.value.code == "ram-budget"
