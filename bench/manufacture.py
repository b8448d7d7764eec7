"""Benchmark: `icm manufacture` per chip beside its floor, one key pair and one certificate.

The floor is measured in the same run, just before and just after the lot is made (their mean
is reported, so drift of a shared machine shows as the gap between the two): per chip, the bare
pyca/cryptography calls of making a chip's identity and certifying it, that is a P-256 key
derived from 40 bytes of TRNG output (FIPS 186-5 A.2.1, as the chip does) and its certificate
built from the family's template and signed by the device CA, in DER. Everything else
(burning the immutable memory, the link messages, the farm's writes, the lot manifest and its
signature) is what `manufacture` adds to it. The ICM's keys are in files here; a token's are
timed by bench/custody.py.

    python bench/manufacture.py [--chips 20000]

Progress goes to stderr; the last line is one JSON object under "manufacture": per_chip_us,
floor_us, ratio, and the floor's parts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from trustprov.crypto.keys import MATERIAL_LEN, private_key_from_material
from trustprov.roles import icm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
from timing import median_us


def floor_us(made: icm.Icm, rounds: int = 2000) -> dict[str, float]:
    """Median µs of one chip's key and of its certificate (built, signed, DER)."""
    template = made.chip_certificate_template
    public = private_key_from_material("ec-p256", os.urandom(40)).public_key()
    now = datetime.datetime.now(datetime.UTC)

    def key() -> None:
        private_key_from_material("ec-p256", os.urandom(MATERIAL_LEN["ec-p256"]))

    def certificate() -> None:
        uid = os.urandom(16).hex()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov chip"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, uid),
                x509.NameAttribute(NameOID.COMMON_NAME, uid),
            ]
        )
        template.subject_name(name).public_key(public).serial_number(
            int(uid, 16) >> 1 or 1
        ).not_valid_before(now).sign(made.ca_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    return {"key": median_us(key, rounds), "certificate": median_us(certificate, rounds)}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chips", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2000, help="timed rounds per floor part")
    args = ap.parse_args()
    if args.chips < 1:
        ap.error("--chips must be at least 1")
    with tempfile.TemporaryDirectory(prefix="trustprov-manufacture-") as tmp:
        root = Path(tmp)
        made = icm.init(root / "icm")
        icm.manufacture(made, root / "warm.farm", "WARM", 100, root / "warm.json")  # imports
        before = floor_us(made, args.rounds)
        t = time.perf_counter()
        icm.manufacture(made, root / "lot.farm", "LOT", args.chips, root / "lot.json")
        seconds = time.perf_counter() - t
        after = floor_us(made, args.rounds)
    parts = {k: (before[k] + after[k]) / 2 for k in before}
    floor = sum(parts.values())
    per_chip = seconds / args.chips * 1e6
    figures = {
        "chips": args.chips,
        "seconds": round(seconds, 3),
        "per_chip_us": round(per_chip, 1),
        "floor_us": round(floor, 1),
        "ratio": round(per_chip / floor, 2),
        "floor_parts_us": {k: round(v, 1) for k, v in parts.items()},
        "floor_before_after_us": [round(sum(before.values()), 1), round(sum(after.values()), 1)],
    }
    print(
        f"manufactured {args.chips} chips: {per_chip:.0f} us per chip beside a floor of "
        f"{floor:.0f} us (key {parts['key']:.0f} + certificate {parts['certificate']:.0f}), "
        f"ratio {per_chip / floor:.2f}",
        file=sys.stderr,
    )
    print(json.dumps({"manufacture": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
