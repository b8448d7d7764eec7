"""The two properties every target is tested with, over Hypothesis inputs.

``random_bytes``: Hypothesis's own byte strings (they shrink to a minimal failing input).
``generated``: one input of a `STRATEGIES` strategy, made by the engine from Hypothesis's
``st.randoms()``: random CBOR/JSON/TOML values and mutations of valid artifacts (bit flips,
truncation, insertion, splices of two artifacts, sub-items replaced by other types...). Every
random choice is a Hypothesis choice, so these shrink too.
"""

from __future__ import annotations

import random

from hypothesis import note

from .engine import MAX_RANDOM, STRATEGIES, Fuzzer, check

__all__ = ["MAX_RANDOM", "STRATEGIES", "generated", "random_bytes"]


def _note(data: bytes) -> None:
    shown = data[:2048].hex()
    note(f"input ({len(data)} bytes): {shown}{'...' if len(data) > 2048 else ''}")


def random_bytes(fuzzer: Fuzzer, data: bytes) -> None:
    _note(data)
    check(fuzzer.target, data)


def generated(fuzzer: Fuzzer, rng: random.Random, strategy: str) -> None:
    data = fuzzer.generate(rng, strategy)
    _note(data)
    check(fuzzer.target, data)
