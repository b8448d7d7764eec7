"""T18-T20: what an update leaves on a chip, and how large a chip's stored state can grow.

An update replaces the whole installed state: after bundle X then bundle Y a chip holds exactly
what a chip that only ever received Y holds, and says so in `rom.status` by the digest of its
installed state, which a host computes from the bundle and the domain id alone. Chunks of one
complete install never count in the session of another. And however many updates a CM acting
as its own OEM installs, with as many regions and as long names as the formats allow, the
chip's stored state stays within the capacity that every chip loads at power-on.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import OemRun, regen

from trustprov.chip.device import FlashWrite
from trustprov.chip.model import KeySlot, Lifecycle
from trustprov.crypto.aead import A256GCM
from trustprov.errors import ChipRefused
from trustprov.formats.bundle import Bundle
from trustprov.formats.installed import expected_installed_digest
from trustprov.formats.limits import LIMITS
from trustprov.link import messages
from trustprov.roles import oem
from trustprov.roles.oem.assets import AssetList, AssetSpec

from .attack_helpers import (
    FINISH,
    Artifacts,
    assert_same_holding,
    chained,
    powered,
    read,
    report,
    run,
    sample,
)

#: a debug key and a debug region that bundle X installs and the OEM's next bundle drops
DEBUG_ASSETS = """
[[asset]]
name = "debug-key"
kind = "key"
key-type = "aes-256"
slot = 9
hex = "{key}"

[[asset]]
name = "debug"
kind = "config"
region = "debug"
value = "debug=on"
""".format(key="5a" * 32)


@pytest.fixture(scope="module")
def debug_then_clean(world: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[OemRun, ...]:
    """The OEM's bundles X (epoch 2, with the debug assets), Y (epoch 3, without) and Z (epoch
    4, without), all of the world's domain."""
    root = tmp_path_factory.mktemp("updates")
    x = regen(world, root, "x", epoch=2, extra=DEBUG_ASSETS)
    y = regen(world, root, "y", epoch=3)
    z = regen(world, root, "z", epoch=4)
    return x, y, z


def _load(world: Any, run_: OemRun) -> Artifacts:
    return Artifacts.load(world.software, run_.share, run_.bundle)


def _status(farm: Path, uid: bytes) -> dict[str, Any]:
    with powered(farm, uid) as client:
        return client.status()


def _expected(run_: OemRun, domain_id: bytes) -> bytes:
    return expected_installed_digest(Bundle.from_bytes(run_.bundle.read_bytes()), domain_id)


def test_attack_update_leaves_no_residue_of_the_previous_bundle(
    world: Any, cm_farm: Path, debug_then_clean: tuple[OemRun, ...]
) -> None:
    """X then Y holds exactly what Y alone holds: no debug key, no debug region; the status of
    both chips carries the same installed digest, the one the host computes for Y, and not the
    one it computes for X."""
    x, y, _ = (_load(world, r) for r in debug_then_clean)
    updated, clean = world.cm_uids(cm_farm)[:2]
    with powered(cm_farm, updated, x.image) as client:
        assert run(client, x.flow()).accepted
    after_x = read(cm_farm, updated)
    assert 9 in after_x.slots  # the debug assets went in
    assert "debug" in after_x.regions
    domain_id = after_x.domain_id
    assert domain_id is not None
    digest_x = _status(cm_farm, updated)["installed-digest"]
    assert digest_x == _expected(debug_then_clean[0], domain_id)
    with powered(cm_farm, updated, y.image) as client:
        assert run(client, y.flow()).accepted
    with powered(cm_farm, clean, y.image) as client:
        assert run(client, y.flow()).accepted
    a, b = read(cm_farm, updated), read(cm_farm, clean)
    assert 9 not in a.slots, "bundle X's debug key survived the update to Y"
    assert "debug" not in a.regions, "bundle X's debug region survived the update to Y"
    assert_same_holding(b, a)
    status_a, status_b = _status(cm_farm, updated), _status(cm_farm, clean)
    assert status_a["installed"] == status_b["installed"]
    digest_y = _expected(debug_then_clean[1], domain_id)
    assert status_a["installed-digest"] == status_b["installed-digest"] == digest_y
    assert digest_y != digest_x
    report("update residue", slots=sorted(a.slots), regions=sorted(a.regions))


def test_attack_chunks_of_one_complete_install_spliced_into_the_session_of_another(
    world: Any, cm_farm: Path, debug_then_clean: tuple[OemRun, ...]
) -> None:
    """After X is installed, a session of Y is fed X's chunks (whole, or after Y's first
    asset), and after Y is installed, a session of Z is fed Y's: every splice is refused at the
    first foreign chunk, the chip keeps what it held, and it ends holding exactly Z."""
    x, y, z = (_load(world, r) for r in debug_then_clean)
    uid = world.cm_uids(cm_farm)[0]
    codes: list[str] = []
    with powered(cm_farm, uid, x.image) as client:
        assert run(client, x.flow()).accepted
        for done, session, foreign in ((x, y, x), (y, z, y)):
            held = read(cm_farm, uid)
            first = [p for p in session.parts() if p[0] == 0]
            rest = [p for p in foreign.parts() if p[0] > 0]
            splices = {
                "all foreign": [session.begin(), *foreign.stream(), FINISH],
                "foreign after the first asset": [session.begin(), *chained(first + rest), FINISH],
            }
            for requests in splices.values():
                result = run(client, requests)
                assert not result.accepted
                assert result.at >= 1, result  # cm.begin of the genuine next bundle is fine
                codes.append(result.code)
                assert_same_holding(held, read(cm_farm, uid))
            assert run(client, session.flow()).accepted
            assert run(client, done.flow()).code == "stale-epoch"
    r = read(cm_farm, uid)
    assert r.lifecycle == Lifecycle.PROVISIONED
    assert r.domain_id is not None
    assert 9 not in r.slots
    assert "debug" not in r.regions
    assert _status(cm_farm, uid)["installed-digest"] == _expected(debug_then_clean[2], r.domain_id)
    assert set(codes) == {"bad-chunk"}, codes
    report("splice across installs", splices=len(codes))


# -- growth -----------------------------------------------------------------------------------
UPDATES = sample(6, 40)  # `make attacks`: 40 updates, 2,560 regions installed in turn
REGIONS = 64  # as many as a bundle holds
WIDE = "\U0001d52f"  # 4 UTF-8 bytes, one character


def _wide_name(update: int, i: int) -> str:
    """A name of 62 UTF-8 bytes (20 characters), distinct per update and asset."""
    return f"{update:02d}-{i:02d}-" + WIDE * 14


def _many_regions(epoch: int) -> AssetList:
    specs = tuple(
        AssetSpec(
            name=_wide_name(epoch, i),
            kind="config",
            region=_wide_name(epoch, i),
            value=bytes([epoch, i]),
        )
        for i in range(REGIONS)
    )
    return AssetList(epoch, A256GCM, 4096, None, specs)


def _stored_state_len(farm: Path, uid: bytes) -> int:
    """Bytes of the installed state the chip keeps, read from the farm as a probe would."""
    db = sqlite3.connect(farm)
    try:
        rows = db.execute(
            "SELECT length(s.data) FROM chips c JOIN installed_states s "
            "ON s.state_id = c.installed_id WHERE c.uid = ?",
            (uid,),
        ).fetchall()
    finally:
        db.close()
    assert len(rows) == 1
    return int(rows[0][0])


def test_attack_stored_state_does_not_grow_across_many_updates(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    """The CM as its own OEM (FIG. 2 on a chip it kept, then FIG. 4 again and again) installs
    update after update of many regions with long multi-byte names, each with other names: the
    chip holds only the latest bundle's regions, its stored state stays within the capacity,
    and it powers on and answers after every update."""
    sealer, target = world.cm_uids(cm_farm)[-1], world.cm_uids(cm_farm)[0]
    state_dir = tmp_path / "cm-own-1"
    runs = [
        oem.keygen(
            cm_farm, sealer, software_path=world.software, assets=_many_regions(1), out=state_dir
        )
    ]
    shares = [state_dir / "enc-oem-share.cose"]
    for epoch in range(2, UPDATES + 1):
        out = tmp_path / f"cm-own-{epoch}"
        runs.append(
            oem.regen(
                cm_farm,
                sealer,
                software_path=world.software,
                state=state_dir,
                assets=_many_regions(epoch),
                out=out,
            )
        )
        shares.append(out / "enc-oem-share.cose")
    sizes: list[int] = []
    image = world.software.read_bytes()
    for epoch, (result, share) in enumerate(zip(runs, shares, strict=True), start=1):
        bundle = Artifacts(image, share.read_bytes(), result.bundle)
        with powered(cm_farm, target, image) as client:
            assert run(client, bundle.flow()).accepted
        r = read(cm_farm, target)
        assert set(r.regions) == {_wide_name(epoch, i) for i in range(REGIONS)}, (
            f"after update {epoch} the chip holds {len(r.regions)} regions"
        )
        sizes.append(_stored_state_len(cm_farm, target))
        assert sizes[-1] <= LIMITS.installed_state
        assert r.domain_id is not None
        status = _status(cm_farm, target)  # it powers on and answers
        assert status["installed-digest"] == expected_installed_digest(result.bundle, r.domain_id)
    assert max(sizes) - min(sizes) <= 8, f"stored state grew: {sizes}"
    report("stored-state growth", updates=UPDATES, regions=REGIONS, state_bytes=sizes)


def test_attack_names_are_limited_in_utf8_bytes_not_characters(world: Any, cm_farm: Path) -> None:
    """A name of 17 four-byte characters is 68 bytes: over the 64-byte limit, whatever its
    character count, for an asset name and for a region."""
    uid = world.cm_uids(cm_farm)[-1]
    keygen = messages.encode_request(
        "oem.keygen",
        {
            "oem-rnd-input": bytes(32),
            "bundle": {"epoch": 1, "min-svn": 1, "aead": 3, "chunk-size": 4096},
        },
    )
    long_name = WIDE * (LIMITS.name // 4 + 1)
    fits = WIDE * (LIMITS.name // 4)
    assert len(long_name) < LIMITS.name < len(long_name.encode())
    codes: dict[str, str] = {}
    for what, name, region in (
        ("name", long_name, "r"),
        ("region", "a", long_name),
        ("both at the limit", fits, fits),
    ):
        seal = messages.encode_request(
            "seal.asset", {"name": name, "kind": "config", "length": 1, "region": region}
        )
        with powered(cm_farm, uid, world.software.read_bytes()) as client:
            codes[what] = run(client, [keygen, seal]).code
    assert codes == {
        "name": "bad-request",
        "region": "bad-request",
        "both at the limit": "accepted",
    }


def test_attack_install_beyond_the_capacity_is_refused_before_commit(
    world: Any, cm_farm: Path
) -> None:
    """Whatever reaches `Hardware.install`, a state over the capacity is refused with
    ``capacity`` before anything is written: too many slots, too many regions."""
    from helpers import Bench  # noqa: PLC0415 - the bench is the firmware's-eye view here

    uid = world.cm_uids(cm_farm)[0]
    before = read(cm_farm, uid)
    key = KeySlot("k", "aes-256", bytes(32), bytes(32))
    flash = [
        FlashWrite(f"r{i}", f"a{i}", bytes([i % 256]) * 32, b"x")
        for i in range(LIMITS.installed_regions + 1)
    ]
    slots = dict.fromkeys(range(LIMITS.installed_slots + 1), key)
    codes = []
    with Bench(cm_farm) as bench:
        hw = bench.chip(uid).boot(world.software.read_bytes())
        for s, f in ((slots, []), ({}, flash)):
            with pytest.raises(ChipRefused) as e:
                hw.install(domain_id=bytes(16), bundle_id=bytes(16), epoch=1, slots=s, flash=f)
            codes.append(e.value.code)
    assert codes == ["capacity", "capacity"]
    assert_same_holding(before, read(cm_farm, uid))


def test_attack_a_region_larger_than_the_store_holds_is_refused_before_commit(
    world: Any, cm_farm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 24: a region beyond what the chip's store holds (`LIMITS.region`; made small here,
    so that the test writes bytes, not a gigabyte) is ``capacity``, never an internal fault."""
    from helpers import Bench  # noqa: PLC0415 - the bench is the firmware's-eye view here

    from trustprov.chip import model  # noqa: PLC0415 - only to shrink its limit

    monkeypatch.setattr(model, "LIMITS", dataclasses.replace(LIMITS, region=16))
    uid = world.cm_uids(cm_farm)[0]
    before = read(cm_farm, uid)
    with Bench(cm_farm) as bench:
        hw = bench.chip(uid).boot(world.software.read_bytes())
        fits = [FlashWrite("r", "a", bytes(32), b"x" * 16)]
        hw.install(domain_id=bytes(16), bundle_id=bytes(16), epoch=1, slots={}, flash=fits)
        over = [FlashWrite("r", "a", bytes([1]) * 32, b"x" * 17)]
        with pytest.raises(ChipRefused) as e:
            hw.install(domain_id=bytes(16), bundle_id=bytes(16), epoch=2, slots={}, flash=over)
    assert e.value.code == "capacity"
    assert before != read(cm_farm, uid)  # the region that fits was installed, and only it
