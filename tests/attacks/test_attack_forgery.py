"""T8, docs/design.md property 2: ENC(OEM_SHARE) lets a chip consume the OEM's bundle, never produce
one. The CM holds ENC(OEM_SHARE), the OEM's bundle, the signed software, chips, and everything its
own FIG. 2 gave it; it sends every command of the chip (the software's, the boot ROM's, and
commands that do not exist) with every argument it can craft: ENC(OEM_SHARE) in every bytes
argument, ENC(OEM_SHARE) relabelled as the OEM's kept values or dressed as another COSE message,
the manifest in place of sealed values, chunks, its own kept values, and values of every other
type, in every session state it can reach (none, the OEM's provisioning session open with the
OEM's keys in chip RAM, mid-bundle, its own sealing sessions).

The test is the probe: it rebuilds the OEM's K_AUTH, K_ENCK and K_ENCD from the family secrets
and the OEM's OEM_SHARE, records every output of each chip's TRNG (every nonce, bundle id and IV
the chip could have sealed under), and checks that no answer holds a manifest MACed under the
OEM's K_AUTH, a chunk that opens under its K_ENCK or K_ENCD, or a fresh seal of its shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import OemRun, copy_farm

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.firmware.commands import ProvisioningSoftware
from trustprov.link.client import BundleParams
from trustprov.link.farm_link import FarmLink

from .attack_helpers import (
    PARAMS,
    ROM_ARGS,
    SOFTWARE_ARGS,
    Artifacts,
    DomainSecrets,
    OemKeyWitness,
    RecordingTrng,
    Socket,
    SweepLog,
    assert_chip_untouched,
    cm_crafted_calls,
    cm_material,
    read,
    report,
    retry_succeeds,
    sweep,
    timed,
)


def _witness_sees_the_oems_own_work(
    world: Any, a: Artifacts, witness: OemKeyWitness, tmp_path: Path
) -> None:
    """The control: on the OEM's own chip (FIG. 4 with its kept values) every kind of output
    made under its keys is recognised; so a silent witness below means none was made."""
    assert witness.findings(a.manifest, []) == ["a manifest MACed under the OEM's K_AUTH"]
    farm = copy_farm(world.oem_farm, tmp_path / "oem-control.farm")
    trng = RecordingTrng()
    with FarmLink(farm) as link, link.connect(world.oem_uid, trng=trng) as chip:
        chip.boot(a.image)
        share = chip.regen(
            (world.oem_dir / "enc-oem-rnd-input.cose").read_bytes(),
            (world.oem_dir / "enc-rnd-share.cose").read_bytes(),
            _params(),
        )
        chip.seal_asset("x", "config", 300, {"region": "r"})
        data_chunk = chip.seal_chunk(1, bytes(44))
        chip.seal_chunk(0, bytes(256))
        key_chunk, _ = chip.seal_generate("g", "aes-256", 3)
        manifest = chip.seal_finish()
    found = witness.findings(
        {"share": share, "data": data_chunk, "key": key_chunk, "manifest": manifest},
        trng.outputs,
    )
    assert sorted(found) == sorted(
        [
            "a fresh seal of the OEM's OEM_SHARE",
            "a chunk that opens under the OEM's K_ENCD",
            "a chunk that opens under the OEM's K_ENCK",
            "a manifest MACed under the OEM's K_AUTH",
        ]
    ), found


def _params() -> BundleParams:
    return BundleParams(PARAMS["epoch"], PARAMS["min-svn"], PARAMS["aead"], PARAMS["chunk-size"])


def test_attack_cm_cannot_seal_mac_or_regenerate_under_the_oems_keys(
    world: Any,
    cm_farm: Path,
    artifacts: Artifacts,
    cm_own: OemRun,
    tmp_path: Path,
) -> None:
    imm = world.icm.immutable
    witness = OemKeyWitness(imm, DomainSecrets.of_oem_dir(imm, world.oem_dir))
    _witness_sees_the_oems_own_work(world, artifacts, witness, tmp_path)
    uids = world.cm_uids(cm_farm)
    uid = uids[0]
    # the sweep covers every command the software has (and the boot ROM's)
    farm = Farm(cm_farm)
    try:
        commands = ProvisioningSoftware(Chip(farm, farm.load(uids[7])).boot(artifacts.image))
        assert set(commands.commands) == set(SOFTWARE_ARGS)
    finally:
        farm.close()
    with FarmLink(cm_farm) as link, link.connect(uid) as chip:
        certificate = chip.certificate()
    assert certificate is not None
    material = cm_material(world, artifacts, cm_own.out, certificate)
    calls = cm_crafted_calls(material["base"], material["bytes"], material["other"])
    assert {op for op, _ in calls} >= set(SOFTWARE_ARGS) | set(ROM_ARGS)
    states = material["states"]
    per_state = dict.fromkeys(states, calls)  # every call in every state, in either mode
    log = SweepLog()
    with timed() as elapsed, FarmLink(cm_farm) as link:
        socket = Socket(link, uid, artifacts.image)
        try:
            for state, state_calls in per_state.items():
                sweep(socket, states[state], state_calls, log, witness=witness)
        finally:
            socket.close()
    assert not log.findings, log.findings[:10]
    assert log.accepted["seal.chunk"] > 0  # its own sealing sessions did seal, and were judged
    assert log.accepted["seal.finish"] > 0
    r = assert_chip_untouched(cm_farm, uid)
    assert r.immutable == imm  # rom.burn never took the CM's image
    with FarmLink(cm_farm) as link, link.connect(uid) as chip:
        assert chip.certificate() == certificate  # nor rom.store-certificate its certificate
    report(
        "CM forging under the OEM's keys",
        states=len(per_state),
        calls=log.calls,
        accepted=sum(log.accepted.values()),
        accepted_by_op=dict(log.accepted),
        refused=dict(log.refused),
        byte_strings_judged=witness.checked,
        power_cycles=socket.power_cycles,
        seconds=elapsed(),
    )
    assert read(cm_farm, uid).bundle_id is None
    retry_succeeds(world, cm_farm, uid)
