"""The CM controls the power: it cuts it at every persistent write of CM provisioning (first
install and update) and of OEM keygen and regeneration, and after every link message of the CM's
flow. Every chip must end untouched (and a retry succeeds) or fully provisioned: never half
installed, never bricked.

A cut at a write is the farm's test-only ``before_commit`` hook raising: the transaction never
lands. After it the host process lives on (the same farm handle, its caches included, serves the
retry); after a cut between messages the host drops everything and reopens the farm.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import OemRun, assert_holds_world_assets, assert_untouched, copy_state, write_assets

import trustprov.roles.oem as oem_role
from trustprov.chip.model import Lifecycle
from trustprov.chip.probe import Reading
from trustprov.errors import TrustprovError
from trustprov.link.farm_link import FarmLink
from trustprov.roles.cm import Job, provision_chip
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem import desk_chip

from .attack_helpers import (
    Artifacts,
    PowerCut,
    assert_same_holding,
    manufacture_lot,
    read,
    report,
    run,
)


def _holds_bundle_b(r: Reading, b: Artifacts) -> None:
    m = b.bundle.manifest
    assert (r.lifecycle, r.bundle_id, r.epoch) == (Lifecycle.PROVISIONED, m.bundle_id, m.epoch)
    assert set(r.region_assets.values()) >= {"fw", "cfg", "cfg-b"}


@pytest.fixture
def lot(world: Any, tmp_path: Path) -> tuple[Path, list[bytes]]:
    return manufacture_lot(world, tmp_path, "PWR", 36)


def _cm_scenarios(world: Any, b_job: Job, b: Artifacts) -> dict[str, tuple[Job | None, Job, Any]]:
    """name: (bundle installed first, bundle under attack, check of the finished chip)."""
    job_a = Job.load(world.software, world.share, world.bundle)
    return {
        "first install": (None, job_a, lambda r: assert_holds_world_assets(r, world.public_keys)),
        "update to epoch 2 on newer software": (job_a, b_job, lambda r: _holds_bundle_b(r, b)),
    }


def _prepare(farm: Path, uid: bytes, first: Job | None) -> Reading:
    if first is not None:
        with FarmLink(farm) as link, link.connect(uid) as client:
            assert provision_chip(client, uid, first).result == "provisioned"
    return read(farm, uid)


def test_attack_power_cut_at_every_persistent_write_of_cm_provisioning(
    world: Any,
    lot: tuple[Path, list[bytes]],
    bundle_b: OemRun,
    software_svn: dict[int, Path],
) -> None:
    farm, uids = lot
    b_job = Job.load(software_svn[2], bundle_b.share, bundle_b.bundle)
    b = Artifacts.load(software_svn[2], bundle_b.share, bundle_b.bundle)
    chips = iter(uids)
    cuts: dict[str, int] = {}
    for name, (first, job, finished) in _cm_scenarios(world, b_job, b).items():
        uid = next(chips)
        _prepare(farm, uid, first)
        counter = PowerCut()
        with FarmLink(farm) as link, link.connect(uid) as client:
            link._farm.before_commit = counter
            assert provision_chip(client, uid, job).result == "provisioned"
        writes = counter.writes
        assert writes >= 2, (name, writes)  # the security counter, then the installation
        for at in range(writes):
            uid = next(chips)
            before = _prepare(farm, uid, first)
            with FarmLink(farm) as link:
                link._farm.before_commit = PowerCut(at)
                with link.connect(uid) as client:
                    outcome = provision_chip(client, uid, job)
                assert (outcome.result, outcome.error_code) == ("failed", "internal"), outcome
                link._farm.before_commit = None
                after = read(farm, uid)
                if first is None:
                    assert_untouched(after)
                assert_same_holding(before, after)  # nothing of the new bundle landed
                with link.connect(uid) as client:  # power back on: the retry succeeds
                    assert provision_chip(client, uid, job).result == "provisioned"
            finished(read(farm, uid))  # read by a fresh probe: the whole bundle is there
        cuts[name] = writes
    report("power cut at every persistent write (CM)", writes_cut=cuts)


def test_attack_power_cut_after_every_link_message_of_cm_provisioning(
    world: Any,
    lot: tuple[Path, list[bytes]],
    bundle_b: OemRun,
    software_svn: dict[int, Path],
) -> None:
    farm, uids = lot
    b_job = Job.load(software_svn[2], bundle_b.share, bundle_b.bundle)
    b = Artifacts.load(software_svn[2], bundle_b.share, bundle_b.bundle)
    chips = iter(uids)
    cuts: dict[str, int] = {}
    for name, (first, job, finished) in _cm_scenarios(world, b_job, b).items():
        p = job.prepared  # what provision_chip sends: boot, begin, every chunk, finish
        sent = [job.boot_request, p.begin, *p.chunks, p.finish]
        for cut in range(len(sent) + 1):
            uid = next(chips)
            before = _prepare(farm, uid, first)
            with FarmLink(farm) as link, link.connect(uid) as client:
                assert run(client, sent[:cut]).accepted
            # the power is gone and the host process with it: reopen everything
            after = read(farm, uid)
            if cut < len(sent):
                assert_same_holding(before, after)
                if first is None:
                    assert_untouched(after)
            else:
                finished(after)
            with FarmLink(farm) as link, link.connect(uid) as client:
                outcome = provision_chip(client, uid, job)
            expected = "already-provisioned" if cut == len(sent) else "provisioned"
            assert outcome.result == expected, (name, cut, outcome)
            finished(read(farm, uid))
        cuts[name] = len(sent) + 1
    report("power cut after every link message (CM)", cut_points=cuts)


@contextmanager
def _cutting_oem_farm(monkeypatch: pytest.MonkeyPatch, cut: PowerCut) -> Iterator[None]:
    """The OEM tool's farm handle with the power-cut hook armed."""

    class CuttingFarmLink(FarmLink):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self._farm.before_commit = cut

    with monkeypatch.context() as m:
        m.setattr(desk_chip, "FarmLink", CuttingFarmLink)  # where the OEM opens its chip
        yield


def test_attack_power_cut_at_every_persistent_write_of_oem_keygen_and_regen(
    world: Any, tmp_path: Path, cm_farm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OEM's chip loses power at each of its writes during FIG. 2 (and FIG. 4): nothing is
    written to the OEM's directory, the chip is as it was, and the retry gives a bundle that
    the CM's chips install."""
    farm, uids = manufacture_lot(world, tmp_path, "OEMPWR", 6)
    assets = asset_list.load(write_assets(tmp_path / "assets"))
    chips = iter(uids)
    cm_chips = iter(world.cm_uids(cm_farm))
    cuts: dict[str, int] = {}

    def keygen(uid: bytes, out: Path) -> Any:
        return oem_role.keygen(farm, uid, software_path=world.software, assets=assets, out=out)

    update = asset_list.load(write_assets(tmp_path / "update", epoch=2))  # above the state's

    def regen(uid: bytes, out: Path) -> Any:
        # a state per output (regen records there the epoch it issues); a retry reuses it
        state = out.with_name(f"{out.name}-state")
        if not state.exists():
            copy_state(world.oem_dir, state)
        return oem_role.regen(
            farm, uid, software_path=world.software, state=state, assets=update, out=out
        )

    for name, tool in (("keygen", keygen), ("regen", regen)):
        counter = PowerCut()
        with _cutting_oem_farm(monkeypatch, counter):
            tool(next(chips), tmp_path / f"{name}-count")
        assert counter.writes >= 1, name  # the security counter on a fresh chip
        for at in range(counter.writes):
            uid = next(chips)
            out = tmp_path / f"{name}-cut-{at}"
            with _cutting_oem_farm(monkeypatch, PowerCut(at)), pytest.raises(TrustprovError) as e:
                tool(uid, out)
            assert e.value.code == "internal"
            assert not out.exists()  # the OEM's directory: all or nothing
            r = read(farm, uid)
            assert_untouched(r)
            assert r.security_counter == 0
            result = tool(uid, out)  # power back on: the retry succeeds
            cm_uid = next(cm_chips)
            job = Job.load(world.software, out / "enc-oem-share.cose", out / "bundle.cbor")
            with FarmLink(cm_farm) as link, link.connect(cm_uid) as client:
                assert provision_chip(client, cm_uid, job).result == "provisioned"
            assert_holds_world_assets(read(cm_farm, cm_uid), result.public_keys)
        cuts[name] = counter.writes
    report("power cut at every persistent write (OEM)", writes_cut=cuts)
