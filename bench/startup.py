"""Start-up time of every `trustprov` command, beside its floor measured in the same run.

The floor is what any Python command line pays before its own work: a bare ``python -c pass``
plus ``import trustprov`` (the package's ``__init__``), measured as one process,
``python -c "import trustprov"``. Each command line runs ``--runs`` times (default 20) as a
fresh process, interleaved with the floor, so a burst of load on a shared machine hits every
figure alike; the median wall time is printed in milliseconds beside the floor's, as a ratio.

Measured: the ``--help`` of every command of the tree (walked from the CLI itself, so a new
command is measured without a change here; the target of issue 12 is 150 ms), and the commands
that open a records store, a chip farm or the receipts, run for real against a lot of two chips
that `trustprov demo` makes in a temporary directory first (`STORE_COMMANDS`; issue 24's target
is 300 ms for every command, these included). `line dashboard` serves until stopped and `cm
provision` changes its lot: their --help is measured, their store is opened as `cm report` opens
it. The last line printed is one JSON object.

    python bench/startup.py [--runs 20] [--importtime]

``--importtime`` also prints the ten slowest imports of `trustprov --help` and of `trustprov cm
report` on the demo's store (``python -X importtime``), the evidence of what each loads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click

from trustprov.cli.main import cli

TARGET_MS = 150.0
#: commands that open a records store, a chip farm or a receipts file, run for real ({d}: the
#: demo's directory); some end in a one-line error on purpose (a store that is not there)
STORE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("cm", "report", "--farm", "{d}/cm/chips.farm", "--json"),
    ("cm", "report", "--records", "sqlite:///{d}/cm/records.sqlite", "--lot", "LOT-0001"),
    ("cm", "report", "--records", "sqlite:///{d}/none.sqlite"),
    ("cm", "receipts", "--farm", "{d}/cm/chips.farm", "--format", "jsonl", "--out", "-"),
    ("icm", "report", "--records", "sqlite:///{d}/cm/records.sqlite", "--json"),
    ("chip", "show", "--farm", "{d}/cm/chips.farm", "--lot", "LOT-0001", "--json"),
    ("inspect", "{d}/cm/records.sqlite", "--json"),
    ("inspect", "{d}/cm/chips.farm", "--json"),
    (
        "oem",
        "reconcile",
        "--ca",
        "{d}/icm/device-ca.pem",
        "--bundle",
        "{d}/oem/bundle.cbor",
        "--receipts",
        "{d}/cm/receipts.cbor",
        "--jobs",
        "1",
        "--json",
    ),
)
STORE_TARGET_MS = 300.0
FLOOR = ("-c", "import trustprov")


def every_command(
    group: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """The path of every command of the tree, groups included (each has its own --help)."""
    yield path
    if isinstance(group, click.Group):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None:
                yield from every_command(command, (*path, name))


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    # argv: this Python, and a command line of this file's lists: no outside input
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    return (time.perf_counter() - start) * 1000


def measure(runs: int, demo: Path) -> dict[str, object]:
    python = sys.executable
    floor: list[float] = []
    helps = [(*c, "--help") for c in every_command()]
    store = [tuple(a.format(d=demo) for a in c) for c in STORE_COMMANDS]
    times: dict[tuple[str, ...], list[float]] = {c: [] for c in (*helps, *store)}
    for _ in range(runs):  # interleaved, so a burst of load hits every command alike
        floor.append(_run([python, *FLOOR]))
        for c, samples in times.items():
            samples.append(_run([python, "-m", "trustprov", *c]))
    floor_ms = statistics.median(floor)
    medians = {c: round(statistics.median(t), 1) for c, t in times.items()}
    shown = dict(zip(store, (" ".join(c) for c in STORE_COMMANDS), strict=True))
    help_ms = {" ".join(c): medians[c] for c in helps}
    store_ms = {shown[c]: medians[c] for c in store}
    return {
        "runs": runs,
        "floor_ms": round(floor_ms, 1),
        "median_ms": help_ms,
        "ratio": {k: round(v / floor_ms, 2) for k, v in help_ms.items()},
        "worst_ms": max(help_ms.values()),
        "target_ms": TARGET_MS,
        "store_median_ms": store_ms,
        "store_ratio": {k: round(v / floor_ms, 2) for k, v in store_ms.items()},
        "worst_store_ms": max(store_ms.values()),
        "store_target_ms": STORE_TARGET_MS,
    }


def make_demo(d: Path) -> Path:
    """A lot of two provisioned chips with its records and receipts, for `STORE_COMMANDS`."""
    out = d / "demo"
    subprocess.run(  # noqa: S603 - this Python, fixed arguments
        [sys.executable, "-m", "trustprov", "demo", "--chips", "2", "--out", str(out), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def slowest_imports(argv: list[str], count: int = 10) -> list[tuple[int, str]]:
    proc = subprocess.run(  # noqa: S603 - this Python, a command line of this file
        [sys.executable, "-X", "importtime", "-m", "trustprov", *argv],
        check=False,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:count]


def _table(title: str, ms: dict[str, float], ratio: dict[str, float], target: float) -> None:
    print(f"{title} (target {target:.0f} ms):")
    width = max(len(k) for k in ms)
    for name, value in ms.items():
        mark = "" if value <= target else "  above target"
        print(f"  trustprov {name:<{width}} {value:>7.1f} ms  {ratio[name]:>5.2f} x floor{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustprov-startup-") as tmp:
        demo = make_demo(Path(tmp))
        result = measure(args.runs, demo)
        report = ["cm", "report", "--farm", f"{demo}/cm/chips.farm", "--json"]
        imports = {"--help": slowest_imports(["--help"]), "cm report": slowest_imports(report)}
    print(
        f"start-up, median of {args.runs} runs; floor (python -c pass + import trustprov): "
        f"{result['floor_ms']} ms"
    )
    _table("--help of every command", result["median_ms"], result["ratio"], TARGET_MS)  # type: ignore[arg-type]  # dicts, built above
    _table(
        "opening a records store, a farm or receipts",
        result["store_median_ms"],  # type: ignore[arg-type]  # a dict, built above
        result["store_ratio"],  # type: ignore[arg-type]  # a dict, built above
        STORE_TARGET_MS,
    )
    if args.importtime:
        for name, rows in imports.items():
            print(f"slowest imports of `trustprov {name}` (cumulative µs):")
            for us, module in rows:
                print(f"  {us:>8} {module}")
    print(json.dumps({"startup": result}, sort_keys=True))


if __name__ == "__main__":
    main()
