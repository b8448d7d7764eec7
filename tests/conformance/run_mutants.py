"""`make conformance-mutants`: the whole conformance suite against every broken chip of
`mutants.py`, one fresh chip each. A broken chip is detected when the case that names its
defect fails. The last line is "N of M broken chips detected"; the exit status is 0 only when
every one was.

    python tests/conformance/run_mutants.py [--fast] [--mutant NAME ...]

``--fast`` runs only each mutant's own case (and what it needs first), as `make test` does.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `conformance` package

from conformance.broken import blank_farm, serve
from conformance.mutants import MUTANTS, Mutant, selection
from trustprov.conformance.cases import CASES
from trustprov.conformance.family import TestFamily
from trustprov.conformance.suite import Context, Result, run_cases

IDLE = 0.3


def run(mutant: Mutant, workdir: Path, *, fast: bool = False) -> list[Result]:
    """The suite (or its fast selection) against a fresh chip with ``mutant``'s defect."""
    farm = blank_farm(workdir / f"{mutant.name}.farm")
    with serve(
        farm, mutant.endpoint, mutant.port, idle_timeout=IDLE, patches=mutant.patches
    ) as address:
        family = TestFamily.load().for_suite(mutant.suite)
        ctx = Context(address, family=family, idle_timeout=IDLE, power_cycle=address.power_cycle)
        return run_cases(ctx, CASES, selection(mutant) if fast else None)


def detected(mutant: Mutant, results: list[Result]) -> bool:
    return any(r.name == mutant.case and not r.passed for r in results)


def _one(name: str, fast: bool) -> tuple[str, bool, list[str], float]:
    """Run one mutant on a fresh chip of its own: (name, detected, failed cases, seconds)."""
    mutant = MUTANTS[name]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        results = run(mutant, Path(tmp), fast=fast)
    failed = [r.name for r in results if not r.passed]
    return name, detected(mutant, results), failed, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="each mutant's own case only")
    parser.add_argument("--mutant", action="append", choices=sorted(MUTANTS), default=None)
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (processes)")
    args = parser.parse_args(argv)
    names = args.mutant or list(MUTANTS)
    caught = 0
    with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs)) as pool:
        runs = pool.map(_one, names, [args.fast] * len(names))
        for name, found, failed, seconds in runs:
            case = MUTANTS[name].case
            if found:
                caught += 1
                others = [f for f in failed if f != case]
                also = f" (also {', '.join(others)})" if others else ""
                print(f"detected  {name:32} by {case}{also}  {seconds:.1f} s", flush=True)
            else:
                why = f"; failed instead: {', '.join(failed)}" if failed else ""
                print(f"MISSED    {name:32} {case} passed{why}", flush=True)
    print(f"{caught} of {len(names)} broken chips detected")
    return 0 if caught == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
