"""roles.oem.authorize and the --auth of oem regen: which chips a bundle is for."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cbor2
import pytest
from helpers import Bench, assert_untouched, copy_farm, copy_state, write_assets

from trustprov.errors import InputError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Authorization, Bundle
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem.authorize import authorize, load_authorized


def _key(world: Any) -> Path:
    return Path(world.icm.path / "lot-signing.pub.pem")


def test_authorize_refusals(world: Any, tmp_path: Path) -> None:
    out = tmp_path / "auth.cbor"
    lot = world.root / "lot.json"
    with pytest.raises(InputError, match="at least one"):
        authorize([], out, _key(world))
    with pytest.raises(InputError, match="given twice"):
        authorize([lot, lot], out, _key(world))
    twin = tmp_path / "twin.json"  # the same lot under another file name: the same chips
    shutil.copyfile(lot, twin)
    shutil.copyfile(f"{lot}.cose", f"{twin}.cose")
    with pytest.raises(InputError, match="given twice"):
        authorize([lot, twin], out, _key(world))
    assert not out.exists()
    s = authorize([lot, world.root / "oem-lot.json"], out, _key(world))
    assert (len(s), s.family_id) == (len(world.cm_uids()) + 1, world.icm.family_id)
    assert load_authorized(out).root == s.root
    with pytest.raises(InputError):  # an existing output, without force
        authorize([lot], out, _key(world))


def test_a_lot_of_another_family_is_refused(world: Any, tmp_path: Path) -> None:
    """Each family has its own lot-signing key: another family's lot fails the signature."""
    other = icm.init(tmp_path / "icm2")
    made = icm.manufacture(other, tmp_path / "b.farm", "LOT-B", 2, tmp_path / "b.json")
    with pytest.raises(VerificationError, match="another key"):
        authorize([world.root / "lot.json", made.manifest], tmp_path / "a.cbor", _key(world))
    assert not (tmp_path / "a.cbor").exists()


def test_regen_with_auth_limits_the_update(world: Any, tmp_path: Path) -> None:
    uids = world.cm_uids()
    auth = tmp_path / "auth.cbor"
    auth.write_bytes(AuthorizedSet.from_uids(uids[:2], world.icm.family_id).to_bytes())
    out = tmp_path / "regen"
    oem.regen(
        copy_farm(world.oem_farm, tmp_path / "oem.farm"),
        world.oem_uid,
        software_path=world.software,
        state=copy_state(world.oem_dir, tmp_path / "state"),
        assets=asset_list.load(write_assets(tmp_path / "assets", epoch=2)),
        out=out,
        auth=auth,
    )
    bundle = Bundle.from_bytes((out / "bundle.cbor").read_bytes())
    s = load_authorized(auth)
    assert bundle.manifest.authorized == Authorization(s.root, 2)
    job = Job.load(world.software, out / "enc-oem-share.cose", out / "bundle.cbor", auth)
    farm = world.fresh_cm_farm(tmp_path)
    with Bench(farm) as bench:
        assert bench.provision(uids[0], job).result == "provisioned"
        outcome = bench.provision(uids[2], job)
        assert outcome.error_code == "unauthorized"
        assert_untouched(bench.read(uids[2]))


def test_a_million_chips_add_at_most_64_bytes_and_20_hashes(world: Any) -> None:
    bundle = Bundle.from_bytes(world.bundle.read_bytes())
    payload = cbor2.loads(bundle.manifest.to_payload())
    assert payload["authorized"] is None  # a bundle for any chip says so
    without = dict(payload)
    del without["authorized"]
    with_set = {**payload, "authorized": [bytes(32), 1_000_000]}
    assert len(cbor.encode(with_set)) - len(cbor.encode(without)) <= 64
    # RFC 9162: a proof in a tree of n leaves has at most ceil(log2 n) hashes
    assert (1_000_000 - 1).bit_length() == 20
    s = AuthorizedSet.from_uids(i.to_bytes(16, "big") for i in range(1025))
    assert max(len(s.proof(u).path) for u in s.uids) == (1025 - 1).bit_length()
