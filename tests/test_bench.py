"""Every benchmark of `make bench`, `make bench-wire` and `make bench-dashboard` runs to its end
at its smallest size and ends with one JSON object: a benchmark is only run by hand, on a quiet
machine, so without this a change elsewhere could break one unseen until then. Figures are not
checked here (speed is measured by the benchmarks themselves, never asserted in a test)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "startup.py": ["--runs", "2"],
    "provision.py": ["--chips", "40", "--workers", "1,2", "--custody-chips", "0",
                     "--authorize-uids", "0"],
    "lots.py": ["--chips", "200"],
    "reconcile.py": ["--receipts", "200"],
    "stream.py": ["--sizes-mib", "1", "--chips", "1"],
    "seal.py": ["--mib", "1", "--rounds", "1", "--no-spsdk"],
    "floor.py": ["--firmware-mib", "1", "--rounds", "2"],
    "manufacture.py": ["--chips", "50", "--rounds", "20"],
    "wire.py": ["--chips", "20", "--boards", "1", "--sockets", "2"],
    "line_rate.py": ["--rates", "3000000", "--chips", "1"],
    "dashboard.py": ["--chips", "2000", "--stations", "2", "--pending", "500", "--batch", "100",
                     "--runs", "1"],
}  # fmt: skip


def test_every_benchmark_of_the_makefile_has_a_small_run_here() -> None:
    named = set(re.findall(r"bench/(\w+\.py)", (ROOT / "Makefile").read_text()))
    assert named - {"summary.py"} == set(SMALL), "give each benchmark a small run in SMALL"


def test_the_last_line_of_make_bench_holds_every_benchmark_s_figures(tmp_path: Path) -> None:
    runs = {"provision": {"chips": 40, "ratio": 3.5}, "startup": {"startup": {"worst_ms": 61}}}
    runs["seal"] = {"seal_mib": 1, "seal_ratio": 7.4}
    for name, doc in runs.items():
        (tmp_path / f"{name}.txt").write_text(f"figures for people\n{json.dumps(doc)}\n")
    files = sorted(str(p) for p in tmp_path.iterdir())
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "summary.py"), *files],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(r.stdout) == {
        "chips": 40,
        "ratio": 3.5,
        "startup": {"worst_ms": 61},
        "seal": {"seal_mib": 1, "seal_ratio": 7.4},
    }
    (tmp_path / "floor.txt").write_text("a benchmark that died before its figures\n")
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "summary.py"), *files, str(tmp_path / "floor.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode != 0
    assert "floor.txt" in r.stderr


@pytest.mark.parametrize("script", sorted(SMALL))
def test_a_benchmark_runs_to_its_json_line(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *SMALL[script]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert isinstance(json.loads(r.stdout.strip().splitlines()[-1]), dict), r.stdout[-500:]
