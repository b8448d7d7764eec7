"""Benchmark: the ICM's signatures with its keys in a PKCS#11 token (SoftHSM2) beside key files.

Two jobs, each timed with the key in a PEM file and with the key in a fresh SoftHSM2 token:
- sign a software image of ``image_mib`` MiB (ES256; the token is sent the SHA-256 digest only),
  and, for scale, the same image with ML-DSA-65 and the ES256+ML-DSA-65 hybrid from files;
- sign the certificates of a lot manifest of ``chips`` chips (the device CA, one ECDSA P-256
  signature per chip, as `icm manufacture` makes them, without the chips themselves).

    python bench/custody.py [--image-mib 64] [--chips 100000]

bench/provision.py runs it too and puts its figures under "custody" in its last line. Without
SoftHSM2 the token figures are left out with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.crypto.keys import public_key_der
from trustprov.formats.software import SignedSoftware
from trustprov.roles import icm
from trustprov.roles.icm.signer import close_sessions

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")
BENCH_PIN = "bench-pin"  # a throwaway token in a temp dir
NO_SOFTHSM = "SoftHSM2 is not installed (Debian: apt-get install softhsm2)"


def _token_uri(root: Path) -> str | None:
    module = next((m for m in SOFTHSM_MODULES if Path(m).is_file()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        return None
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the module when it is first loaded
    subprocess.run(  # noqa: S603 - the softhsm2-util found on PATH, with fixed arguments
        [
            util,
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "bench-so",
            "--pin",
            BENCH_PIN,
        ],
        check=True,
        capture_output=True,
    )
    pin = root / "pin"
    pin.write_text(BENCH_PIN)
    return f"pkcs11:token=bench?module-path={module}&pin-source=file:{pin}"


def _time_software(made: icm.Icm, image: bytes) -> float:
    t = time.perf_counter()
    SignedSoftware.sign(
        made.signing_keys,
        alg=made.alg,
        name="bench",
        version="1",
        security_version=1,
        code=image,
    )
    return time.perf_counter() - t


def _time_certificates(made: icm.Icm, chips: int) -> float:
    public = public_key_der(ec.generate_private_key(ec.SECP256R1()))
    t = time.perf_counter()
    for n in range(chips):
        icm.issue_certificate(made, n.to_bytes(16), public)
    return time.perf_counter() - t


def run(root: Path, *, image_mib: int = 64, chips: int = 100_000) -> dict[str, Any]:
    """The custody figures: seconds per job, by where the key lives."""
    root.mkdir(parents=True, exist_ok=True)
    image = os.urandom(image_mib * 1024 * 1024)
    out: dict[str, Any] = {"image_mib": image_mib, "certificates": chips}
    families = {
        "file": icm.init(root / "file-es256"),
        "file-ml-dsa-65": icm.init(root / "file-mldsa", alg="ML-DSA-65"),
        "file-hybrid": icm.init(root / "file-hybrid", alg="ES256+ML-DSA-65"),
    }
    uri = _token_uri(root / "hsm")
    if uri is None:
        out["token_left_out"] = NO_SOFTHSM
    else:
        families["softhsm2"] = icm.init(root / "token-es256", keys=uri)
    for where, made in families.items():
        seconds = _time_software(made, image)
        out[f"sign_software_s_{where}"] = round(seconds, 3)
        _say(f"signed a {image_mib} MiB image with {made.alg} ({where}): {seconds:.2f} s")
    for where in ("file", "softhsm2"):
        if where in families:
            seconds = _time_certificates(families[where], chips)
            out[f"sign_lot_certificates_s_{where}"] = round(seconds, 2)
            out[f"per_certificate_us_{where}"] = round(seconds / chips * 1e6, 1)
            _say(
                f"signed {chips} chip certificates, CA key in {where}: {seconds:.1f} s "
                f"({seconds / chips * 1e6:.0f} us each)"
            )
    close_sessions()
    return out


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--image-mib", type=int, default=64)
    ap.add_argument("--chips", type=int, default=100_000)
    args = ap.parse_args()
    if args.image_mib < 1 or args.chips < 1:
        ap.error("--image-mib and --chips must be at least 1")
    with tempfile.TemporaryDirectory(prefix="trustprov-custody-") as tmp:
        print(json.dumps(run(Path(tmp), image_mib=args.image_mib, chips=args.chips)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
