"""Start-up time of the `trustprov` command, beside a bare `python -c pass` in the same run.

Each command line runs ``--runs`` times (default 20) as a fresh process; the median wall time
is printed in milliseconds beside the median of ``python -c pass`` measured in the same loop, so a
noisy shared machine shifts both. The target (issue 12) is 150 ms for `trustprov --help` and
every command that opens no records store. The last line printed is one JSON object.

    python bench/startup.py [--runs 20] [--importtime]

``--importtime`` also prints the ten slowest imports of `trustprov --help` (``python -X
importtime``), the evidence of what the root command loads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

#: the commands whose start-up is measured: the root help, each party's help, and a command of
#: each party that opens no records store (its --help: it imports what the command needs to run)
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("icm", "--help"),
    ("icm", "sign-software", "--help"),
    ("oem", "keygen", "--help"),
    ("oem", "template"),
    ("cm", "--help"),
    ("chip", "show", "--help"),
    ("inspect", "--help"),
)
TARGET_MS = 150.0


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    # argv is one of COMMANDS above, run with this Python: no outside input
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    return (time.perf_counter() - start) * 1000


def measure(runs: int) -> dict[str, object]:
    python = sys.executable
    base: list[float] = []
    times: dict[tuple[str, ...], list[float]] = {c: [] for c in COMMANDS}
    for _ in range(runs):  # interleaved, so a burst of load hits every command alike
        base.append(_run([python, "-c", "pass"]))
        for c in COMMANDS:
            times[c].append(_run([python, "-m", "trustprov", *c]))
    medians = {" ".join(c): round(statistics.median(t), 1) for c, t in times.items()}
    return {
        "runs": runs,
        "python_pass_ms": round(statistics.median(base), 1),
        "median_ms": medians,
        "worst_ms": max(medians.values()),
        "target_ms": TARGET_MS,
    }


def slowest_imports(count: int = 10) -> list[tuple[int, str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trustprov", "--help"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs)
    print(f"start-up, median of {args.runs} runs (python -c pass: {result['python_pass_ms']} ms):")
    for name, ms in result["median_ms"].items():  # type: ignore[attr-defined]  # a dict, built above
        print(f"  trustprov {name:<28} {ms:>7.1f} ms")
    if args.importtime:
        print("slowest imports of `trustprov --help` (cumulative µs):")
        for us, name in slowest_imports():
            print(f"  {us:>8} {name}")
    print(json.dumps({"startup": result}, sort_keys=True))


if __name__ == "__main__":
    main()
