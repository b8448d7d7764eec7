"""Benchmark: authorize a million UIDs (issue 10, item 7), beside the bare SHA-256 floor.

Builds the authorized set of N random UIDs (N leaf hashes, N - 1 node hashes: RFC 9162's tree),
writes and parses its AUTH file, then takes every chip's inclusion proof as the CM does
(`AuthorizedSet.proof`, a binary search and up to 20 slices per chip) and verifies a sample as a
chip does. The floor is the same number of bare pyca/cryptography SHA-256 calls over inputs of
the same sizes, timed in the same run: the build's ratio to it is what to watch.

    python bench/authz.py [--uids 1000000]

The last line printed is one JSON object (also `run`'s result, under "authorize" in
bench/provision.py's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from cryptography.hazmat.primitives import hashes

from trustprov.formats.authz import AuthorizedSet, verify_inclusion

SAMPLE = 200_000  # bare hashes timed per input size, for the floor
VERIFY_SAMPLE = 10_000


def _hash_us(size: int, rounds: int) -> float:
    data = bytes(size)
    t = time.perf_counter()
    for _ in range(rounds):
        h = hashes.Hash(hashes.SHA256())
        h.update(data)
        h.finalize()
    return (time.perf_counter() - t) / rounds * 1e6


def run(n: int = 1_000_000) -> dict[str, Any]:
    uids = [os.urandom(16) for _ in range(n)]
    leaf_us, node_us = _hash_us(17, SAMPLE), _hash_us(65, SAMPLE)
    floor_s = (n * leaf_us + (n - 1) * node_us) / 1e6
    t = time.perf_counter()
    s = AuthorizedSet.from_uids(uids)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    data = s.to_bytes()
    AuthorizedSet.from_bytes(data)  # the CM's load: parse, order check, root recomputed
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    longest = 0
    for u in uids:
        longest = max(longest, len(s.proof(u).path))
    proofs_s = time.perf_counter() - t
    t = time.perf_counter()
    for u in uids[:VERIFY_SAMPLE]:
        verify_inclusion(s.root, u, s.proof(u), size=n)
    verify_us = (time.perf_counter() - t) / VERIFY_SAMPLE * 1e6
    return {
        "uids": n,
        "build_seconds": round(build_s, 2),
        "sha256_floor_seconds": round(floor_s, 2),
        "build_ratio": round(build_s / floor_s, 2),
        "load_seconds": round(load_s, 2),
        "every_proof_seconds": round(proofs_s, 2),
        "proof_us_per_chip": round(proofs_s / n * 1e6, 2),
        "longest_proof_hashes": longest,
        "verify_us_per_chip": round(verify_us, 1),
        "verify_floor_us": round(longest * node_us + leaf_us, 1),
        "auth_file_bytes": len(data),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--uids", type=int, default=1_000_000)
    args = ap.parse_args()
    if args.uids < 1:
        ap.error("--uids must be at least 1")
    figures = run(args.uids)
    print(
        f"authorized {figures['uids']} UIDs: tree in {figures['build_seconds']} s "
        f"(SHA-256 floor {figures['sha256_floor_seconds']} s, ratio {figures['build_ratio']}), "
        f"every proof in {figures['every_proof_seconds']} s",
        file=sys.stderr,
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
