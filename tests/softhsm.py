"""A SoftHSM2 token for the tests: its own SOFTHSM2_CONF and token directory in a temp dir.

``make test`` runs the ICM's whole flow with every key in the token. Without the SoftHSM2 module
the PKCS#11 tests skip with a one-line reason, except in CI (``CI`` set): there they fail, so CI
can never pass without having run them (.ci/run installs the Debian package softhsm2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN = "trustprov-test"  # noqa: S105 - a token's label, not a password
PIN = "1234-test"  # a throwaway token in a temp dir
SO_PIN = "5678-test"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class SoftHsm:
    module: str
    conf: Path
    pin_file: Path

    def uri(self, *, pin_source: bool = True) -> str:
        """The token's PKCS#11 URI, the PIN from the pin file (or from elsewhere if not)."""
        query = f"module-path={self.module}"
        if pin_source:
            query += f"&pin-source=file:{self.pin_file}"
        return f"pkcs11:token={TOKEN}?{query}"


def start(root: Path) -> SoftHsm:
    """Initialise a fresh token under ``root``; skip (or fail in CI) without SoftHSM2."""
    module = next((m for m in MODULE_PATHS if Path(m).is_file()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        reason = "SoftHSM2 is not installed (Debian: apt-get install softhsm2)"
        if in_ci():
            pytest.fail(f"{reason} (CI is set: the PKCS#11 tests must run)")
        pytest.skip(reason)
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    # the module reads SOFTHSM2_CONF when first loaded, which the tests do after this
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN, "--pin", PIN],
        check=True,
        capture_output=True,
    )
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return SoftHsm(module, conf, pin_file)
