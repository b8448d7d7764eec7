"""The line over the wire with a bundle for authorized chips only: each chip's proof goes out in
the streamed run of FIG. 3; a chip outside the set is recorded ``unauthorized`` and the lot goes
on (a per-chip refusal, not a systemic one)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from boards import BoardStarter
from helpers import assert_holds_world_assets, assert_untouched, copy_farm

from trustprov.chip.probe import Probe
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.lot import LotManifest
from trustprov.line.boards import provision_lot_wire
from trustprov.link.address import open_link
from trustprov.roles import assets as asset_list
from trustprov.roles import oem
from trustprov.roles.cm import Job


def test_authorized_chips_only_over_the_wire(
    world: Any, tmp_path: Path, start_board: BoardStarter
) -> None:
    uids = world.cm_uids()
    inside, outside = uids[:5], uids[5:]
    auth = tmp_path / "auth.cbor"
    auth.write_bytes(AuthorizedSet.from_uids(inside, world.icm.family_id).to_bytes())
    out = tmp_path / "oem"
    result = oem.keygen(
        copy_farm(world.oem_farm, tmp_path / "oem.farm"),
        world.oem_uid,
        software_path=world.software,
        assets=asset_list.load(world.assets_toml),
        out=out,
        auth=auth,
    )
    farm = world.fresh_cm_farm(tmp_path)
    board = start_board(farm, sockets=2)
    summary = provision_lot_wire(
        manifest=LotManifest.from_json((world.root / "lot.json").read_bytes()),
        lot=world.cm_lot,
        job=Job.load(world.software, out / "enc-oem-share.cose", out / "bundle.cbor", auth),
        records_url=f"sqlite:///{tmp_path / 'records.sqlite'}",
        boards=[board.handler],
        station="wire",
        open_link=functools.partial(open_link, timeout=0.25, max_retries=6),
    )
    assert (summary.provisioned, summary.failed) == (len(inside), len(outside))
    assert dict(summary.failures) == {"unauthorized": len(outside)}
    assert not summary.stopped
    with Probe(farm) as p:
        for uid in inside:
            assert_holds_world_assets(p.read(uid), result.public_keys)
        for uid in outside:
            assert_untouched(p.read(uid))
