"""T12 and the boot ROM's manufacturing services: what the CM can do to a chip's lifecycle.

A locked chip gives nothing back (no command returns a key slot or a byte of protected flash)
and takes no bundle, not even the same OEM's newer one. No chip, in any lifecycle state, lets
the CM rewrite its immutable memory (its own shares and software key would make it the ICM),
remake its identity key or replace its certificate. And re-booting the software in the middle
of a session (a CM can send ``rom.boot`` at any time) ends that session cleanly.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY1, KEY2, OemRun, firmware_bytes

from trustprov.chip.farm import Farm
from trustprov.chip.model import Lifecycle
from trustprov.errors import ChipRefused
from trustprov.formats.software import CODE_ROOT, SignedSoftware, code_archive
from trustprov.link import messages
from trustprov.link.farm_link import FarmLink

from .attack_helpers import (
    Artifacts,
    SecretScanner,
    Socket,
    SweepLog,
    assert_chip_untouched,
    boot_request,
    cm_crafted_calls,
    cm_immutable_image,
    cm_material,
    powered,
    read,
    reissued,
    report,
    retry_succeeds,
    rogue_ca,
    run,
    sweep,
    timed,
)


def test_attack_locked_chip_gives_no_readback_and_takes_no_bundle(
    world: Any, cm_farm: Path, artifacts: Artifacts, bundle_b: OemRun, cm_own: OemRun
) -> None:
    uid = world.cm_uids(cm_farm)[0]
    retry_succeeds(world, cm_farm, uid)
    with powered(cm_farm, uid, artifacts.image) as client:
        client.lock()
    locked = read(cm_farm, uid)
    assert locked.lifecycle == Lifecycle.LOCKED
    # what the chip holds, and must never give back: every key slot and every flash region
    held = {f"slot {n} ({s.asset})": s.value for n, s in locked.slots.items()}
    held |= {f"region {name}": data for name, data in locked.regions.items()}
    assert {KEY1, KEY2, firmware_bytes()} <= set(held.values())
    scanner = SecretScanner(held)

    def readback(op: str, raw: bytes) -> list[str]:
        return [f"returned {name}" for name in scanner.hits(raw)]

    certificate = _certificate(cm_farm, uid)
    material = cm_material(world, artifacts, cm_own.out, certificate)
    calls = cm_crafted_calls(material["base"], material["bytes"], material["other"])
    log = SweepLog()
    b = Artifacts.load(world.software, bundle_b.share, bundle_b.bundle)
    own = Artifacts.load(world.software, cm_own.share, cm_own.bundle)
    with timed() as elapsed, FarmLink(cm_farm) as link:
        socket = Socket(link, uid, artifacts.image)
        try:
            for state in ("booted", "CM sealing session (keygen), asset sealed"):
                sweep(socket, material["states"][state], calls, log, check=readback)
            # no re-provisioning: the same bundle, the same OEM's newer one, the CM's own
            for bundle in (artifacts, b, own):
                result = run(socket.client, bundle.flow())
                assert (result.at, result.code) == (0, "lifecycle"), result
            with pytest.raises(ChipRefused) as e:
                socket.client.lock()
            assert e.value.code == "lifecycle"
        finally:
            socket.close()
    assert not log.findings, log.findings[:10]
    after = read(cm_farm, uid)
    assert after == locked
    report(
        "locked chip",
        calls=log.calls,
        refused=sum(log.refused.values()),
        accepted_by_op=dict(log.accepted),
        held_values=len(held),
        seconds=elapsed(),
    )


def _certificate(farm: Path, uid: bytes) -> bytes:
    with powered(farm, uid) as client:
        certificate = client.certificate()
    assert certificate is not None
    return certificate


def _identity_key(farm_path: Path, uid: bytes) -> bytes | None:
    farm = Farm(farm_path)  # read like a probe
    try:
        return farm.load(uid).identity_key
    finally:
        farm.close()


def test_attack_rom_manufacturing_commands_cannot_rewrite_a_chip(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """In every lifecycle state: burning the CM's immutable image, remaking the identity key and
    storing a certificate (a rogue CA's, or the genuine one again) are refused, and software
    signed with the CM's key (the one its image names) does not boot."""
    manufactured, provisioned, locked = world.cm_uids(cm_farm)[:3]
    retry_succeeds(world, cm_farm, provisioned)
    retry_succeeds(world, cm_farm, locked)
    with powered(cm_farm, locked, artifacts.image) as client:
        client.lock()
    image, cm_key = cm_immutable_image(world.icm.family_id)
    cm_software = SignedSoftware.sign(
        cm_key,
        alg="ES256",
        name="trustprov-provisioning",
        version="cm",
        security_version=1,
        code=code_archive(CODE_ROOT),
    ).to_bytes()
    ca_key, _ = rogue_ca()
    codes: dict[str, str] = {}
    for state, uid in (
        ("manufactured", manufactured),
        ("provisioned", provisioned),
        ("locked", locked),
    ):
        before, identity = read(cm_farm, uid), _identity_key(cm_farm, uid)
        certificate = _certificate(cm_farm, uid)
        requests = {
            "burn the CM's image": ("rom.burn", {"image": image}),
            "remake the identity": ("rom.make-identity", {}),
            "store a rogue certificate": (
                "rom.store-certificate",
                {"certificate": reissued(certificate, ca_key)},
            ),
            "store the certificate again": ("rom.store-certificate", {"certificate": certificate}),
        }
        with powered(cm_farm, uid) as client:
            for what, (op, args) in requests.items():
                codes[f"{state}: {what}"] = run(client, [messages.encode_request(op, args)]).code
            codes[f"{state}: boot the CM's software"] = run(
                client, [boot_request(cm_software)]
            ).code
        assert read(cm_farm, uid) == before
        assert _identity_key(cm_farm, uid) == identity
        assert _certificate(cm_farm, uid) == certificate
    expected = {
        "burn the CM's image": "immutable-written",
        "remake the identity": "identity-exists",
        "store a rogue certificate": "lifecycle",
        "store the certificate again": "lifecycle",
        "boot the CM's software": "bad-signature",
    }
    wrong = {k: v for k, v in codes.items() if v != expected[k.split(": ", 1)[1]]}
    assert not wrong, wrong
    assert_chip_untouched(cm_farm, manufactured)
    report("ROM rewrite", attempts=len(codes))
    retry_succeeds(world, cm_farm, manufactured)


REBOOTS = 80


def test_attack_reboot_in_the_middle_of_a_session_leaves_no_session_and_no_lost_ram(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """``rom.boot`` while the OEM's provisioning session or a sealing session is open, with the
    genuine image or a refused one: the old session must be gone, and the chip must provision
    normally on the same power-on, as after a reset on silicon (a reboot clears the software's
    RAM)."""
    keygen = messages.encode_request(
        "oem.keygen",
        {
            "oem-rnd-input": bytes(32),
            "bundle": {"epoch": 1, "min-svn": 1, "aead": 3, "chunk-size": 16384},
        },
    )
    openers = {
        "the OEM's provisioning session": [artifacts.begin(), *artifacts.stream()[:3]],
        "a sealing session": [keygen],
    }
    reboots = {
        "the genuine image": (artifacts.image, "accepted", "bad-sequence"),
        "a refused image": (artifacts.image[:-1] + b"\x00", "bad-signature", "unknown-command"),
    }
    outcomes: dict[str, str] = {}
    chips = iter(world.cm_uids(cm_farm))
    for (session, opener), (image_name, (image, booted, stale)) in itertools.product(
        openers.items(), reboots.items()
    ):
        uid = next(chips)
        done = 0
        with powered(cm_farm, uid, artifacts.image) as client:
            for _ in range(REBOOTS):  # the CM may do it again and again on one power-on
                result = run(client, opener)
                if not result.accepted:
                    break
                assert run(client, [boot_request(image)]).code == booted
                assert run(client, artifacts.stream()[3:4]).code == stale  # the session is gone
                assert run(client, [boot_request(artifacts.image)]).accepted
                done += 1
            else:
                result = run(client, artifacts.flow())
        if not result.accepted:
            outcomes[f"{session}, re-boot with {image_name}"] = (
                f"{result.code} after {done} re-boots"
            )
            assert_chip_untouched(cm_farm, uid)
    assert not outcomes, f"re-boots mid-session leave the chip unable to provision: {outcomes}"


def test_attack_lock_in_the_middle_of_an_update_is_refused_and_cannot_be_undone(
    world: Any, cm_farm: Path, artifacts: Artifacts, bundle_b: OemRun
) -> None:
    """A provisioned chip, in the middle of an update: ``lock`` is refused (``bad-sequence``)
    and, as every refusal, ends the session, so the rest of the update installs nothing. Locked
    afterwards, the chip stays LOCKED: the same update, sent whole, is refused."""
    uid = world.cm_uids(cm_farm)[0]
    retry_succeeds(world, cm_farm, uid)
    held = read(cm_farm, uid)
    b = Artifacts.load(world.software, bundle_b.share, bundle_b.bundle)
    stream = b.stream()
    lock = messages.encode_request("lock", {})
    with powered(cm_farm, uid, artifacts.image) as client:
        assert run(client, [b.begin(), *stream[:2]]).accepted
        assert run(client, [lock]).code == "bad-sequence"
        assert run(client, [*stream[2:], messages.encode_request("cm.finish", {})]).code == (
            "bad-sequence"
        )
        assert read(cm_farm, uid) == held  # still PROVISIONED, still the first bundle
        assert run(client, [lock]).accepted
        assert run(client, b.flow()).code == "lifecycle"
    after = read(cm_farm, uid)
    assert after.lifecycle == Lifecycle.LOCKED
    assert after.bundle_id == held.bundle_id
    report("lock mid-update", refused_at=2)


def test_attack_locking_after_a_session_sticks_on_every_write_path(
    world: Any, cm_farm: Path, artifacts: Artifacts, bundle_b: OemRun
) -> None:
    """A chip locked right after a complete update stays LOCKED across power cycles, takes no
    further update, and no write path lowers it: a second socket on the same chip, opened
    before the lock and in the middle of an update (a stale view of the chip's state), cannot
    commit that update, nor the lifecycle it read."""
    uid = world.cm_uids(cm_farm)[0]
    retry_succeeds(world, cm_farm, uid)
    b = Artifacts.load(world.software, bundle_b.share, bundle_b.bundle)
    stream = b.stream()
    with FarmLink(cm_farm) as link:
        with link.connect(uid) as stale, link.connect(uid) as locker:
            stale.boot(artifacts.image)
            assert run(stale, [b.begin(), *stream[:-1]]).accepted  # the update, all but the end
            locker.boot(artifacts.image)
            locker.lock()
            result = run(stale, [*stream[-1:], messages.encode_request("cm.finish", {})])
            assert result.code == "lifecycle", result
        locked = read(cm_farm, uid)
        assert locked.lifecycle == Lifecycle.LOCKED
        for _ in range(3):  # power cycles: the lock is in OTP
            with link.connect(uid) as client:
                assert client.status()["lifecycle"] == "LOCKED"
                client.boot(artifacts.image)
                assert run(client, b.flow()).code == "lifecycle"
    assert read(cm_farm, uid) == locked
    report("lock after a session", power_cycles=3)
