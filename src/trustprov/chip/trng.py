"""The chip's true random number generator, injectable so that tests are deterministic."""

from __future__ import annotations

import os
import random
from typing import Protocol


class Trng(Protocol):
    def random(self, n: int) -> bytes: ...


class SystemTrng:
    """The operating system's CSPRNG: the default for every chip."""

    def random(self, n: int) -> bytes:
        return os.urandom(n)


class DeterministicTrng:
    """A reproducible stream for tests and vectors only. NOT random: never use it for real chips."""

    def __init__(self, seed: int | bytes | str) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - deliberately predictable, for tests

    def random(self, n: int) -> bytes:
        return self._rng.randbytes(n)
