"""The chip's RAM budget: the firmware's working set must fit (64 KiB by default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from trustprov.errors import ChipRefused
from trustprov.formats.budget import CHIP_RAM

DEFAULT_RAM = CHIP_RAM  # the number the OEM's tools check bundles against


class Ram:
    def __init__(self, budget: int = DEFAULT_RAM) -> None:
        self.budget = budget
        self.used = 0
        self.peak = 0

    def reserve(self, n: int) -> None:
        if self.used + n > self.budget:
            raise ChipRefused(
                f"working set of {self.used + n} bytes exceeds the {self.budget} bytes of RAM",
                code="ram-budget",
            )
        self.used += n
        self.peak = max(self.peak, self.used)

    def release(self, n: int) -> None:
        self.used = max(0, self.used - n)

    @contextmanager
    def hold(self, n: int) -> Iterator[None]:
        self.reserve(n)
        try:
            yield
        finally:
            self.release(n)
