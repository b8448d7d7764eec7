"""One chip's state in one file: round trips, atomic commits under a power cut, OTP, damage."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustprov.chip.farm import Farm
from trustprov.chip.model import ChipState, Installed, KeySlot, Lifecycle
from trustprov.chip.nvm_file import MAGIC, NvmFile
from trustprov.chip.staging import StagedContent
from trustprov.crypto.digest import sha256
from trustprov.errors import ChipRefused, InputError

UID = bytes(range(16))


def _made(world: Any) -> ChipState:
    farm = Farm(world.cm_farm)
    try:
        return farm.load(world.cm_uids()[0])
    finally:
        farm.close()


def _provisioned(made: ChipState, contents: dict[str, bytes], epoch: int = 1) -> ChipState:
    installed = Installed(domain_id=bytes(16), bundle_id=bytes(16), epoch=epoch)
    installed.slots[1] = KeySlot("k", "aes-256", bytes(32), bytes(32))
    for name, data in contents.items():
        installed.regions[name] = (name, len(data), sha256(data))
    return dataclasses.replace(
        made, installed=installed, lifecycle=Lifecycle.PROVISIONED, prov_counter=epoch
    )


def test_a_new_file_is_a_blank_chip_and_nothing_is_written_until_a_commit(tmp_path: Path) -> None:
    nvm = NvmFile(tmp_path / "c.nvm", uid=UID, lot="W1")
    state = nvm.load()
    assert (state.uid, state.lot, state.lifecycle, state.immutable) == (
        UID,
        "W1",
        Lifecycle.BLANK,
        None,
    )
    assert not (tmp_path / "c.nvm").exists()
    (tmp_path / "empty.nvm").write_bytes(b"")  # a tray's blank chip
    assert NvmFile(tmp_path / "empty.nvm", uid=UID, lot="W1").load().lifecycle is Lifecycle.BLANK


def test_round_trip_of_a_made_and_a_provisioned_chip(world: Any, tmp_path: Path) -> None:
    made = _made(world)
    path = tmp_path / "c.nvm"
    nvm = NvmFile(path, uid=made.uid, lot="ignored: the file keeps its own")
    nvm.load()
    nvm.save(made)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(MAGIC)
    again = NvmFile(path, uid=made.uid, lot="x").load()
    assert again == made
    fw, cfg = bytes(range(256)) * 300, b"config"
    state = _provisioned(made, {"fw": fw, "cfg": cfg})
    nvm.save(state, {sha256(fw): fw, sha256(cfg): cfg}, seen_prov_counter=0)
    fresh = NvmFile(path, uid=made.uid, lot="x")
    assert fresh.load() == state
    assert fresh.blob_digest(sha256(fw)) == sha256(fw)
    assert fresh.blob(sha256(cfg)) == cfg
    # an update that keeps the firmware (held: not staged again) and drops the config
    update = _provisioned(made, {"fw": fw}, epoch=2)
    fresh.save(update, {sha256(fw): StagedContent(sha256(fw), held=True)}, seen_prov_counter=1)
    last = NvmFile(path, uid=made.uid, lot="x")
    assert last.load() == update
    assert last.blob(sha256(fw)) == fw
    assert not last.holds_blob(sha256(cfg))  # what the update replaced is gone from the file


def test_a_power_cut_before_the_rename_leaves_the_old_state(world: Any, tmp_path: Path) -> None:
    made = _made(world)
    path = tmp_path / "c.nvm"
    nvm = NvmFile(path, uid=made.uid, lot="x")
    nvm.load()
    nvm.save(made)
    before = path.read_bytes()

    def cut() -> None:
        raise KeyboardInterrupt  # the power goes between the fsync and the rename

    nvm.before_commit = cut
    with pytest.raises(KeyboardInterrupt):
        nvm.save(_provisioned(made, {"cfg": b"c"}), {sha256(b"c"): b"c"})
    assert path.read_bytes() == before
    assert not path.with_name("c.nvm.new").exists()
    assert NvmFile(path, uid=made.uid, lot="x").load() == made
    # a stale FILE.new (a cut during the write) is ignored and replaced by the next commit
    path.with_name("c.nvm.new").write_bytes(b"half")
    nvm.before_commit = None
    nvm.save(_provisioned(made, {"cfg": b"c"}), {sha256(b"c"): b"c"})
    assert NvmFile(path, uid=made.uid, lot="x").load().lifecycle is Lifecycle.PROVISIONED


def test_the_lifecycle_and_the_counters_only_advance(world: Any, tmp_path: Path) -> None:
    made = _made(world)
    nvm = NvmFile(tmp_path / "c.nvm", uid=made.uid, lot="x")
    nvm.load()
    state = _provisioned(made, {"cfg": b"c"})
    nvm.save(state, {sha256(b"c"): b"c"})
    for lower in (
        dataclasses.replace(state, lifecycle=Lifecycle.MANUFACTURED),
        dataclasses.replace(state, prov_counter=0),
        dataclasses.replace(state, security_counter=state.security_counter - 1)
        if state.security_counter
        else dataclasses.replace(state, lifecycle=Lifecycle.BLANK),
    ):
        with pytest.raises(ChipRefused) as e:
            nvm.save(lower, {sha256(b"c"): StagedContent(sha256(b"c"), held=True)})
        assert e.value.code == "lifecycle"
    with pytest.raises(ChipRefused):  # a writer that saw another provisioning counter
        nvm.save(state, {sha256(b"c"): b"c"}, seen_prov_counter=0)


def test_a_file_of_another_chip_or_damaged_is_refused(world: Any, tmp_path: Path) -> None:
    made = _made(world)
    path = tmp_path / "c.nvm"
    nvm = NvmFile(path, uid=made.uid, lot="x")
    nvm.load()
    nvm.save(made)
    with pytest.raises(InputError, match="holds chip"):
        NvmFile(path, uid=UID, lot="x").load()
    data = path.read_bytes()
    for damaged in (data[:-1], data + b"\0", data[:20] + bytes([data[20] ^ 1]) + data[21:]):
        path.write_bytes(damaged)
        with pytest.raises(InputError, match="not a chip's NVM file"):
            NvmFile(path, uid=made.uid, lot="x").load()


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=300))
def test_any_bytes_load_or_fail_with_a_typed_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.nvm"
    path.write_bytes(MAGIC + data if data[0] & 1 else data)
    # random bytes never make a well-formed file of this chip: each is refused with a typed
    # error naming the file, never another exception
    with pytest.raises(InputError, match=r"fuzz\.nvm"):
        NvmFile(path, uid=UID, lot="x").load()
