"""Fuzz every parser of untrusted bytes with 100,000 inputs each (``make fuzz``).

The targets, generators and oracle are those of the property tests in ``tests/fuzz`` (see
``tests/fuzz/engine.py``), driven here by a seeded ``random.Random`` instead of Hypothesis, which
is far faster per input. Each target gets random bytes, random CBOR / JSON / TOML values and
mutations of valid artifacts (bit flips, truncation, insertion, splices of two artifacts, CBOR
sub-items replaced by other types, non-canonical encodings...) in equal parts. Every input runs
under a watchdog: one that takes over ``--time-limit`` seconds counts as a hang. The chip
(``ChipPort.handle``) may raise nothing at all: it must answer every request, in every state,
with a well-formed response that is not ``internal``, and hold no RAM when no session is open.

One target per worker process (``--jobs``, default: every core), each with its own small world
of chips and artifacts in a temporary directory. Prints one line per target, the totals and a
final JSON line; exits 1 if any input raised anything but the target's typed errors (then the
target, the exception and a hex prefix of the input are printed, and the whole input is saved to
``--crash-dir`` for ``--replay``). Reports the memory each parser cost: the peak traced by
tracemalloc over one input in ``TRACE_EVERY`` (tracing slows an input several times, so not
all), and how far the target raised its worker's peak RSS (ru_maxrss) beyond what the worker
had reached before it. About 80 s on two cores.

    .venv/bin/python fuzz/run.py                          # 100,000 inputs per target
    .venv/bin/python fuzz/run.py --inputs 2000 --only cbor.decode Bundle.from_bytes
    .venv/bin/python fuzz/run.py --replay CRASH_FILE --target Bundle.from_bytes
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import re
import resource
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the harness lives in tests/fuzz (package "fuzz")

from fuzz import corpus, engine, targets  # noqa: E402 - needs the path above

#: slowest first, so that two workers finish together
ORDER = (
    "ChipPort.handle",
    "assets.load",
    "LotManifest.from_json",
    "Bundle.from_bytes",
    "BundleIndex.read",
    "SignedManifest.from_bytes",
    "SignedSoftware.from_bytes",
    "cose.decode[18]",
    "cbor.decode",
    "Manifest.from_payload",
    "cose.decode[17]",
    "decode_request",
    "SealedValue.from_bytes",
    "cose.decode[16]",
    "decode_response",
    "ImmutableMemory.from_bytes",
)
KEEP = 3  # failing inputs kept (printed and saved) per target and kind of failure
MEMORY_LIMIT = 4 << 30  # per worker: a parser that allocates without bound fails, not the host
TRACE_EVERY = 50  # inputs run under tracemalloc: one in this many

_fuzzers: dict[str, engine.Fuzzer] = {}


def _init_worker(workdir: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    # the chip logs each internal fault; this run reports them itself, with the input
    logging.getLogger("trustprov.link.port").setLevel(logging.CRITICAL)
    world = Path(tempfile.mkdtemp(prefix="world-", dir=workdir))
    _fuzzers.update(targets.build_fuzzers(corpus.build_corpus(world / "world")))


def _traceback_summary(e: BaseException) -> list[str]:
    """The last frames of what the target raised (none for a failed check of the harness's)."""
    cause = e.__cause__ if isinstance(e, engine.Unexpected) else e
    if cause is None:
        return []
    frames = traceback.extract_tb(cause.__traceback__)[-4:]
    lines = [f"{Path(f.filename).name}:{f.lineno} in {f.name}: {f.line}" for f in frames]
    return [*lines, f"{type(cause).__name__}: {str(cause)[:200]}"]


def _example(
    kind: str,
    strategy: str,
    data: bytes,
    e: BaseException,
    *,
    detail: str = "",
    path: Path | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "strategy": strategy,
        "detail": detail,
        "size": len(data),
        "hex": data[:96].hex(),
        "file": str(path),
        "traceback": _traceback_summary(e),
    }


def fuzz_target(task: tuple[str, int, int, float, str]) -> dict[str, Any]:
    name, inputs, seed, time_limit, crash_dir = task
    fuzzer = _fuzzers[name]
    rng = random.Random(f"{seed}/{name}")  # noqa: S311 - fuzzing, not cryptography
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    traced_peak = 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    with engine.watchdog_installed():
        for i in range(inputs):
            strategy = engine.STRATEGIES[i % len(engine.STRATEGIES)]
            try:
                data = fuzzer.generate(rng, strategy)
            except Exception as e:  # noqa: BLE001 - a harness bug must not end the whole run
                failures[f"harness error {type(e).__name__}"] += 1
                if len(kept) < 20:
                    kept.append(_example(f"harness error {type(e).__name__}", strategy, b"", e))
                continue
            traced = i % TRACE_EVERY == 0
            if traced:
                tracemalloc.start()
            try:
                outcomes[engine.run_one(fuzzer.target, data, time_limit)] += 1
            except engine.Unexpected as e:
                failures[e.kind] += 1
                if failures[e.kind] <= KEEP:
                    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{name}-{e.kind}").strip("-")
                    path = Path(crash_dir) / f"{slug}-{failures[e.kind]}.bin"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    kept.append(_example(e.kind, strategy, data, e, detail=e.detail, path=path))
            finally:
                if traced:
                    traced_peak = max(traced_peak, tracemalloc.get_traced_memory()[1])
                    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "target": name,
        "inputs": inputs,
        "accepted": outcomes["ok"],
        "refused": outcomes["refused"],
        "unexpected": sum(failures.values()),
        "failures": dict(failures),
        "examples": kept,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_traced_kib": round(traced_peak / 1024),
        "peak_rss_rise_mib": round((rss_after - rss_before) / 1024, 1),
    }


def _report(r: dict[str, Any]) -> None:
    print(
        f"{r['target']}: {r['inputs']} inputs, {r['unexpected']} unexpected exceptions, "
        f"{r['seconds']} s (accepted {r['accepted']}, refused {r['refused']}), "
        f"peak memory {r['peak_traced_kib']} KiB traced, worker RSS +{r['peak_rss_rise_mib']} MiB",
        flush=True,
    )
    for ex in r["examples"]:
        print(f"    UNEXPECTED {ex['kind']} ({ex['strategy']}): {ex['detail']}")
        print(f"      input ({ex['size']} bytes, saved to {ex['file']}): {ex['hex']}...")
        for line in ex["traceback"]:
            print(f"      {line}")


def replay(name: str, path: Path) -> int:
    data = path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="trustprov-fuzz-") as workdir:
        _init_worker(workdir)
        with engine.watchdog_installed():
            try:
                print(f"{name}: {engine.run_one(_fuzzers[name].target, data)}")
            except engine.Unexpected as e:
                print(e)
                traceback.print_exception(e.__cause__ or e)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=100_000, help="inputs per target")
    p.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--only", nargs="+", choices=ORDER, help="fuzz only these targets")
    p.add_argument("--time-limit", type=float, default=engine.TIME_LIMIT, help="per input, s")
    p.add_argument("--crash-dir", type=Path, default=None)
    p.add_argument("--replay", type=Path, help="run one saved input (with --target)")
    p.add_argument("--target", choices=ORDER)
    args = p.parse_args(argv)
    if args.replay:
        if not args.target:
            p.error("--replay needs --target")
        return replay(args.target, args.replay)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    crash_dir = args.crash_dir or Path(tempfile.gettempdir()) / f"trustprov-fuzz-crashes-{seed}"
    names = [n for n in ORDER if not args.only or n in args.only]
    jobs = max(1, min(args.jobs, len(names)))
    print(
        f"fuzzing {len(names)} targets, {args.inputs} inputs each, seed {seed}, "
        f"{jobs} processes, {args.time_limit} s per input at most",
        flush=True,
    )
    start = time.perf_counter()
    tasks = [(n, args.inputs, seed, args.time_limit, str(crash_dir)) for n in names]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="trustprov-fuzz-") as workdir,
        multiprocessing.get_context("fork").Pool(
            jobs, initializer=_init_worker, initargs=(workdir,)
        ) as pool,
    ):
        for r in pool.imap_unordered(fuzz_target, tasks):
            _report(r)
            results.append(r)
    wall = time.perf_counter() - start
    results.sort(key=lambda r: names.index(r["target"]))
    total = sum(r["inputs"] for r in results)
    unexpected = sum(r["unexpected"] for r in results)
    print(
        f"total: {total} inputs over {len(results)} targets, {unexpected} unexpected exceptions, "
        f"{wall:.1f} s wall on {jobs} processes (seed {seed})"
    )
    summary = {
        "seed": seed,
        "jobs": jobs,
        "wall_seconds": round(wall, 1),
        "total_inputs": total,
        "total_unexpected": unexpected,
        "crash_dir": str(crash_dir) if unexpected else None,
        "targets": {
            r["target"]: {
                k: r[k]
                for k in (
                    "inputs",
                    "accepted",
                    "refused",
                    "unexpected",
                    "failures",
                    "seconds",
                    "peak_traced_kib",
                    "peak_rss_rise_mib",
                )
            }
            for r in results
        },
    }
    print(json.dumps(summary, sort_keys=True))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
