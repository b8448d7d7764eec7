"""The benchmarks' one way to time a floor: the median of many calls, in microseconds.

A median, not a mean or a minimum: one slow call (another process taking the core) does not move
it, and one fast outlier does not flatter it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_us(fn: Callable[[], object], rounds: int) -> float:
    """Median microseconds of ``rounds`` calls of ``fn``."""
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6
