"""Property 1 ([0034]): no answer of any command ever carries a secret.

Every byte a chip sends back over the link, in a whole ICM -> OEM keygen -> OEM regen -> CM lot
-> update -> lock run plus a batch of refused requests, is scanned for every secret the test can
reconstruct: the immutable shares, each chip's identity key, OEM_RND_INPUT, RND_SHARE, OEM_SHARE,
K_MK, K_ENCK, K_ENCD, K_AUTH, the seed, and the plaintext assets (given and generated). Slices of
each secret are looked for too, so a partial leak is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    CONFIG,
    KEY1,
    KEY2,
    RecordingLink,
    firmware_bytes,
    flip_bit,
    windows,
    write_assets,
)

import trustprov.link.farm_link as link_farm
from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.chip.probe import Probe
from trustprov.crypto.schedule import derive_keys, f_oem_share, g_master_key, h_seed
from trustprov.errors import ChipRefused
from trustprov.firmware.commands import ProvisioningSoftware
from trustprov.formats.sealed import SealedValue
from trustprov.line.station import provision_lot
from trustprov.link import messages
from trustprov.link.client import PreparedBundle
from trustprov.link.port import ChipPort
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list

MORE_GENERATED = """
[[asset]]
name = "gen-aes"
kind = "generate"
key-type = "aes-256"
slot = 9

[[asset]]
name = "gen-ed"
kind = "generate"
key-type = "ed25519"
slot = 10
"""
ROM_OPS = {
    "rom.status",
    "rom.identity",
    "rom.burn",
    "rom.make-identity",
    "rom.store-certificate",
    "rom.boot",
}
OEM_RND_INPUT = bytes(range(100, 132))


def _refusals(client: Any, calls: list[tuple[str, dict[str, Any]]]) -> None:
    for op, args in calls:
        with pytest.raises(ChipRefused):
            client.call(op, args)


def test_no_response_of_any_command_carries_a_secret(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[tuple[bytes, bytes]] = []

    def recording(port: ChipPort) -> RecordingLink:
        return RecordingLink(port, log)

    monkeypatch.setattr(link_farm, "InProcessLink", recording)

    # ICM: an OEM provisioning farm and a CM lot, made through the recording link
    oem_farm, cm_farm = tmp_path / "oem.farm", tmp_path / "cm.farm"
    oem_uids = icm.manufacture(world.icm, oem_farm, "OEM-S", 2, tmp_path / "oem.json").uids
    icm.manufacture(world.icm, cm_farm, "CM-S", 3, tmp_path / "cm.json")

    # OEM: FIG. 2 with a known OEM_RND_INPUT, then FIG. 4 (epoch 2) on its other chip
    assets = asset_list.load(write_assets(tmp_path / "a1", extra=MORE_GENERATED))
    first = oem.keygen(
        oem_farm,
        oem_uids[0],
        software_path=world.software,
        assets=assets,
        out=tmp_path / "oem1",
        rng=lambda n: OEM_RND_INPUT[:n],
    )
    oem.regen(
        oem_farm,
        oem_uids[1],
        software_path=world.software,
        state=tmp_path / "oem1",
        assets=asset_list.load(write_assets(tmp_path / "a2", epoch=2, extra=MORE_GENERATED)),
        out=tmp_path / "oem2",
    )
    job1 = Job.load(
        world.software, tmp_path / "oem1/enc-oem-share.cose", tmp_path / "oem1/bundle.cbor"
    )
    job2 = Job.load(
        world.software, tmp_path / "oem2/enc-oem-share.cose", tmp_path / "oem2/bundle.cbor"
    )

    # CM: FIG. 3 on the lot, an update, a lock, and many refused requests
    summary = provision_lot(
        farm_path=cm_farm,
        lot="CM-S",
        job=job1,
        records_url=f"sqlite:///{tmp_path / 'records.sqlite'}",
        station="secrets",
    )
    assert summary.provisioned == 3
    enc_share = (tmp_path / "oem1/enc-oem-share.cose").read_bytes()
    enc_rnd = (tmp_path / "oem1/enc-rnd-share.cose").read_bytes()
    enc_input = (tmp_path / "oem1/enc-oem-rnd-input.cose").read_bytes()
    manifest = messages.decode_request(job1.prepared.begin)[1]["manifest"]
    chunk0 = messages.decode_request(job1.prepared.chunks[0])[1]
    with link_farm.FarmLink(cm_farm) as farm:
        uids = farm.uids("CM-S")
        with farm.connect(uids[0]) as chip:
            chip.boot(job2.image)
            chip.provision(job2.prepared)
            chip.lock()
            chip.status()
            chip.certificate()
            _refusals(
                chip,
                [
                    ("lock", {}),
                    ("cm.begin", {"enc-oem-share": enc_share, "manifest": manifest}),
                    ("oem.regen", {"enc-oem-rnd-input": enc_share, "enc-rnd-share": enc_share}),
                    ("seal.finish", {}),
                    ("rom.burn", {"image": world.icm.immutable.to_bytes()}),
                    ("rom.make-identity", {}),
                ],
            )
        with farm.connect(uids[1]) as chip:
            chip.boot(job1.image)
            _refusals(
                chip,
                [
                    ("cm.begin", {"enc-oem-share": enc_share, "manifest": manifest}),  # stale
                    ("cm.begin", {"enc-oem-share": enc_rnd, "manifest": manifest}),
                    ("cm.begin", {"enc-oem-share": enc_share, "manifest": flip_bit(manifest, 900)}),
                    ("cm.chunk", chunk0),
                    ("cm.finish", {}),
                ],
            )
            # a sealing session holds every key: make it fail in every way it can
            bundle = {"epoch": 3, "min-svn": 1, "aead": 3, "chunk-size": 256}
            regen = {"enc-oem-rnd-input": enc_input, "enc-rnd-share": enc_rnd, "bundle": bundle}
            chip.call("oem.regen", regen)
            chip.call("seal.asset", {"name": "x", "kind": "config", "length": 300, "region": "x"})
            _refusals(chip, [("seal.chunk", {"index": 0, "data": bytes(256)})])
            chip.call("oem.regen", regen)
            _refusals(chip, [("seal.generate", {"name": "y", "key-type": "raw", "slot": 1})])
            chip.call("oem.regen", regen)
            chip.call("seal.generate", {"name": "signer", "key-type": "ec-p256", "slot": 8})
            generate = {"name": "signer", "key-type": "ec-p256", "slot": 8}
            _refusals(chip, [("seal.generate", generate)])  # the name again
            chip.call("oem.regen", regen)
            chip.call("seal.generate", generate)
            keygen = {"oem-rnd-input": OEM_RND_INPUT, "bundle": bundle}
            _refusals(chip, [("oem.keygen", keygen), ("nope", {})])  # a session is open
        with farm.connect(uids[2]) as chip:  # an update that fails mid-bundle, keys in hand
            chip.boot(job2.image)
            chunks = list(job2.prepared.chunks)
            request = messages.decode_request(chunks[3])[1]
            request["data"] = flip_bit(request["data"], 7)
            chunks[3] = messages.encode_request("cm.chunk", request)
            p = job2.prepared
            with pytest.raises(ChipRefused) as e:
                chip.provision(
                    PreparedBundle(p.bundle_id, p.begin, tuple(chunks), p.finish, p.manifest)
                )
            assert e.value.code == "bad-chunk"

    # every command of the interface was exercised over the link
    ops = {messages.decode_request(request)[0] for request, _ in log}
    farm_db = Farm(oem_farm)
    try:
        chip = Chip(farm_db, farm_db.load(oem_uids[0]))
        commands = set(ProvisioningSoftware(chip.boot(job1.image)).commands)
    finally:
        farm_db.close()
    assert ROM_OPS | commands <= ops, f"not exercised: {(ROM_OPS | commands) - ops}"
    errors = [r for _, r in log if b"error" in r[:16]]
    assert len(errors) >= 15

    # the secrets, reconstructed from what only the ICM, the OEM and a probe know
    imm = world.icm.immutable
    rnd_share = SealedValue.from_bytes(enc_rnd).open(imm.k_oem_master_share)
    assert SealedValue.from_bytes(enc_input).open(imm.k_oem_master_share) == OEM_RND_INPUT
    oem_share = f_oem_share(OEM_RND_INPUT, rnd_share)
    assert SealedValue.from_bytes(enc_share).open(imm.k_oem_share) == oem_share
    k_mk = g_master_key(oem_share, imm.hw_share, imm.rom_share)
    keys = derive_keys(k_mk, imm.family_id)
    with Probe(cm_farm) as probe:
        reading = probe.read(uids[0])
    assert reading.domain_id == keys.domain_id  # the reconstruction is the chips' own
    family_key = bytes(a ^ b for a, b in zip(imm.hw_share, imm.rom_share, strict=True))
    secrets: dict[str, bytes] = {
        "HW_SHARE": imm.hw_share,
        "ROM_SHARE": imm.rom_share,
        "HW_SHARE xor ROM_SHARE": family_key,
        "K_OEM_SHARE": imm.k_oem_share,
        "K_OEM_MASTER_SHARE": imm.k_oem_master_share,
        "OEM_RND_INPUT": OEM_RND_INPUT,
        "RND_SHARE": rnd_share,
        "OEM_SHARE": oem_share,
        "K_MK": k_mk,
        "K_ENCK": keys.enck,
        "K_ENCD": keys.encd,
        "K_AUTH": keys.auth,
        "seed": h_seed(OEM_RND_INPUT, rnd_share),
        "KEY1": KEY1,
        "KEY2": KEY2,
        "config": CONFIG,
    }
    for slot in (8, 9, 10):
        secrets[f"generated slot {slot}"] = reading.slots[slot].value
    assert first.public_keys.keys() == {"signer", "gen-ed"}  # aes-256: no public part
    firmware = firmware_bytes()
    for i in range(0, len(firmware) - 16, 997):
        secrets[f"firmware[{i}:]"] = firmware[i : i + 16]
    for path in (oem_farm, cm_farm):
        farm_db = Farm(path)
        try:
            for uid in farm_db.uids():
                identity = farm_db.load(uid).identity_key
                assert identity is not None
                secrets[f"identity key {uid.hex()}"] = identity
        finally:
            farm_db.close()

    leaks = []
    patterns = [(name, w) for name, secret in secrets.items() for w in windows(secret)]
    for request, response in log:
        for name, pattern in patterns:
            if pattern in response:
                leaks.append(f"{messages.decode_request(request)[0]}: {name}")
    assert not leaks, f"responses carry secrets: {sorted(set(leaks))}"
    assert len(log) > 100
