"""Start-up time of the `trustprov` command, beside a bare `python -c pass` in the same run.

Each command line runs ``--runs`` times (default 20) as a fresh process; the median wall time
is printed in milliseconds beside the median of ``python -c pass`` measured in the same loop, so a
noisy shared machine shifts both. The target (issue 12) is 150 ms for `trustprov --help` and
every command that opens no records store; issue 24's is 300 ms for every command, those that
open a records store or a chip farm included (`STORE_COMMANDS`, run for real against a lot of
two chips that `trustprov demo` makes in a temporary directory first). The last line printed
is one JSON object.

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
import tempfile
import time
from pathlib import Path

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
#: commands that open a records store or a chip farm, run for real ({d}: the demo's directory)
STORE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("cm", "report", "--farm", "{d}/cm/chips.farm", "--json"),
    ("cm", "receipts", "--farm", "{d}/cm/chips.farm", "--format", "jsonl", "--out", "-"),
    ("chip", "show", "--farm", "{d}/cm/chips.farm", "--lot", "LOT-0001", "--json"),
    ("inspect", "{d}/cm/records.sqlite", "--json"),
    ("inspect", "{d}/cm/chips.farm", "--json"),
)
STORE_TARGET_MS = 300.0


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    # argv is one of COMMANDS above, run with this Python: no outside input
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    return (time.perf_counter() - start) * 1000


def measure(runs: int, demo: Path) -> dict[str, object]:
    python = sys.executable
    base: list[float] = []
    store = [tuple(a.format(d=demo) for a in c) for c in STORE_COMMANDS]
    times: dict[tuple[str, ...], list[float]] = {c: [] for c in (*COMMANDS, *store)}
    for _ in range(runs):  # interleaved, so a burst of load hits every command alike
        base.append(_run([python, "-c", "pass"]))
        for c, samples in times.items():
            samples.append(_run([python, "-m", "trustprov", *c]))
    medians = {" ".join(c): round(statistics.median(t), 1) for c, t in times.items()}
    shown = {" ".join(s): " ".join(c) for s, c in zip(store, STORE_COMMANDS, strict=True)}
    store_ms = {shown[k]: v for k, v in medians.items() if k in shown}
    help_ms = {k: v for k, v in medians.items() if k not in shown}
    return {
        "runs": runs,
        "python_pass_ms": round(statistics.median(base), 1),
        "median_ms": help_ms,
        "worst_ms": max(help_ms.values()),
        "target_ms": TARGET_MS,
        "store_median_ms": store_ms,
        "worst_store_ms": max(store_ms.values()),
        "store_target_ms": STORE_TARGET_MS,
    }


def make_demo(d: Path) -> Path:
    """A lot of two provisioned chips with its records, for `STORE_COMMANDS`."""
    out = d / "demo"
    subprocess.run(  # noqa: S603 - this Python, fixed arguments
        [sys.executable, "-m", "trustprov", "demo", "--chips", "2", "--out", str(out), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


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
    with tempfile.TemporaryDirectory(prefix="trustprov-startup-") as tmp:
        result = measure(args.runs, make_demo(Path(tmp)))
    print(f"start-up, median of {args.runs} runs (python -c pass: {result['python_pass_ms']} ms):")
    for name, ms in result["median_ms"].items():  # type: ignore[attr-defined]  # a dict, built above
        print(f"  trustprov {name:<28} {ms:>7.1f} ms")
    print(f"opening a records store or a farm (target {STORE_TARGET_MS:.0f} ms):")
    for name, ms in result["store_median_ms"].items():  # type: ignore[attr-defined]  # a dict
        print(f"  trustprov {name:<62} {ms:>7.1f} ms")
    if args.importtime:
        print("slowest imports of `trustprov --help` (cumulative µs):")
        for us, name in slowest_imports():
            print(f"  {us:>8} {name}")
    print(json.dumps({"startup": result}, sort_keys=True))


if __name__ == "__main__":
    main()
