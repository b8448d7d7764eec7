"""Building and running the C chip (chip-c/) from the Python tests.

The C toolchain (a C compiler, make, Debian's libmbedtls-dev, libsodium-dev) is optional on a
developer's machine: without it these tests skip with the reason, except in CI (``CI`` set),
where they fail, so CI always runs them (.ci/run installs the packages).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from boards import ReadyProcess  # tests/boards.py

ROOT = Path(__file__).resolve().parents[2]
CHIP_C = ROOT / "chip-c"
BUILD = CHIP_C / "build"
PROGRAM = BUILD / "trustprov-chip"
TEST_PROGRAM = BUILD / "test" / "trustprov-chip"  # with the test TRNG and --test-code
SOFTWARE = BUILD / "provisioning-software.bin"
READY_TIMEOUT = 10.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_toolchain() -> str | None:
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH"
    for header in ("/usr/include/mbedtls/gcm.h", "/usr/include/sodium.h"):
        if not Path(header).exists():
            return f"no {header} (Debian: libmbedtls-dev, libsodium-dev)"
    return None


_built: list[bool] = []


def build() -> None:
    """`make -C chip-c` once per test session; skips (fails under CI) without the toolchain."""
    if _built:
        return
    missing = _missing_toolchain()
    if missing is not None:
        if _in_ci():
            pytest.fail(f"{missing} (CI is set: the C chip's tests must run)")
        pytest.skip(f"the C chip cannot be built here: {missing}")
    BUILD.mkdir(exist_ok=True)
    with (BUILD / ".make.lock").open("w") as lock:
        # test processes run in parallel (pytest-xdist): one make at a time in chip-c/, and a
        # process that waited finds the programs built
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            ["make", "-s", "-C", str(CHIP_C)], capture_output=True, text=True, check=False
        )
    assert done.returncode == 0, done.stdout + done.stderr
    _built.append(True)


class ChipProcess(ReadyProcess):
    """One C chip as its own process; `port` is the address it printed when ready."""

    def __init__(self, program: Path, args: list[str]) -> None:
        super().__init__([str(program), *args], "the C chip", READY_TIMEOUT)

    @property
    def port(self) -> str:
        return str(self.ready["port"])
