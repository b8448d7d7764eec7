"""The chip side of the link as a whole: ``ChipPort(chip).handle(request)``.

For any request bytes, in any state of the chip (blank, burned, manufactured, booted, in the
middle of a CM session or of the OEM's sealing, provisioned, locked), the port answers with a
response that ``decode_response`` accepts: a result or a refusal, never ``internal`` (an
unexpected exception inside the chip), and a chip with no session open holds no RAM. The first
byte of each input picks the scenario (`chips.ChipLab`); the rest is the request.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import properties
from .engine import Fuzzer, check, fuzz_settings

NAME = "ChipPort.handle"


def test_every_scenario_takes_its_valid_requests(fuzzers: dict[str, Fuzzer]) -> None:
    """The mutations start from requests a chip accepts in their scenario."""
    target = fuzzers[NAME].target
    assert target.seed_scenarios is not None
    outcomes = [
        check(target, bytes([s]) + r)
        for s, r in zip(target.seed_scenarios, target.seeds, strict=True)
    ]
    assert set(range(target.scenarios)) >= set(target.seed_scenarios)
    # all accepted but cm.begin on a provisioned chip: the same epoch again is stale
    assert outcomes.count("ok") == len(outcomes) - 1, outcomes


@pytest.mark.parametrize("scenario", range(14))
@fuzz_settings()
@given(data=st.binary(max_size=properties.MAX_RANDOM))
def test_random_bytes(fuzzers: dict[str, Fuzzer], scenario: int, data: bytes) -> None:
    properties.random_bytes(fuzzers[NAME], bytes([scenario]) + data)


@pytest.mark.parametrize("strategy", properties.STRATEGIES)
@fuzz_settings()
@given(rng=st.randoms(use_true_random=False))
def test_generated(fuzzers: dict[str, Fuzzer], strategy: str, rng: random.Random) -> None:
    properties.generated(fuzzers[NAME], rng, strategy)
