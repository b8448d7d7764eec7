"""Benchmark: the OEM reconciles N chip receipts (`oem reconcile`), against the verify floor.

Each receipt is a genuine one: its own chip key, its own certificate issued by the family's
device CA (so no verification can be cached), claims of the demo bundle. They are made in worker
processes (timed apart, not part of the figure) into a CBOR sequence file, then reconciled with
an authorized set of their UIDs, with every core. The floor is measured in the same run: the two
bare ECDSA P-256 verifications a receipt needs (the certificate's by the CA, the receipt's by the
chip), timed in one process, times N, over the cores used.

    python bench/reconcile.py [--receipts 1000000] [--jobs 2] [--dir DIR]

The last line printed is one JSON object: seconds, receipts_per_s, per_receipt_us (wall x jobs
/ N: one receipt's cost on one core), floor_us (the two verifies), floor_seconds (N x floor_us /
jobs), ratio, generate_seconds, and the counts (every receipt must be valid).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.crypto.digest import sha256
from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, public_key_der
from trustprov.demo import make_family, seal_bundle, write_sample_assets
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Bundle
from trustprov.formats.installed import expected_installed_digest
from trustprov.formats.receipt import ReceiptClaims, make_receipt
from trustprov.roles import icm
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem import reconcile

_ICM: icm.Icm | None = None
_BUNDLE: Bundle | None = None
DOMAIN = bytes(range(8)) * 2  # any domain: reconciliation checks the digest for it


def _make(n: int) -> tuple[bytes, bytes]:
    """``n`` receipts of fresh chips (a worker's share), concatenated, and their UIDs."""
    assert _ICM is not None
    assert _BUNDLE is not None
    m = _BUNDLE.manifest
    digest = sha256(_BUNDLE.signed.message.body)
    installed = expected_installed_digest(m, DOMAIN)
    out = bytearray()
    uids = bytearray()
    es256 = SIGNATURE_ALGORITHMS["ES256"]
    for _ in range(n):
        uid = os.urandom(16)
        uids += uid
        key = ec.generate_private_key(ec.SECP256R1())
        cert = icm.issue_certificate(_ICM, uid, public_key_der(key))
        claims = ReceiptClaims(
            uid=uid,
            lot="LOT-BENCH",
            bundle_id=m.bundle_id,
            manifest_digest=digest,
            installed_digest=installed,
            domain_id=DOMAIN,
            epoch=m.epoch,
            software_name="trustprov-provisioning",
            software_version="1.0.0",
            security_version=m.min_security_version,
            lifecycle=2,
            counter=1,
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        out += make_receipt(claims, der, lambda msg, k=key: es256.sign(k, msg))
    return bytes(out), bytes(uids)


def floor_us(made: icm.Icm, rounds: int = 4000) -> float:
    """Microseconds of the two bare P-256 verifies of one receipt, in this process."""
    ca_pub = made.ca_cert.public_key()
    chip = ec.generate_private_key(ec.SECP256R1())
    msg = b"x" * 400
    sig_ca = made.ca_key.sign(msg, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]  # the demo CA is P-256
    sig_chip = chip.sign(msg, ec.ECDSA(hashes.SHA256()))
    pub = chip.public_key()
    start = time.perf_counter()
    for _ in range(rounds):
        ca_pub.verify(sig_ca, msg, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]  # the demo CA is P-256
        pub.verify(sig_chip, msg, ec.ECDSA(hashes.SHA256()))
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    global _ICM, _BUNDLE  # inherited by the forked generator workers
    ap = argparse.ArgumentParser()
    ap.add_argument("--receipts", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    root = Path(a.dir or tempfile.mkdtemp(prefix="tp-bench-reconcile-"))
    try:
        family = make_family(root)
        sealed = seal_bundle(root, family, asset_list.load(write_sample_assets(root / "assets")))
        _ICM, _BUNDLE = family.icm, sealed.bundle
        start = time.perf_counter()
        path = root / "receipts.cbor"
        uids: list[bytes] = []
        per = 2000
        shares = [per] * (a.receipts // per) + ([a.receipts % per] if a.receipts % per else [])
        with (
            path.open("wb") as f,
            multiprocessing.get_context("fork").Pool(a.jobs) as pool,
        ):
            for block, made in pool.imap(_make, shares):
                f.write(block)
                uids += [made[i : i + 16] for i in range(0, len(made), 16)]
        generate = time.perf_counter() - start
        print(f"made {a.receipts} receipts in {generate:.1f} s", file=sys.stderr)
        ref = reconcile.reference(
            family.icm.ca_cert.public_bytes(serialization.Encoding.DER), sealed.bundle
        )
        auth = AuthorizedSet.from_uids(uids)
        start = time.perf_counter()
        result = reconcile.reconcile(reconcile.read_receipts(path), ref, auth, jobs=a.jobs)
        seconds = time.perf_counter() - start
        floor = floor_us(family.icm)
        doc = {
            "bench": "reconcile",
            "receipts": a.receipts,
            "jobs": a.jobs,
            "seconds": round(seconds, 2),
            "receipts_per_s": round(a.receipts / seconds),
            "per_receipt_us": round(seconds * a.jobs / a.receipts * 1e6, 1),
            "floor_us": round(floor, 1),
            "floor_seconds": round(a.receipts * floor / 1e6 / a.jobs, 2),
            "ratio": round(seconds / (a.receipts * floor / 1e6 / a.jobs), 2),
            "generate_seconds": round(generate, 1),
            "file_bytes": path.stat().st_size,
            "counts": {**result.counts, "missing": len(result.missing)},
        }
        print(json.dumps(doc))
        if result.counts["valid"] != a.receipts:
            sys.exit(1)
    finally:
        if a.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
