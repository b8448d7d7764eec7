"""Targets, input generation, the oracle and the hang watchdog, shared by the property tests and
by ``fuzz/run.py``.

A `Target` is one parser of untrusted bytes: a function of ``bytes``, the exceptions it may raise
(`TrustprovError` subclasses), its valid seeds and their flavour. `Fuzzer.generate` makes one
input with one of `STRATEGIES`; `run_one` feeds it to the target under a watchdog and returns
``"ok"`` (parsed) or ``"refused"`` (an allowed error), or raises `Unexpected` for anything else:
another exception, a hang or an input that took longer than the time limit.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings

from . import mutate
from .mutate import Generator, Rng, Vocabulary

EXAMPLES_ENV = "TRUSTPROV_FUZZ_EXAMPLES"
TIME_LIMIT_ENV = "TRUSTPROV_FUZZ_TIME_LIMIT"
DEFAULT_EXAMPLES = 150
#: no single input may take longer than this (seconds), in any run
TIME_LIMIT = float(os.environ.get(TIME_LIMIT_ENV, "2.0"))
#: the largest input any generator hands a parser
MAX_INPUT = 1 << 20
#: the largest random byte string
MAX_RANDOM = 4096

STRATEGIES = (
    "random-bytes",
    "random-value",
    "byte-mutation",
    "structure-mutation",
    "type-confusion",
    "splice",
    "stacked",
)
#: the strategies that start from valid artifacts
MUTATIONS = STRATEGIES[2:]


def fuzz_settings() -> settings:
    """~150 examples per test by default (``make test``); ``TRUSTPROV_FUZZ_EXAMPLES=N`` for a long
    run, which also drops the example database so that every run explores afresh."""
    common: dict[str, Any] = {
        "deadline": None,
        "derandomize": False,
        "suppress_health_check": [
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    }
    n = os.environ.get(EXAMPLES_ENV)
    if n:
        return settings(max_examples=int(n), database=None, **common)
    return settings(max_examples=DEFAULT_EXAMPLES, **common)


# -- the watchdog -------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised into the parser by SIGALRM. A BaseException, so that no ``except Exception`` of
    the code under test can swallow it."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


@contextmanager
def watchdog_installed() -> Iterator[None]:
    """SIGALRM raises `Hang` while inside; arm it per input with `arm`/`disarm`."""
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def arm(seconds: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, seconds)


def disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


# -- targets --------------------------------------------------------------------------------------
class Unexpected(AssertionError):
    """The target did something a parser of untrusted bytes must never do."""

    def __init__(self, target: str, kind: str, data: bytes, detail: str = "") -> None:
        self.target, self.kind, self.data, self.detail = target, kind, data, detail
        super().__init__(
            f"{target}: {kind}{f' ({detail})' if detail else ''} on {len(data)} bytes: "
            f"{data[:64].hex()}{'...' if len(data) > 64 else ''}"
        )


@dataclass
class Target:
    name: str
    parse: Callable[[bytes], Any]
    seeds: Sequence[bytes]
    flavor: str = "cbor"  # "cbor" | "json" | "toml"
    allowed: tuple[type[BaseException], ...] = ()
    #: what a successful parse returns
    result_type: type | tuple[type, ...] = object
    #: the scenario of each seed, for targets whose input starts with a scenario byte (the chip)
    seed_scenarios: Sequence[int] | None = None
    scenarios: int = 0
    #: applied to half the mutated inputs: e.g. re-authenticates what a mutation broke
    fixup: Callable[[Rng, bytes], bytes] | None = None

    def __repr__(self) -> str:
        return f"Target({self.name!r})"


def run_one(target: Target, data: bytes, time_limit: float = TIME_LIMIT) -> str:
    """``"ok"`` or ``"refused"``; raises `Unexpected` for any other outcome. The watchdog must
    be installed (`watchdog_installed`)."""
    start = time.perf_counter()
    try:
        arm(time_limit)
        try:
            result = target.parse(data)
        finally:
            disarm()
    except Hang:
        raise Unexpected(target.name, "hang", data, f"over {time_limit} s") from None
    except target.allowed:
        outcome = "refused"
    except (KeyboardInterrupt, SystemExit, Unexpected):
        raise
    except BaseException as e:
        raise Unexpected(target.name, type(e).__name__, data, str(e)[:200]) from e
    else:
        outcome = "ok"
        if not isinstance(result, target.result_type):
            raise Unexpected(target.name, "wrong result type", data, type(result).__name__)
    elapsed = time.perf_counter() - start
    if elapsed > time_limit:
        raise Unexpected(target.name, "slow", data, f"{elapsed:.2f} s")
    return outcome


def check(target: Target, data: bytes) -> str:
    """`run_one` with the watchdog installed around it (for the property tests)."""
    with watchdog_installed():
        return run_one(target, data)


# -- generation -----------------------------------------------------------------------------------
@dataclass
class Fuzzer:
    """Input generation for one target: its seeds as bytes and trees, and the splice pool (the
    nodes of every valid artifact of the same flavour)."""

    target: Target
    pool_seeds: Sequence[bytes]
    trees: list[Any] = field(init=False)
    pool: list[Any] = field(init=False)
    gen: Generator = field(init=False)

    def __repr__(self) -> str:
        return f"Fuzzer({self.target.name!r})"

    def __post_init__(self) -> None:
        flavor = self.target.flavor
        self.trees = [mutate.parse_tree(s, flavor) for s in self.target.seeds]
        pool_trees = [mutate.parse_tree(s, flavor) for s in self.pool_seeds]
        self.pool = []
        for t in [*self.trees, *pool_trees]:
            self.pool.extend(mutate.all_nodes(t, limit=400))
        self.gen = Generator(flavor, Vocabulary.of([*self.trees, *pool_trees]))

    def generate(self, rng: Rng, strategy: str | None = None) -> bytes:
        strategy = strategy or STRATEGIES[rng.randint(0, len(STRATEGIES) - 1)]
        t = self.target
        seed = rng.randint(0, len(t.seeds) - 1)
        data = self._payload(rng, strategy, seed)
        if t.fixup is not None and strategy in MUTATIONS and rng.randint(0, 1):
            data = t.fixup(rng, data)
        if len(data) > MAX_INPUT:
            data = data[:MAX_INPUT]
        if t.scenarios:
            if strategy in MUTATIONS and t.seed_scenarios and rng.randint(0, 3):
                scenario = t.seed_scenarios[seed]
            else:
                scenario = rng.randint(0, t.scenarios - 1)
            data = bytes([scenario]) + data
        return data

    def _payload(self, rng: Rng, strategy: str, seed: int) -> bytes:
        t, flavor = self.target, self.target.flavor
        if strategy == "random-bytes":
            size = rng.randint(0, 24) if rng.randint(0, 2) == 0 else rng.randint(0, MAX_RANDOM)
            return mutate.random_bytes(rng, size) if size > 256 else rng.randbytes(size)
        if strategy == "random-value":
            value = self.gen.value(rng, budget=rng.randint(1, 48))
            return mutate.serialise(rng, value, flavor)
        other = rng.choice(self.pool_seeds or t.seeds)
        if strategy == "splice" and rng.randint(0, 1):  # the bytes of two artifacts
            return mutate.splice_bytes(rng, t.seeds[seed], other)
        if strategy == "byte-mutation":
            data = t.seeds[seed]
            for _ in range(rng.randint(1, 4)):
                data = mutate.byte_mutation(rng, data, other)
            return data
        tree = self.trees[seed]
        if strategy == "type-confusion":
            path = mutate.pick_path(rng, tree)
            tree = mutate.replace_at(tree, path, lambda n: self.gen.of_type_other_than(rng, n))
        elif strategy == "splice":  # a sub-item of another artifact in place of one of this
            path = mutate.pick_path(rng, tree, stop=3)
            tree = mutate.replace_at(tree, path, lambda _: rng.choice(self.pool))
        else:  # structure-mutation, stacked
            for _ in range(rng.randint(1, 3)):
                path = mutate.pick_path(rng, tree)
                tree = mutate.replace_at(
                    tree, path, lambda n: mutate.mutate_node(rng, n, self.gen, self.pool)
                )
        data = mutate.serialise(rng, tree, flavor)
        if strategy == "stacked":
            data = mutate.byte_mutation(rng, data, other)
        return data
