"""The line over the wire with a bundle for authorized chips only: each chip's proof goes out in
the streamed run of FIG. 3; a lot with chips outside the set is refused before its first chip,
naming them (each chip would refuse the bundle, ``unauthorized``: tests/attacks/test_attack_authz.py
checks that a chip does)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from boards import BoardStarter
from helpers import assert_holds_world_assets, assert_untouched, copy_farm

from trustprov.chip.probe import Probe
from trustprov.errors import InputError
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.lot import LotManifest
from trustprov.line.boards import provision_lot_wire
from trustprov.link.address import open_link
from trustprov.roles import oem
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list


def _keygen(world: Any, tmp_path: Path, uids: list[bytes]) -> tuple[Path, Path, Any]:
    """A bundle for the chips ``uids`` only: its AUTH file, OEM directory and keygen result."""
    auth = tmp_path / "auth.cbor"
    auth.write_bytes(AuthorizedSet.from_uids(uids, world.icm.family_id).to_bytes())
    out = tmp_path / "oem"
    result = oem.keygen(
        copy_farm(world.oem_farm, tmp_path / "oem.farm"),
        world.oem_uid,
        software_path=world.software,
        assets=asset_list.load(world.assets_toml),
        out=out,
        auth=auth,
    )
    return auth, out, result


def _provision(world: Any, tmp_path: Path, auth: Path, out: Path, board: Any) -> Any:
    return provision_lot_wire(
        manifest=LotManifest.from_json((world.root / "lot.json").read_bytes()),
        lot=world.cm_lot,
        job=Job.load(world.software, out / "enc-oem-share.cose", out / "bundle.cbor", auth),
        records_url=f"sqlite:///{tmp_path / 'records.sqlite'}",
        boards=[board.handler],
        station="wire",
        open_link=functools.partial(open_link, timeout=0.25, max_retries=6),
    )


def test_authorized_chips_only_over_the_wire(
    world: Any, tmp_path: Path, start_board: BoardStarter
) -> None:
    uids = world.cm_uids()
    auth, out, result = _keygen(world, tmp_path, uids)
    farm = world.fresh_cm_farm(tmp_path)
    board = start_board(farm, sockets=2)
    summary = _provision(world, tmp_path, auth, out, board)
    assert (summary.provisioned, summary.failed) == (len(uids), 0)
    assert not summary.stopped
    with Probe(farm) as p:
        for uid in uids:
            assert_holds_world_assets(p.read(uid), result.public_keys)


def test_a_lot_with_chips_outside_the_set_is_refused_before_its_first_chip(
    world: Any, tmp_path: Path, start_board: BoardStarter
) -> None:
    """issue 24: chips outside the set refused the bundle one by one; the host knows first."""
    uids = world.cm_uids()
    inside, outside = uids[:5], uids[5:]
    auth, out, _ = _keygen(world, tmp_path, inside)
    farm = world.fresh_cm_farm(tmp_path)
    board = start_board(farm, sockets=2)
    with pytest.raises(InputError) as e:
        _provision(world, tmp_path, auth, out, board)
    assert f"{len(outside)} of the lot's {len(uids)} chips are not in the authorized set" in str(
        e.value
    )
    assert all(u.hex() in str(e.value) for u in outside)
    with Probe(farm) as p:
        for uid in uids:
            assert_untouched(p.read(uid))
