"""NXP SPSDK's `nxpimage sb31 export` of a firmware, timed as one process (bench/seal.py).

SPSDK goes into a virtual environment of its own (`python -m venv`, then pip from PyPI), made
once and kept in a cache directory: it is a comparison, not a dependency of trustprov. The
configuration is the required part of `nxpimage sb31 get-template -f lpc55s36` (an SB3.1
container whose one command loads the firmware), with a certificate block of one P-256 root key
made by `nxpcrypto key generate` and a random 256-bit part common key (PCK).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

FAMILY = "lpc55s36"


class Unavailable(Exception):
    """SPSDK could not be installed or run here: the comparison is skipped."""


def ensure_venv(venv: Path) -> Path:
    """The bin directory of a virtual environment holding SPSDK, made if missing."""
    bin_dir = venv / "bin"
    if (bin_dir / "nxpimage").exists():
        return bin_dir
    try:
        try:
            venv.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise Unavailable(e.strerror or str(e)) from None
        _run([sys.executable, "-m", "venv", str(venv)], venv.parent, timeout=300)
        _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "spsdk"], venv.parent)
    except Unavailable as e:
        raise Unavailable(f"cannot install SPSDK into {venv}: {e}") from None
    if not (bin_dir / "nxpimage").exists():
        raise Unavailable(f"SPSDK installed into {venv} without nxpimage")
    return bin_dir


def export_seconds(venv: Path, work: Path, firmware: Path) -> float:
    """Seconds of one `nxpimage sb31 export` of ``firmware`` (the process, start-up included)."""
    bin_dir = ensure_venv(venv)
    work.mkdir(parents=True, exist_ok=True)
    _run(
        [str(bin_dir / "nxpcrypto"), "key", "generate", "-k", "secp256r1", "-o", "root.pem"],
        work,
    )
    (work / "pck.txt").write_text(os.urandom(32).hex() + "\n")
    (work / "cert-block.yaml").write_text(
        f"family: {FAMILY}\nrevision: latest\nuseIsk: false\n"
        "signer: type=file;file_path=root.pem\n"
        "rootCertificate0File: root.pub\nmainRootCertId: 0\n"
        "containerOutputFile: cert-block.bin\n"
    )
    (work / "sb31.yaml").write_text(
        f"family: {FAMILY}\nrevision: latest\nfirmwareVersion: 0\n"
        "containerOutputFile: firmware.sb3\n"
        "signer: type=file;file_path=root.pem\n"
        "certBlock: cert-block.yaml\ncontainerKeyBlobEncryptionKey: pck.txt\n"
        "isNxpContainer: false\nkdkAccessRights: 0\ncontainerConfigurationWord: 0\n"
        "description: trustprov bench\n"
        f"commands:\n  - load:\n      address: 0\n      memoryId: 0\n      data: {firmware}\n"
    )
    start = time.perf_counter()
    _run([str(bin_dir / "nxpimage"), "sb31", "export", "-c", "sb31.yaml"], work)
    seconds = time.perf_counter() - start
    if not (work / "firmware.sb3").is_file():
        raise Unavailable("nxpimage sb31 export wrote no container")
    return seconds


def _run(argv: list[str], cwd: Path, timeout: float = 1800) -> None:
    try:
        r = subprocess.run(  # noqa: S603 - fixed commands of the bench
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{Path(argv[0]).name}: {e}") from None
    if r.returncode != 0:
        last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]
        raise Unavailable(f"{Path(argv[0]).name} {' '.join(argv[1:3])}: {last[0][:200]}")
