"""chip.farm in a batch (manufacturing): the chips added in it are written behind, in memory
until the batch writes them, with the same OTP rule and the same all-or-nothing commit."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from trustprov.chip import farm as farm_module
from trustprov.chip.farm import Farm
from trustprov.chip.model import ChipState, Lifecycle
from trustprov.errors import ChipRefused


def _made(world: Any, state: ChipState) -> ChipState:
    return dataclasses.replace(
        state,
        immutable=world.icm.immutable,
        identity_key=os.urandom(32),
        certificate=os.urandom(300),
        lifecycle=Lifecycle.MANUFACTURED,
    )


@pytest.fixture
def farm(world: Any, tmp_path: Path) -> Any:
    f = Farm(tmp_path / "batch.farm", create=True)
    with f.batch():  # the family is stored once, outside the batches under test
        f.save(dataclasses.replace(f.add_blank(b"\x00" * 16, "F"), immutable=world.icm.immutable))
    yield f
    f.close()


@pytest.mark.parametrize("behind", [1, 2, 512])
def test_every_chip_of_a_batch_is_stored_as_last_saved(
    world: Any, farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behind: int
) -> None:
    monkeypatch.setattr(farm_module, "WRITE_BEHIND", behind)  # flushed midway, or at the end
    states = {}
    with farm.batch():
        for _ in range(5):
            uid = os.urandom(16)
            blank = farm.add_blank(uid, "L")
            burnt = dataclasses.replace(blank, immutable=world.icm.immutable)
            farm.save(burnt, seen_prov_counter=0)
            assert farm.load(uid) == burnt  # a chip reads back what it wrote, in the batch
            states[uid] = _made(world, burnt)
            farm.save(states[uid], seen_prov_counter=0)
    again = Farm(tmp_path / "batch.farm")
    try:
        for uid, state in states.items():
            assert again.load(uid) == state
    finally:
        again.close()


def test_a_batch_that_fails_stores_none_of_its_chips(world: Any, farm: Farm) -> None:
    uid = os.urandom(16)

    def cut() -> None:
        with farm.batch():
            farm.save(_made(world, farm.add_blank(uid, "L")))
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        cut()
    assert uid not in farm.uids()


def test_the_counters_only_advance_behind_as_in_the_file(world: Any, farm: Farm) -> None:
    uid = os.urandom(16)

    def lowered() -> None:
        with farm.batch():
            made = _made(world, farm.add_blank(uid, "L"))
            farm.save(made)
            farm.save(dataclasses.replace(made, lifecycle=Lifecycle.BLANK))

    def from_another_view() -> None:
        with farm.batch():
            made = _made(world, farm.add_blank(uid, "L"))
            farm.save(made, seen_prov_counter=1)  # a writer that started from another view

    for attempt in (lowered, from_another_view):
        with pytest.raises(ChipRefused) as e:
            attempt()
        assert e.value.code == "lifecycle"
        assert uid not in farm.uids()
