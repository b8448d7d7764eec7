"""Benchmark: host memory and time of `oem keygen` and `cm provision` by firmware size.

Each command runs as its own process (the CLI, as an operator runs it); its peak resident set
comes from the kernel's accounting of that process (os.wait4), its time from the wall clock.
The firmware is the only large asset; the CM provisions a few chips of one lot (one worker, so
the peak is that of the one process that holds the bundle).

    python bench/stream.py [--sizes-mib 1,64,900] [--chips 3] [--dir DIR]

The largest size the farm can hold is below 1 GiB: a chip's flash region is one SQLite blob,
and SQLite's blobs stop at 10^9 bytes (SQLITE_MAX_LENGTH); 900 MiB is the "1 GiB" case. Progress
goes to stderr; the last line printed is one JSON object, one entry per size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trustprov.demo import make_family
from trustprov.roles import icm

MiB = 1024 * 1024
CM_LOT = "bench-stream"
TRUSTPROV = [sys.executable, "-m", "trustprov"]


def write_firmware(path: Path, size: int) -> None:
    """``size`` bytes of firmware, one random MiB repeated (the AEAD's cost does not depend on
    the content, and writing a GiB of fresh randomness would dominate the run)."""
    block = os.urandom(MiB)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(block[:n])
            left -= n


def write_assets(d: Path, firmware_bytes: int) -> Path:
    d.mkdir()
    write_firmware(d / "app.bin", firmware_bytes)
    toml = d / "assets.toml"
    toml.write_text(
        '[[asset]]\nname = "app-key"\nkind = "key"\nkey-type = "aes-256"\nslot = 1\n'
        f'hex = "{os.urandom(32).hex()}"\n\n'
        '[[asset]]\nname = "app"\nkind = "firmware"\nregion = "app"\nfile = "app.bin"\n'
    )
    return toml


def run_measured(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one process running ``argv``; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - our own CLI
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[3:5])} failed ({proc.returncode}): {err.strip()}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def measure(root: Path, size_mib: int, chips: int) -> dict[str, float]:
    root.mkdir()
    family = make_family(root)
    toml = write_assets(root / "assets", size_mib * MiB)
    cm_farm = root / "cm.farm"
    icm.manufacture(family.icm, cm_farm, CM_LOT, chips, root / "lot.json")
    oem_dir = root / "oem"
    keygen_s, keygen_rss = run_measured(
        [
            *TRUSTPROV,
            "oem",
            "keygen",
            "--farm",
            str(family.oem_farm),
            "--chip",
            family.oem_uid.hex(),
            "--software",
            str(family.software),
            "--assets",
            str(toml),
            "--out",
            str(oem_dir),
        ]
    )
    _say(f"{size_mib} MiB: oem keygen {keygen_s:.2f} s, peak RSS {keygen_rss:.0f} MiB")
    provision_s, provision_rss = run_measured(
        [
            *TRUSTPROV,
            "cm",
            "provision",
            "--farm",
            str(cm_farm),
            "--lot",
            CM_LOT,
            "--software",
            str(family.software),
            "--share",
            str(oem_dir / "enc-oem-share.cose"),
            "--bundle",
            str(oem_dir / "bundle.cbor"),
            "--records",
            f"sqlite:///{root / 'records.sqlite'}",
            "--jobs",
            "1",
        ]
    )
    _say(
        f"{size_mib} MiB: cm provision of {chips} chips {provision_s:.2f} s, "
        f"peak RSS {provision_rss:.0f} MiB"
    )
    return {
        "firmware_mib": size_mib,
        "keygen_seconds": round(keygen_s, 3),
        "keygen_peak_rss_mib": round(keygen_rss, 1),
        "provision_chips": chips,
        "provision_seconds": round(provision_s, 3),
        "provision_peak_rss_mib": round(provision_rss, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes-mib", default="1,64,900", help="firmware sizes in MiB")
    ap.add_argument("--chips", type=int, default=3, help="chips provisioned per size")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes_mib.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="trustprov-stream-", dir=args.dir) as tmp:
        for size in sizes:
            results.append(measure(Path(tmp) / f"fw-{size}", size, args.chips))
    print(json.dumps({"stream": results}))
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
