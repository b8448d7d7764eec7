"""``rom.status`` with "digests": each region's content SHA-256 and each key slot's public key.

Public by design (docs/threat-model.md, "Region digests"): what a chip reports is a digest of
its own flash and the public half of its asymmetric keys, never a key or a region's content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from helpers import KEY1, KEY2, Bench, firmware_bytes, world_job

from trustprov.errors import ChipRefused


@pytest.fixture
def bench(cm_farm: Path) -> Any:
    with Bench(cm_farm) as b:
        yield b


def test_a_provisioned_chip_reports_digests_and_public_keys(bench: Bench, world: Any) -> None:
    uid = bench.uids()[0]
    assert bench.provision(uid, world_job(world)).result == "provisioned"
    client = bench.client(uid)
    plain = client.status()["installed"]
    assert all("sha256" not in r for r in plain["regions"].values())  # only when asked
    installed = client.status(digests=True)["installed"]
    regions = {n: r["sha256"] for n, r in installed["regions"].items()}
    assert regions == {
        "app": hashlib.sha256(firmware_bytes()).digest(),
        "config": hashlib.sha256(b"mode=production").digest(),
    }
    keys = {s["asset"]: s["public-key"] for s in installed["slots"].values()}
    expected = serialization.load_pem_public_key(world.public_keys["signer"]).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert keys == {"aes-1": None, "aes-2": None, "signer": expected}
    flat = repr(installed).encode()
    for secret in (KEY1, KEY2):
        assert secret not in flat
        assert secret.hex().encode() not in flat


def test_a_manufactured_chip_has_nothing_to_digest(bench: Bench) -> None:
    status = bench.client(bench.uids()[0]).status(digests=True)
    assert status["installed"] is None


def test_unknown_status_arguments_are_refused(bench: Bench) -> None:
    with pytest.raises(ChipRefused):
        bench.client(bench.uids()[0]).call("rom.status", {"digest": True})
