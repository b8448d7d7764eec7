"""roles.cm: FIG. 3 on one chip, as a station runs it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import Bench, farm_rows, world_job

from trustprov.crypto.keys import public_key_der
from trustprov.errors import VerificationError
from trustprov.link import messages
from trustprov.roles.cm import provision_chip


def _ops(bench: Bench) -> list[str]:
    return [messages.decode_request(request)[0] for request, _ in bench.log]


@pytest.fixture
def farm(cm_farm: Path, tmp_path: Path) -> Path:
    path = tmp_path / "chips.farm"
    shutil.copyfile(cm_farm, path)
    return path


def test_a_fresh_chip_is_provisioned_without_a_status_round_trip(world: Any, farm: Path) -> None:
    job = world_job(world)
    with Bench(farm) as b:
        uid = b.uids()[0]
        assert provision_chip(b.client(uid), uid, job).result == "provisioned"
        chunks = ["cm.chunk"] * len(job.prepared.chunks)
        assert _ops(b) == ["rom.boot", "cm.begin", *chunks, "cm.finish"]
        assert b.read(uid).bundle_id == job.prepared.bundle_id


def test_a_chip_holding_the_bundle_refuses_it_and_is_settled_by_what_it_signs(
    world: Any, farm: Path
) -> None:
    job = world_job(world)
    with Bench(farm) as b:
        uid = b.uids()[0]
        assert b.provision(uid, job).result == "provisioned"
    rows = farm_rows(farm, "SELECT * FROM chips")
    with Bench(farm) as b:
        outcome = provision_chip(b.client(uid), uid, job)
        assert (outcome.result, outcome.error_code, outcome.error) == (
            "already-provisioned",
            None,
            None,
        )
        # begin refused (stale epoch): the chip attests over a fresh challenge
        assert _ops(b) == ["rom.boot", "cm.begin", "rom.attest"]
        assert outcome.attestation is not None
        assert outcome.challenge is not None
        assert len(outcome.challenge) == 32
    assert farm_rows(farm, "SELECT * FROM chips") == rows  # nothing written


def test_a_recovered_claim_asks_the_chip_to_attest_first_and_never_boots_a_provisioned_chip(
    world: Any, farm: Path
) -> None:
    job = world_job(world)
    with Bench(farm) as b:
        done, fresh = b.uids()[:2]
        assert b.provision(done, job).result == "provisioned"
        b.log.clear()
        assert provision_chip(b.client(done), done, job, status_first=True).result == (
            "already-provisioned"
        )
        assert _ops(b) == ["rom.attest"]
        b.log.clear()
        outcome = provision_chip(b.client(fresh), fresh, job, status_first=True)
        assert outcome.result == "provisioned"
        assert _ops(b)[:2] == ["rom.attest", "rom.boot"]


def test_a_refusal_stands_when_the_chip_does_not_hold_the_bundle(world: Any, farm: Path) -> None:
    job = world_job(world)
    # the signature's last byte
    broken = dataclasses.replace(
        job, boot_request=job.boot_request[:-1] + bytes([job.boot_request[-1] ^ 1])
    )
    with Bench(farm) as b:
        uid = b.uids()[0]
        outcome = provision_chip(b.client(uid), uid, broken)
        assert (outcome.result, outcome.error_code) == ("failed", "bad-signature")
        assert _ops(b) == ["rom.boot", "rom.attest"]
        assert b.read(uid).bundle_id is None


def test_a_job_is_checked_against_the_status_the_lot_s_chips_report(world: Any, farm: Path) -> None:
    job = world_job(world)
    with Bench(farm) as b:
        status = b.client(b.uids()[0]).status()
    job.check_lot(status)  # the chips' own family and key: accepted
    job.check_lot({**status, "family": None})  # a blank chip proves nothing
    with pytest.raises(VerificationError) as e:
        job.check_lot({**status, "family": bytes(len(job.family_id))})
    assert e.value.code == "wrong-family"
    other = public_key_der(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(VerificationError) as e:
        job.check_lot({**status, "prov-keys": [other]})
    assert e.value.code == "bad-signature"
    assert "another ICM" in e.value.message
