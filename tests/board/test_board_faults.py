"""The --faults grammar: every form it documents parses, anything else is one InputError."""

from __future__ import annotations

import pytest

from trustprov.board.faults import CLEAN, FaultDice, Faults, apply_corruption
from trustprov.errors import InputError


def test_the_documented_example_parses() -> None:
    f = Faults.parse(
        "drop=0.01,corrupt=0.01,dup=0.005,delay=0.002:20ms,reorder=0.001,cut=0.001,"
        "powercut=0.02,misplace=0,seed=7"
    )
    assert (f.drop, f.corrupt, f.dup, f.delay, f.delay_s) == (0.01, 0.01, 0.005, 0.002, 0.020)
    assert (f.reorder, f.cut, f.powercut, f.misplace, f.seed) == (0.001, 0.001, 0.02, 0.0, 7)
    assert Faults.parse("delay=1:2s").delay_s == 2.0
    assert Faults.parse(None) == Faults() == Faults.parse("")


@pytest.mark.parametrize(
    "spec",
    [
        "drop",
        "drop=",
        "drop=1.5",
        "drop=-0.1",
        "drop=0.1,drop=0.2",
        "flood=0.1",
        "drop=0.1:20ms",
        "delay=0.1:20",
        "delay=0.1:fast",
        "seed=x",
        "seed=-1",
        "x" * 600,
    ],
)
def test_anything_else_is_refused(spec: str) -> None:
    with pytest.raises(InputError, match="--faults"):
        Faults.parse(spec)


def test_dice_follow_the_probabilities_and_the_seed() -> None:
    dice = FaultDice(Faults.parse("drop=0.1,corrupt=0.1,seed=1"))
    verdicts = [dice.unit(100) for _ in range(10_000)]
    drops = sum(v.drop for v in verdicts)
    corrupt = sum(v.corrupt_bit is not None for v in verdicts)
    assert 800 < drops < 1200
    assert 700 < corrupt < 1100  # of the units not dropped
    again = FaultDice(Faults.parse("drop=0.1,corrupt=0.1,seed=1"))
    assert [again.unit(100) for _ in range(10_000)] == verdicts
    clean = FaultDice(Faults())
    assert all(clean.unit(100) == CLEAN for _ in range(100))
    assert clean.powercut_after() is None
    assert not clean.misplace()


def test_powercut_and_misplace_are_per_chip() -> None:
    dice = FaultDice(Faults.parse("powercut=1,misplace=1,seed=2"))
    after = dice.powercut_after()
    assert after is not None
    assert after >= 1
    assert dice.misplace()


def test_corruption_flips_exactly_one_bit() -> None:
    data = bytes(16)
    out = apply_corruption(data, 77)
    assert sum(bin(a ^ b).count("1") for a, b in zip(data, out, strict=True)) == 1
