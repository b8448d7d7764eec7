"""The whole flow with post-quantum software signatures: ML-DSA-65 and the ES256+ML-DSA-65 hybrid.

``suite_world`` made the family, signed the software, manufactured chips and ran the OEM's FIG. 2
on its provisioning chip (which booted the software); here every CM chip is provisioned (FIG. 3),
the OEM checks the software with the ICM's public keys, and the ICM directory reloads as made.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from helpers import Bench, assert_holds_world_assets, world_job

from trustprov.crypto.keys import SUITES, key_type_of
from trustprov.errors import InputError, VerificationError
from trustprov.formats import cose
from trustprov.formats.immutable import ImmutableMemory
from trustprov.link.farm_link import FarmLink
from trustprov.roles import icm, oem
from trustprov.roles.cm import provision_chip
from trustprov.roles.icm.custody import signing_key_files


def test_whole_flow_provisions_every_chip(suite_world: Any, tmp_path: Path) -> None:
    world = suite_world
    farm = world.fresh_cm_farm(tmp_path)
    uids = world.cm_uids(farm)
    job = world_job(world)
    with FarmLink(farm) as link:
        for uid in uids:
            with link.connect(uid) as client:
                outcome = provision_chip(client, uid, job)
            assert outcome.result == "provisioned", (outcome.error_code, outcome.error)
    with Bench(farm) as bench:
        for uid in uids:
            assert_holds_world_assets(bench.read(uid), world.public_keys)


def test_the_cm_checks_the_software_with_every_key_the_chips_report(suite_world: Any) -> None:
    """`cm provision`'s pre-flight check: the chips' `prov-keys` and `prov-suite` accept the
    family's software; one key of a hybrid alone, or another suite, does not."""
    world = suite_world
    job = world_job(world)
    with FarmLink(world.cm_farm) as link, link.connect(world.cm_uids()[0]) as client:
        status = client.status()
    assert status["prov-suite"] == world.icm.alg
    assert len(status["prov-keys"]) == len(SUITES[world.icm.alg])
    job.check_lot(status)
    with pytest.raises(VerificationError):
        job.check_lot({**status, "prov-suite": "ES256"})
    if len(status["prov-keys"]) > 1:
        with pytest.raises(VerificationError):
            job.check_lot({**status, "prov-keys": status["prov-keys"][:1]})


def test_icm_files_and_immutable_memory_name_the_suite(suite_world: Any) -> None:
    made = suite_world.icm
    algs = SUITES[made.alg]
    files = signing_key_files(made.alg)
    assert len(files) == len(algs) == len(made.signing_keys)
    for (private, public), alg, key in zip(files, algs, made.signing_keys, strict=True):
        assert stat.S_IMODE((made.path / private).stat().st_mode) == 0o600
        assert (made.path / public).read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
        assert key_type_of(key) == {"ES256": "ec-p256", "ML-DSA-65": "ml-dsa-65"}[alg]
    image = ImmutableMemory.from_bytes(made.immutable.to_bytes())
    assert (image.software_suite, image.software_keys) == (made.alg, made.immutable.software_keys)
    assert icm.Icm.load(made.path).immutable == made.immutable


def test_oem_verifies_with_every_public_key_of_the_suite(suite_world: Any) -> None:
    made = suite_world.icm
    pubs = [made.path / public for _, public in signing_key_files(made.alg)]
    sw = oem.verify_software(suite_world.software, pubs)
    assert sw.alg == made.alg
    kind = cose.TAG_SIGN if len(pubs) > 1 else cose.TAG_SIGN1
    assert sw.message.tag == kind
    if len(pubs) > 1:
        with pytest.raises(VerificationError):  # one key of two is not enough
            oem.verify_software(suite_world.software, pubs[:1])


def test_sign_software_takes_only_the_family_suite(suite_world: Any, tmp_path: Path) -> None:
    for alg in ("ES256", "ML-DSA-87", "ES256+ML-DSA-65", "ML-DSA-65"):
        if alg != suite_world.icm.alg:
            with pytest.raises(InputError):
                icm.sign_software(suite_world.icm, tmp_path / "s.cose", alg=alg)
    assert not (tmp_path / "s.cose").exists()
