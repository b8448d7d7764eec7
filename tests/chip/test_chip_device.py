"""The virtual chip: immutable memory, identity, boot ROM, OTP counter, RAM budget, farm, probe."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import (
    SIGNER_SLOT,
    Bench,
    assert_holds_world_assets,
    assert_untouched,
    farm_rows,
    firmware_bytes,
    regen,
    second_family,
    world_job,
)

from trustprov.chip.device import Chip
from trustprov.chip.farm import STATE_CACHE, Farm
from trustprov.chip.model import ChipState, Installed, KeySlot, Lifecycle
from trustprov.chip.probe import Probe
from trustprov.chip.ram import DEFAULT_RAM, Ram
from trustprov.crypto.keys import public_key_der
from trustprov.errors import ChipRefused, FormatError, InputError
from trustprov.formats import cbor
from trustprov.formats.attestation import Attestation
from trustprov.formats.bundle import MAX_KEY_LEN
from trustprov.formats.limits import LIMITS
from trustprov.formats.software import CODE_PARTS, CODE_ROOT
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.link.port import ChipPort
from trustprov.link.transport import InProcessLink
from trustprov.roles import icm

UID = bytes(range(16))


@pytest.fixture(scope="module")
def family2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return second_family(tmp_path_factory.mktemp("family2"))


@pytest.fixture
def blank(tmp_path: Path) -> Any:
    farm = Farm(tmp_path / "blank.farm", create=True)
    farm.add_blank(UID, "BLANK")
    yield farm
    farm.close()


def _power_on(farm: Farm, uid: bytes = UID) -> Chip:
    return Chip(farm, farm.load(uid))


def _sign(world: Any, out: Path, **kw: Any) -> bytes:
    icm.sign_software(world.icm, out, **kw)
    return out.read_bytes()


# -- manufacturing ROM services ------------------------------------------------------------------
def test_immutable_memory_is_written_once(world: Any, family2: Any, blank: Farm) -> None:
    chip = _power_on(blank)
    chip.burn_immutable(world.icm.immutable)
    for image in (world.icm.immutable, family2.icm.immutable):
        with pytest.raises(ChipRefused) as e:
            _power_on(blank).burn_immutable(image)
        assert e.value.code == "immutable-written"
    assert blank.load(UID).immutable == world.icm.immutable


def test_immutable_memory_second_write_refused_over_the_link(world: Any, blank: Farm) -> None:
    link = ChipClient(InProcessLink(ChipPort(_power_on(blank))))
    link.burn(world.icm.immutable.to_bytes())
    with pytest.raises(ChipRefused) as e:
        link.burn(world.icm.immutable.to_bytes())
    assert e.value.code == "immutable-written"


def test_identity_needs_immutable_memory_and_is_made_once(world: Any, blank: Farm) -> None:
    with pytest.raises(ChipRefused) as e:
        _power_on(blank).make_identity()
    assert e.value.code == "lifecycle"
    _power_on(blank).burn_immutable(world.icm.immutable)
    spki = _power_on(blank).make_identity()
    key = serialization.load_der_public_key(spki)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    made = blank.load(UID).identity_key
    with pytest.raises(ChipRefused) as e:
        _power_on(blank).make_identity()
    assert e.value.code == "identity-exists"
    assert blank.load(UID).identity_key == made


def test_identity_tells_its_public_key_after_a_power_cycle(world: Any, blank: Farm) -> None:
    """A host that lost the answer to rom.make-identity reads the key in rom.identity."""
    link = ChipClient(InProcessLink(ChipPort(_power_on(blank))))
    link.burn(world.icm.immutable.to_bytes())
    assert link.call("rom.identity") == {"certificate": None, "public-key": None}
    spki = link.make_identity()
    again = ChipClient(InProcessLink(ChipPort(_power_on(blank))))  # a new power-on
    assert again.call("rom.identity") == {"certificate": None, "public-key": spki}


def test_certificate_must_be_for_the_chips_own_key(world: Any, blank: Farm) -> None:
    _power_on(blank).burn_immutable(world.icm.immutable)
    with pytest.raises(ChipRefused) as e:  # no identity key yet
        _power_on(blank).store_certificate(b"\x30\x00")
    assert e.value.code == "lifecycle"
    spki = _power_on(blank).make_identity()
    other = public_key_der(ec.generate_private_key(ec.SECP256R1()))
    foreign = icm.issue_certificate(world.icm, UID, other).public_bytes(serialization.Encoding.DER)
    for der in (foreign, b"not a certificate", b""):
        with pytest.raises(ChipRefused) as e:
            _power_on(blank).store_certificate(der)
        assert e.value.code == "bad-certificate"
        state = blank.load(UID)
        assert (state.lifecycle, state.certificate) == (Lifecycle.BLANK, None)
    good = icm.issue_certificate(world.icm, UID, spki).public_bytes(serialization.Encoding.DER)
    v3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2: X.509 v3
    assert good.count(v3) == 1
    with pytest.raises(ChipRefused) as e:  # a version X.509 does not define (found by fuzzing)
        _power_on(blank).store_certificate(good.replace(v3, bytes.fromhex("a003020103")))
    assert e.value.code == "bad-certificate"
    _power_on(blank).store_certificate(good)
    state = blank.load(UID)
    assert (state.lifecycle, state.certificate) == (Lifecycle.MANUFACTURED, good)
    with pytest.raises(ChipRefused) as e:  # once only
        _power_on(blank).store_certificate(good)
    assert e.value.code == "lifecycle"


# -- boot ROM ------------------------------------------------------------------------------------
def _boot_refused(chip: Chip, image: bytes) -> str:
    with pytest.raises(ChipRefused) as e:
        chip.boot(image)
    return e.value.code


def test_blank_chip_boots_nothing(world: Any, blank: Farm) -> None:
    assert _boot_refused(_power_on(blank), world.software.read_bytes()) == "lifecycle"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda _: b"",
        lambda _: b"garbage",
        lambda image: image[:-1],
        lambda image: image + b"\x00",
        lambda image: image[: len(image) // 2],
        lambda image: b"\xd1" + image[1:],  # tag 18 (Sign1) -> 17 (Mac0)
    ],
    ids=["empty", "garbage", "truncated", "trailing", "half", "retagged"],
)
def test_boot_rom_refuses_a_malformed_image(world: Any, cm_farm: Path, mangle: Any) -> None:
    image = mangle(world.software.read_bytes())
    with Bench(cm_farm) as b:
        uid = b.uids()[0]
        assert _boot_refused(b.chip(uid), image) == "bad-software"
        assert b.read(uid).security_counter == 0


def test_boot_rom_refuses_software_signed_by_another_key(
    world: Any, family2: Any, cm_farm: Path
) -> None:
    with Bench(cm_farm) as b:
        uid = b.uids()[0]
        assert _boot_refused(b.chip(uid), family2.software.read_bytes()) == "bad-signature"
        assert b.read(uid).security_counter == 0
        b.chip(uid).boot(world.software.read_bytes())  # the family's own software boots


def _modified_code(tmp_path: Path) -> Path:
    """A copy of the software's code (every part the ICM signs) with one byte changed."""
    code = tmp_path / "code-modified"
    code.mkdir()
    for part in CODE_PARTS:
        src = CODE_ROOT / part
        if src.is_file():
            shutil.copyfile(src, code / part)
        else:
            shutil.copytree(src, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    target = code / "firmware" / "commands.py"
    data = bytearray(target.read_bytes())
    i = data.index(b"the whole of it")
    data[i] = ord("T")  # one byte changed
    target.write_bytes(bytes(data))
    return code


def test_boot_rom_refuses_code_that_does_not_match_the_signed_image(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    code = _modified_code(tmp_path)
    signed_other_code = _sign(world, tmp_path / "other-code.cose", code_root=code)
    genuine = world.software.read_bytes()
    with Bench(cm_farm) as b:
        uid = b.uids()[0]
        # properly signed by the family's key, but not the code this chip runs
        assert _boot_refused(b.chip(uid), signed_other_code) == "code-mismatch"
        # and a chip running the modified code refuses the genuine image
        assert _boot_refused(b.chip(uid, code_root=code), genuine) == "code-mismatch"
        assert b.read(uid).security_counter == 0
        b.chip(uid, code_root=code).boot(signed_other_code)  # consistent: that one boots


def test_security_counter_advances_and_refuses_rollback(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    svn = {v: _sign(world, tmp_path / f"svn{v}.cose", security_version=v) for v in (1, 2, 5)}
    with Bench(cm_farm) as b:
        uid = b.uids()[0]
        assert b.read(uid).security_counter == 0
        b.chip(uid).boot(svn[1])
        assert b.read(uid).security_counter == 1
        b.chip(uid).boot(svn[2])
        assert b.read(uid).security_counter == 2
        b.chip(uid).boot(svn[2])  # equal to the counter: fine
        b.chip(uid).boot(svn[5])
        assert b.read(uid).security_counter == 5
        for older in (svn[1], svn[2]):  # every later power-on still refuses them
            assert _boot_refused(b.chip(uid), older) == "rollback"
        assert b.read(uid).security_counter == 5
        b.chip(uid).boot(svn[5])
        assert b.client(uid).status()["security-counter"] == 5
        other = b.uids()[1]  # the counter is per chip
        b.chip(other).boot(svn[1])
        assert b.read(other).security_counter == 1


def test_failed_boot_leaves_no_software_running(world: Any, cm_farm: Path) -> None:
    with Bench(cm_farm) as b:
        client = b.client(b.uids()[0])
        client.boot(world.software.read_bytes())
        with pytest.raises(ChipRefused):
            client.boot(b"garbage")
        with pytest.raises(ChipRefused) as e:
            client.call("seal.finish")
        assert e.value.code in ("malformed", "unknown-command")  # the ROM answers: no software


# -- RAM budget ----------------------------------------------------------------------------------
def test_ram_reserve_and_release() -> None:
    ram = Ram(100)
    ram.reserve(60)
    with pytest.raises(ChipRefused) as e:
        ram.reserve(41)
    assert e.value.code == "ram-budget"
    with ram.hold(40):
        assert ram.used == 100
    assert (ram.used, ram.peak) == (60, 100)


@pytest.mark.parametrize("budget", [1024, 20_000])
def test_ram_budget_exceeded_refuses_and_installs_nothing(
    world: Any, cm_farm: Path, budget: int
) -> None:
    job = world_job(world)
    with FarmLink(cm_farm, ram_budget=budget) as farm:
        uid = farm.uids(world.cm_lot)[0]
        with farm.connect(uid) as chip:
            chip.boot(job.image)
            with pytest.raises(ChipRefused) as e:
                chip.provision(job.prepared)
            assert e.value.code == "ram-budget"
    with Bench(cm_farm) as b:
        assert_untouched(b.read(uid))
        assert b.provision(uid, job).result == "provisioned"  # default budget: fine


def test_a_large_firmware_installs_within_the_default_ram(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    big = bytes((i * 13 + 1) % 253 for i in range(300_000))
    peaks = {}
    for name, firmware in (("small", firmware_bytes()), ("big", big)):
        run = regen(world, tmp_path, name, firmware=firmware)
        job = run.job(world.software)
        with Bench(cm_farm) as b:
            uid = b.uids()[0 if name == "small" else 1]
            chip = b.chip(uid)
            client: ChipClient = b.client_for(chip)
            client.boot(job.image)
            client.provision(job.prepared)
            assert b.read(uid).regions["app"] == firmware
            peaks[name] = chip.ram.peak
    assert 0 < peaks["big"] <= DEFAULT_RAM
    assert abs(peaks["big"] - peaks["small"]) < 64  # independent of the firmware's size


# -- farm ----------------------------------------------------------------------------------------
def test_farm_save_load_round_trip(world: Any, tmp_path: Path) -> None:
    path = tmp_path / "rt.farm"
    farm = Farm(path, create=True)
    farm.add_blank(UID, "RT")
    installed = Installed(
        domain_id=b"D" * 16,
        bundle_id=b"B" * 16,
        epoch=7,
        slots={
            1: KeySlot("k", "aes-256", b"\x11" * 32, b"\x55" * 32),
            200: KeySlot("e", "ec-p256", b"\x22" * 32, b"\x66" * 32),
        },
        regions={"app": ("fw", 5, b"\x33" * 32)},
    )
    state = ChipState(
        uid=UID,
        lot="RT",
        lifecycle=Lifecycle.PROVISIONED,
        security_counter=9,
        immutable=world.icm.immutable,
        identity_key=b"\x44" * 32,
        certificate=b"cert",
        installed=installed,
    )
    farm.save(state, {b"\x33" * 32: b"hello"})
    farm.close()
    again = Farm(path)
    try:
        assert again.load(UID) == state
        assert again.blob(b"\x33" * 32) == b"hello"
        assert again.uids("RT") == [UID]
        assert again.lots() == ["RT"]
        with pytest.raises(InputError):
            again.load(b"\x00" * 16)
        with pytest.raises(InputError):
            again.blob(b"\x00" * 32)
    finally:
        again.close()


def test_farm_round_trip_of_provisioned_chips(world: Any, cm_farm: Path) -> None:
    job = world_job(world)
    with Bench(cm_farm) as b:
        uids = b.uids()
        for uid in uids:
            assert b.provision(uid, job).result == "provisioned"
        before = {uid: b.farm.load(uid) for uid in uids}
    copy = cm_farm.with_name("copy.farm")
    shutil.copyfile(cm_farm, copy)
    for path in (cm_farm, copy):
        farm = Farm(path)
        try:
            assert {uid: farm.load(uid) for uid in uids} == before
        finally:
            farm.close()


def test_farm_refuses_what_is_not_a_farm(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        Farm(tmp_path / "missing.farm")
    junk = tmp_path / "junk.farm"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(InputError):
        Farm(junk)
    farm = Farm(tmp_path / "f.farm", create=True)
    farm.add_blank(UID, "L")
    with pytest.raises(InputError):
        farm.add_blank(UID, "L")
    farm.close()


def test_farm_stores_each_flash_blob_and_family_image_once(world: Any, tmp_path: Path) -> None:
    path = tmp_path / "many.farm"
    icm.manufacture(world.icm, path, "MANY", 24, tmp_path / "many.json")
    job = world_job(world)
    with Bench(path) as b:
        for uid in b.uids():
            assert b.provision(uid, job).result == "provisioned"
    assert farm_rows(path, "SELECT COUNT(*) FROM chips") == [(24,)]
    assert farm_rows(path, "SELECT COUNT(*) FROM families") == [(1,)]
    # two flash regions in the bundle (app, config): two blobs, however many chips hold them
    assert farm_rows(path, "SELECT COUNT(*) FROM blobs") == [(2,)]
    sizes = sorted(r[0] for r in farm_rows(path, "SELECT length(data) FROM blobs"))
    assert sizes == sorted([len(firmware_bytes()), len(b"mode=production")])
    # one bundle, one installed state: each chip's row holds only its 32-byte id
    assert farm_rows(path, "SELECT COUNT(*) FROM installed_states") == [(1,)]
    assert farm_rows(path, "SELECT DISTINCT length(installed_id) FROM chips") == [(32,)]


def test_farm_keeps_each_chips_own_installed_state(world: Any, tmp_path: Path) -> None:
    """States are shared by content, never by chip: more distinct states than the farm caches,
    each read back by the chip that holds it, from this farm and from a fresh one."""
    path = tmp_path / "states.farm"
    farm = Farm(path, create=True)
    uids = [bytes([i]) * 16 for i in range(1, STATE_CACHE + 11)]

    def state(uid: bytes, epoch: int) -> ChipState:
        slot = KeySlot("k", "ec-p256", bytes([epoch]) * 32, bytes(32))
        return ChipState(
            uid=uid,
            lot="L",
            lifecycle=Lifecycle.PROVISIONED,
            immutable=world.icm.immutable,
            installed=Installed(b"D" * 16, b"B" * 16, epoch, slots={0: slot}),
        )

    for i, uid in enumerate(uids):
        farm.add_blank(uid, "L")
        farm.save(state(uid, 1 + i % (STATE_CACHE + 5)))
    try:
        for again in (farm, Farm(path)):
            for i, uid in enumerate(uids):
                assert again.load(uid) == state(uid, 1 + i % (STATE_CACHE + 5))
            if again is not farm:
                again.close()
    finally:
        farm.close()
    assert farm_rows(path, "SELECT COUNT(*) FROM installed_states") == [(STATE_CACHE + 5,)]


def test_a_farm_missing_an_installed_state_is_refused_as_input(world: Any, tmp_path: Path) -> None:
    path = tmp_path / "broken.farm"
    farm = Farm(path, create=True)
    farm.add_blank(UID, "L")
    farm.save(
        ChipState(
            uid=UID,
            lot="L",
            lifecycle=Lifecycle.PROVISIONED,
            immutable=world.icm.immutable,
            installed=Installed(b"D" * 16, b"B" * 16, 1),
        )
    )
    farm.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM installed_states")
    again = Farm(path)
    try:
        with pytest.raises(InputError, match="installed state missing"):
            again.load(UID)
    finally:
        again.close()


def test_a_failed_batch_leaves_no_trace_in_the_farm_or_its_caches(
    world: Any, tmp_path: Path
) -> None:
    """A batch that rolls back (a power cut while manufacturing) must not leave the farm
    believing that the family image or a flash blob it wrote is stored: later writes on the
    same farm must still store them."""
    path = tmp_path / "batch.farm"
    farm = Farm(path, create=True)
    a, b = b"A" * 16, b"B" * 16
    farm.add_blank(a, "L")
    blob_id, blob = b"\x01" * 32, b"flash contents"

    def installed(uid: bytes) -> ChipState:
        return ChipState(
            uid=uid,
            lot="L",
            lifecycle=Lifecycle.PROVISIONED,
            immutable=world.icm.immutable,
            installed=Installed(
                b"D" * 16, b"B" * 16, 1, regions={"app": ("fw", len(blob), blob_id)}
            ),
        )

    def cut_while_writing_b() -> None:
        with farm.batch():
            farm.add_blank(b, "L")
            farm.save(installed(b), {blob_id: blob})
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        cut_while_writing_b()
    assert farm.uids() == [a]
    farm.save(installed(a), {blob_id: blob})  # outside any batch: committed
    farm.close()
    again = Farm(path)
    try:
        assert again.load(a) == installed(a)
        assert again.blob(blob_id) == blob
    finally:
        again.close()


def test_manufacturing_that_fails_midway_leaves_no_partial_lot(world: Any, tmp_path: Path) -> None:
    path = tmp_path / "lot.farm"
    icm.manufacture(world.icm, path, "FIRST", 2, tmp_path / "first.json")
    made = []

    def rng(n: int) -> bytes:
        if len(made) == 3:
            raise OSError("the fab's tester lost power")
        made.append(n)
        return bytes([len(made)]) * n

    with pytest.raises(OSError, match="lost power"):
        icm.manufacture(world.icm, path, "SECOND", 5, tmp_path / "second.json", rng=rng)
    assert not (tmp_path / "second.json").exists()
    with FarmLink(path) as farm:
        assert farm.lots() == ["FIRST"]
        assert len(farm.uids()) == 2
    icm.manufacture(world.icm, path, "SECOND", 5, tmp_path / "second.json")
    with Bench(path) as b:
        assert len(b.uids("SECOND")) == 5
        for uid in b.uids():
            assert b.read(uid).lifecycle == Lifecycle.MANUFACTURED


# -- probe ---------------------------------------------------------------------------------------
def test_probe_reads_what_a_chip_holds(world: Any, cm_farm: Path) -> None:
    job = world_job(world)
    with Bench(cm_farm) as b:
        uid = b.uids()[0]
        r = b.read(uid)
        assert_untouched(r)
        assert r.immutable == world.icm.immutable
        client = b.client(uid)
        client.boot(job.image)
        receipt = client.provision(job.prepared)
    with Probe(cm_farm) as probe:
        r = probe.read(uid)
        assert_holds_world_assets(r, world.public_keys)
        assert r.bundle_id == job.prepared.bundle_id
        assert r.domain_id == receipt["domain-id"]
        assert r.epoch == 1
        assert r.security_counter == 1
        assert r.immutable == world.icm.immutable
        assert SIGNER_SLOT in r.slots
        with pytest.raises(InputError):
            probe.read(b"\xff" * 16)


# -- installed state: capacity, loading, the lifecycle on every write ------------------------------
WIDE = "\U0001d52f"  # 4 bytes of UTF-8


def _name(prefix: str, i: int) -> str:
    """64 bytes of UTF-8: the longest a name may be."""
    return f"{prefix}{i:02d}" + WIDE * ((LIMITS.name - 3) // 4) + "x" * ((LIMITS.name - 3) % 4)


def _largest_state() -> Installed:
    """More than any bundle can install: the full count of slots and of regions at once, every
    name, key type and key at its longest, lengths at their largest."""
    return Installed(
        domain_id=b"D" * 16,
        bundle_id=b"B" * 16,
        epoch=2**32 - 1,
        slots={
            255 - n: KeySlot(_name("k", n), _name("t", n), b"\x11" * MAX_KEY_LEN, b"\x22" * 32)
            for n in range(LIMITS.installed_slots)
        },
        regions={
            _name("r", n): (_name("a", n), LIMITS.region, b"\x33" * 32)
            for n in range(LIMITS.installed_regions)
        },
    )


def test_the_largest_installed_state_loads_at_power_on(world: Any, tmp_path: Path) -> None:
    """The capacity is chosen so that any state a chip accepts loads again: the largest one
    encodes within the limit (under the 28 KiB protocol.md names), and a chip holding it in a
    farm loads and answers its status."""
    state = _largest_state()
    data = state.to_bytes()
    assert all(len(n.encode()) == LIMITS.name for n in state.regions)
    assert len(data) <= 28 * 1024 < LIMITS.installed_state
    assert Installed.from_bytes(data) == state
    path = tmp_path / "largest.farm"
    farm = Farm(path, create=True)
    farm.add_blank(UID, "L")
    chip_state = ChipState(
        UID, "L", Lifecycle.PROVISIONED, 1, world.icm.immutable, None, None, state
    )
    farm.save(chip_state)
    farm.close()
    with FarmLink(path) as link, link.connect(UID) as client:
        status = client.status()
    assert status["installed-digest"] == state.digest()
    assert len(status["installed"]["regions"]) == LIMITS.installed_regions


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.pop("epoch"),
        lambda m: m.update(slots={1: ["k", "aes-256", b"v" * 32]}),  # no digest
        lambda m: m.update(slots={"1": ["k", "aes-256", b"v" * 32, b"d" * 32]}),
        lambda m: m.update(regions={"r": ["a", 1]}),
        lambda m: m.update(regions={"r" * 65: ["a", 1, b"c" * 32]}),
        lambda m: m.update(regions={WIDE * 17: ["a", 1, b"c" * 32]}),
        lambda m: m.update(regions={f"r{i}": ["a", 1, b"c" * 32] for i in range(65)}),
        lambda m: m.update(domain=b"short"),
        lambda m: m.update(slots=[]),
    ],
)
def test_a_malformed_installed_state_is_a_format_error(mutate: Any) -> None:
    m = cbor2.loads(_largest_state().to_bytes())
    m["slots"] = {1: ["k", "aes-256", b"v" * 32, b"d" * 32]}
    m["regions"] = {}
    assert Installed.from_bytes(cbor.encode(m)).slots[1].asset == "k"
    mutate(m)
    with pytest.raises(FormatError):
        Installed.from_bytes(cbor.encode(m))


def test_no_write_lowers_the_lifecycle_or_the_security_counter(world: Any, cm_farm: Path) -> None:
    """A locked chip installs nothing (Hardware.install), and neither a chip object nor the farm
    writes a lower lifecycle or security counter than the one stored."""
    uid = world.cm_uids(cm_farm)[0]
    job = world_job(world)
    with Bench(cm_farm) as b:
        assert b.provision(uid, job).result == "provisioned"
        stale = b.farm.load(uid)
        chip = b.chip(uid)
        hw = chip.boot(job.image)
        hw.lock()
        before = b.read(uid)
        with pytest.raises(ChipRefused) as e:
            hw.install(domain_id=bytes(16), bundle_id=bytes(16), epoch=9, slots={}, flash=[])
        assert e.value.code == "lifecycle"
        lowered = [
            ChipState(**{**vars(stale), "lifecycle": Lifecycle.PROVISIONED}),
            ChipState(**{**vars(b.farm.load(uid)), "security_counter": 0}),
        ]
        for state in lowered:
            with pytest.raises(ChipRefused) as e:
                chip._commit(state)  # the chip's own write path, under test
            assert e.value.code == "lifecycle"
            with pytest.raises(ChipRefused) as e:
                b.farm.save(state)
            assert e.value.code == "lifecycle"
        assert b.read(uid) == before
        assert before.lifecycle == Lifecycle.LOCKED


def test_two_chip_objects_of_one_chip_cannot_both_install(world: Any, cm_farm: Path) -> None:
    """One chip seen twice (as if in two sockets at once): the second install works from a view
    the first one changed, so the farm's compare-and-swap on the provisioning counter refuses it,
    and no two installs ever share a counter (a receipt's count could not be trusted)."""
    uid = world.cm_uids(cm_farm)[0]
    job = world_job(world)
    with Bench(cm_farm) as b:
        first = ChipClient(InProcessLink(ChipPort(Chip(b.farm, b.farm.load(uid)))))
        second = ChipClient(InProcessLink(ChipPort(Chip(b.farm, b.farm.load(uid)))))
        for client in (first, second):
            client.send(job.boot_request)
        first.provision(job.prepared)
        after_first = b.read(uid)
        with pytest.raises(ChipRefused) as e:
            second.provision(job.prepared)
        assert e.value.code == "lifecycle"
        assert b.read(uid) == after_first
        assert b.farm.load(uid).prov_counter == 1


# -- ROM attestation (docs/protocol.md 8.8) -------------------------------------------------------
def test_attest_signs_what_the_chip_holds_over_the_challenge(world: Any, tmp_path: Path) -> None:
    farm_path = tmp_path / "chips.farm"
    shutil.copyfile(world.cm_farm, farm_path)
    farm = Farm(farm_path)
    try:
        uid = farm.uids()[0]
        client = ChipClient(InProcessLink(ChipPort(_power_on(farm, uid))))
        challenge = bytes(range(32))
        token = Attestation.from_bytes(client.attest(challenge))
        cert = x509.load_der_x509_certificate(token.certificate)
        token.verify(cert.public_key(), challenge)  # type: ignore[arg-type]  # P-256
        c = token.claims
        assert (c.uid, c.lot, c.lifecycle, c.counter) == (uid, world.cm_lot, 1, 0)
        assert (c.bundle_id, c.installed_digest, c.domain_id, c.epoch) == (None,) * 4
        for bad in ({}, {"challenge": bytes(31)}, {"challenge": bytes(32), "x": 1}):
            with pytest.raises(ChipRefused) as e:
                client.call("rom.attest", bad)
            assert e.value.code == "malformed"
    finally:
        farm.close()


def test_a_blank_chip_has_nothing_to_attest_with(blank: Farm) -> None:
    client = ChipClient(InProcessLink(ChipPort(_power_on(blank))))
    with pytest.raises(ChipRefused) as e:
        client.attest(bytes(32))
    assert e.value.code == "lifecycle"
