"""C1, C2: the CM provisions chips the OEM did not authorize (issue 10, item 2).

The OEM's bundle names an authorized set (its Merkle root and size under the manifest's CMAC).
The CM holds the bundle, ENC(OEM_SHARE), the AUTH file and any number of chips of the family,
and tries to install the bundle on a chip outside the set: with no proof, with another chip's
proof, a truncated or lengthened proof, a proof of a set it made itself, the root in the manifest
changed to its own set's or to null ("any chip"). Each attack fails if the chip installs
anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from helpers import Bench, assert_holds_world_assets, assert_untouched, copy_farm

from trustprov.errors import ChipRefused
from trustprov.formats import cbor, cose
from trustprov.formats.authz import AuthorizedSet, InclusionProof
from trustprov.formats.bundle import Bundle
from trustprov.link import messages
from trustprov.roles import oem
from trustprov.roles.cm import SYSTEMIC, Job
from trustprov.roles.oem import assets as asset_list


@dataclass(frozen=True)
class Authorized:
    """A bundle for authorized chips only: its AUTH, its OEM_DIR, the chips in and out of it."""

    auth: Path
    out: Path
    inside: list[bytes]
    outside: list[bytes]


@pytest.fixture(scope="module")
def authorized(world: Any, tmp_path_factory: pytest.TempPathFactory) -> Authorized:
    """A bundle for the first half of the world's CM chips only."""
    d = tmp_path_factory.mktemp("authorized")
    uids = world.cm_uids()
    inside, outside = uids[: len(uids) // 2], uids[len(uids) // 2 :]
    auth = d / "auth.cbor"
    auth.write_bytes(AuthorizedSet.from_uids(inside, world.icm.family_id).to_bytes())
    oem_farm = copy_farm(world.oem_farm, d / "oem.farm")
    oem.keygen(
        oem_farm,
        world.oem_uid,
        software_path=world.software,
        assets=asset_list.load(world.assets_toml),
        out=d / "oem",
        auth=auth,
    )
    return Authorized(auth, d / "oem", inside, outside)


def _job(world: Any, a: Authorized) -> Job:
    return Job.load(world.software, a.out / "enc-oem-share.cose", a.out / "bundle.cbor", a.auth)


def _begin(a: Authorized, manifest: bytes | None = None, proof: Any = None) -> bytes:
    bundle = Bundle.from_bytes((a.out / "bundle.cbor").read_bytes())
    args: dict[str, Any] = {
        "enc-oem-share": (a.out / "enc-oem-share.cose").read_bytes(),
        "manifest": manifest if manifest is not None else bundle.signed.to_bytes(),
    }
    if proof is not None:
        args["proof"] = proof
    return messages.encode_request("cm.begin", args)


def _refused_untouched(bench: Bench, uid: bytes, job: Job, begin: bytes, code: str) -> None:
    chip = bench.client(uid)
    chip.send(job.boot_request)
    requests = [begin, *job.prepared.chunks, job.prepared.finish]

    def attack() -> None:  # the whole run: a refusal of any request ends it
        for r in requests:
            chip.send(r)

    with pytest.raises(ChipRefused) as e:
        attack()
    assert e.value.code == code
    assert_untouched(bench.read(uid))


def test_authorized_chips_install_outsiders_install_nothing(
    world: Any, authorized: Authorized, cm_farm: Path
) -> None:
    job = _job(world, authorized)
    with Bench(cm_farm) as bench:
        for uid in authorized.inside:
            assert bench.provision(uid, job).result == "provisioned"
            assert_holds_world_assets(bench.read(uid), _public_keys(authorized))
        for uid in authorized.outside:
            outcome = bench.provision(uid, job)
            assert (outcome.result, outcome.error_code) == ("failed", "unauthorized")
            assert_untouched(bench.read(uid))
    assert "unauthorized" not in SYSTEMIC  # per chip: the next chip may be in the set


def _public_keys(a: Authorized) -> dict[str, bytes]:
    gen = a.out / "generated"
    return {p.name.removesuffix(".pub.pem"): p.read_bytes() for p in gen.iterdir()}


def test_outsider_with_no_proof_another_chips_or_a_mangled_proof(
    world: Any, authorized: Authorized, cm_farm: Path
) -> None:
    s = AuthorizedSet.from_bytes(authorized.auth.read_bytes())
    job = _job(world, authorized)
    victim, donor = authorized.outside[0], authorized.inside[1]
    p = s.proof(donor)
    forged_set = AuthorizedSet.from_uids([*authorized.inside, victim])  # the CM's own set
    proofs = [
        None,  # no proof at all
        p.to_cbor(),  # another chip's proof
        InclusionProof(p.index, p.size, p.path[:-1]).to_cbor(),  # truncated
        InclusionProof(p.index, p.size, (*p.path, p.path[0])).to_cbor(),  # lengthened
        InclusionProof(0, 0, ()).to_cbor(),  # the empty set
        forged_set.proof(victim).to_cbor(),  # a proof in a set the CM made
    ]
    with Bench(cm_farm) as bench:
        for proof in proofs:
            _refused_untouched(bench, victim, job, _begin(authorized, proof=proof), "unauthorized")
        # a member's own proof truncated, or in a tree of another size, fails for it too
        own = s.proof(authorized.inside[0])
        for bad in (
            InclusionProof(own.index, own.size, own.path[:-1]),
            InclusionProof(own.index, own.size + 1, own.path),
        ):
            begin = _begin(authorized, proof=bad.to_cbor())
            _refused_untouched(bench, authorized.inside[0], job, begin, "unauthorized")


def test_a_cm_altered_root_is_caught_by_the_cmac(
    world: Any, authorized: Authorized, cm_farm: Path
) -> None:
    job = _job(world, authorized)
    victim = authorized.outside[0]
    bundle = Bundle.from_bytes((authorized.out / "bundle.cbor").read_bytes())
    m = bundle.signed.message
    payload = cbor2.loads(m.body)
    forged_set = AuthorizedSet.from_uids([*authorized.inside, victim])
    for value in ([forged_set.root, len(forged_set)], None):  # the CM's own set; "any chip"
        body = cbor.encode({**payload, "authorized": value})
        forged = cose.CoseMessage(m.tag, m.protected_bytes, m.protected, {}, body, m.auth)
        begin = _begin(authorized, forged.to_bytes(), forged_set.proof(victim).to_cbor())
        with Bench(cm_farm) as bench:
            _refused_untouched(bench, victim, job, begin, "bad-manifest")
