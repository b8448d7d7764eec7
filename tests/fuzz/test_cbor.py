"""``cbor.decode``: the strict, size-limited CBOR decoder under every other parser."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import properties
from .engine import Fuzzer, fuzz_settings

NAMES = ["cbor.decode"]


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings()
@given(data=st.binary(max_size=properties.MAX_RANDOM))
def test_random_bytes(fuzzers: dict[str, Fuzzer], name: str, data: bytes) -> None:
    properties.random_bytes(fuzzers[name], data)


@pytest.mark.parametrize("strategy", properties.STRATEGIES)
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings()
@given(rng=st.randoms(use_true_random=False))
def test_generated(
    fuzzers: dict[str, Fuzzer], name: str, strategy: str, rng: random.Random
) -> None:
    properties.generated(fuzzers[name], rng, strategy)
