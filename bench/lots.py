"""Benchmark: write, sign and verify the manifest of a 2,000,000-chip lot in constant memory.

The manifest is written chip by chip through the writer `icm manufacture` uses, hashed as it is
written (formats/lotsig.HashingWriter), signed (LOT_JSON.cose), then verified as every reader
does first, streaming the file through SHA-256 (roles/lots.verify_lot_file). Chips are not made:
every entry carries the same certificate (the writer does not care; the readers' parser would
refuse it, and is not run), so the figures are those of the signature alone. Peak RSS is the
point: it must not grow with the lot.

    python bench/lots.py [--chips 2000000] [--dir DIR]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.formats.lot import LotManifestWriter
from trustprov.formats.lotsig import HashingWriter, LotSignature
from trustprov.roles.lots import signature_path, verify_lot_file

FAMILY = bytes(range(8))


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chips", type=int, default=2_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    cert, lot_key = _certificate(), ec.generate_private_key(ec.SECP256R1())
    with tempfile.TemporaryDirectory(prefix="trustprov-lots-", dir=args.dir) as tmp:
        manifest = Path(tmp) / "lot.json"
        t = time.perf_counter()
        with manifest.open("wb") as out:
            hashing = HashingWriter(out)
            writer = LotManifestWriter(hashing, "LOT-BIG", FAMILY)
            for i in range(args.chips):
                writer.add(i.to_bytes(16, "big"), cert)
            writer.finish()
        sig = LotSignature.sign(
            lot_key, lot="LOT-BIG", family_id=FAMILY, chips=args.chips, digest=hashing.hash.digest()
        )
        signature_path(manifest).write_bytes(sig.to_bytes())
        write_s = time.perf_counter() - t
        size = manifest.stat().st_size
        t = time.perf_counter()
        verify_lot_file(manifest, lot_key.public_key())
        verify_s = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "chips": args.chips,
        "manifest_bytes": size,
        "write_and_sign_seconds": round(write_s, 1),
        "verify_seconds": round(verify_s, 1),
        "peak_rss_mb": round(peak_mb, 1),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
