"""roles.trust: the station records a chip as holding the bundle only from what the chip signs,
under the certificate the ICM's signed lot manifest gives for the UID (protocol.md 9, rule 7)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import Bench, world_job

from trustprov.errors import ChipRefused
from trustprov.formats.lot import LotManifest
from trustprov.link.client import ChipClient
from trustprov.roles.cm import Outcome, provision_chip
from trustprov.roles.trust import LotTrust


@pytest.fixture
def farm(cm_farm: Path, tmp_path: Path) -> Path:
    path = tmp_path / "chips.farm"
    shutil.copyfile(cm_farm, path)
    return path


@pytest.fixture(scope="module")
def trust(world: Any) -> LotTrust:
    return LotTrust.of_manifest(LotManifest.from_json((world.root / "lot.json").read_bytes()))


def _provisioned(world: Any, farm: Path, n: int = 0) -> Outcome:
    with Bench(farm) as b:
        uid = sorted(b.uids())[n]
        outcome = b.provision(uid, world_job(world))
    assert outcome.result == "provisioned"
    return outcome


def test_a_genuine_receipt_is_recorded_provisioned(world: Any, farm: Path, trust: LotTrust) -> None:
    outcome = _provisioned(world, farm)
    assert trust.verify(outcome, world_job(world).expected) == outcome


def test_another_chip_s_receipt_is_a_bad_receipt(world: Any, farm: Path, trust: LotTrust) -> None:
    other = _provisioned(world, farm, 1)
    with Bench(farm) as b:
        claimed = sorted(b.uids())[0]
    swapped = dataclasses.replace(other, uid=claimed)
    got = trust.verify(swapped, world_job(world).expected)
    assert (got.result, got.error_code) == ("bad-receipt", "wrong-chip")
    assert not got.ok


def test_a_receipt_of_another_lot_than_the_manifest_s_is_refused(
    world: Any, farm: Path, trust: LotTrust
) -> None:
    """Item 7 at the station: the lot manifest's lot, not the one the chip signs, is the truth."""
    outcome = _provisioned(world, farm)
    elsewhere = LotTrust("LOT-B", {outcome.uid: trust.anchor(outcome)[0]})
    got = elsewhere.verify(outcome, world_job(world).expected)
    assert (got.result, got.error_code) == ("bad-receipt", "wrong-lot")


def test_no_receipt_a_tampered_one_or_another_bundle_is_a_bad_receipt(
    world: Any, farm: Path, trust: LotTrust
) -> None:
    outcome = _provisioned(world, farm)
    expected = world_job(world).expected
    assert outcome.receipt is not None
    none = trust.verify(dataclasses.replace(outcome, receipt=None), expected)
    assert (none.result, none.error_code) == ("bad-receipt", "no-receipt")
    flipped = outcome.receipt[:-1] + bytes([outcome.receipt[-1] ^ 1])
    bad = trust.verify(dataclasses.replace(outcome, receipt=flipped), expected)
    assert (bad.result, bad.error_code) == ("bad-receipt", "receipt-signature")
    other = dataclasses.replace(expected, bundle_id=bytes(16), _installed={})
    wrong = trust.verify(outcome, other)
    assert (wrong.result, wrong.error_code) == ("bad-receipt", "wrong-bundle")


def test_a_chip_outside_the_lot_manifest_is_never_credited(world: Any, farm: Path) -> None:
    outcome = _provisioned(world, farm)
    got = LotTrust(world.cm_lot, {}).verify(outcome, world_job(world).expected)
    assert (got.result, got.error_code) == ("bad-receipt", "unknown-chip")


def test_already_provisioned_only_with_a_token_over_this_challenge(
    world: Any, farm: Path, trust: LotTrust
) -> None:
    done = _provisioned(world, farm)
    job = world_job(world)
    with Bench(farm) as b:
        settled = provision_chip(b.client(done.uid), done.uid, job, status_first=True)
    assert settled.result == "already-provisioned"
    assert trust.verify(settled, job.expected) == settled
    replayed = dataclasses.replace(settled, challenge=bytes(32))
    got = trust.verify(replayed, job.expected)
    assert (got.result, got.error_code) == ("failed", "bad-attestation")
    unsigned = dataclasses.replace(settled, attestation=None)
    got = trust.verify(unsigned, job.expected)
    assert (got.result, got.error_code) == ("failed", "no-attestation")


class _NoAttest(ChipClient):
    """A chip that predates rom.attest."""

    def attest(self, challenge: bytes) -> bytes:
        del challenge  # it never reaches the chip
        raise ChipRefused("unknown command 'rom.attest'", code="unknown-command")


def test_a_chip_that_cannot_attest_is_not_settled(world: Any, farm: Path) -> None:
    done = _provisioned(world, farm)
    job = world_job(world)
    with Bench(farm) as b:
        client = _NoAttest(b.client(done.uid)._link)
        got = provision_chip(client, done.uid, job, status_first=True)
    assert (got.result, got.error_code) == ("failed", "no-attestation")


def test_the_key_is_parsed_once_per_chip(world: Any, farm: Path, trust: LotTrust) -> None:
    outcome = _provisioned(world, farm)
    first = trust.anchor(outcome)
    assert trust.anchor(outcome)[1] is first[1]


def test_without_a_manifest_the_chip_s_own_certificate_must_name_its_uid(
    world: Any, farm: Path
) -> None:
    outcome = _provisioned(world, farm)
    with Bench(farm) as b:
        mine = b.client(outcome.uid).certificate()
        other = b.client(sorted(b.uids())[1]).certificate()
    own = LotTrust(world.cm_lot, None)
    expected = world_job(world).expected
    assert own.verify(dataclasses.replace(outcome, certificate=mine), expected).ok
    got = own.verify(dataclasses.replace(outcome, certificate=other), expected)
    assert (got.result, got.error_code) == ("bad-receipt", "wrong-chip")
