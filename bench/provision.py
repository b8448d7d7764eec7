"""Benchmark: provision a lot of chips and compare the per-chip cost with the crypto floor.

The floor is measured in the same run: the bare pyca/cryptography calls one chip needs for this
bundle (one signature verify of the software, one unseal of ENC(OEM_SHARE), the five KDF calls of
G and the key derivation, one CMAC over the manifest, and per chunk one SHA-256 hash-chain link
and one AEAD open), timed in a loop. The ratio achieved / floor is what to watch: absolute times
on shared machines are noisy.

    python bench/provision.py [--chips 10000] [--jobs 1] [--firmware-kib 256]

The last line printed is one JSON object. per_chip_us is wall time x workers / chips: the cost
of one chip on one worker, pool start-up included.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from trustprov.crypto.aead import cmac_verify
from trustprov.crypto.digest import chain_link
from trustprov.crypto.keys import load_public_key
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.demo import CM_LOT, OEM_LOT, write_sample_assets
from trustprov.formats.bundle import Bundle, chunk_aad, chunk_nonce
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.line.station import provision_lot
from trustprov.roles import assets as asset_list
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job


def crypto_floor_us(root: Path, made: icm.Icm, rounds: int = 300) -> tuple[float, dict[str, float]]:
    """Median microseconds of the bare primitive calls of one chip, by component."""
    image = (root / "icm" / "provisioning-software.cose").read_bytes()
    software = SignedSoftware.from_bytes(image)
    public = load_public_key(made.immutable.k_puk_icm_prov)
    sealed = SealedValue.from_bytes((root / "oem" / "enc-oem-share.cose").read_bytes())
    bundle = Bundle.from_bytes((root / "oem" / "bundle.cbor").read_bytes())
    mem = made.immutable
    oem_share = sealed.open(mem.k_oem_share)
    keys = derive_keys(g_master_key(oem_share, mem.hw_share, mem.rom_share), mem.family_id)
    mac_message = bundle.signed.message
    m = bundle.manifest
    links = [bundle.chain_links(a) for a in range(len(m.assets))]

    def verify() -> None:
        software.verify(public)

    def unseal() -> None:
        sealed.open(mem.k_oem_share)

    def kdfs() -> None:
        derive_keys(g_master_key(oem_share, mem.hw_share, mem.rom_share), mem.family_id)

    def cmac() -> None:
        cmac_verify(keys.auth, mac_message.mac_structure(), mac_message.auth)

    ciphers = (m.aead.cipher(keys.enck), m.aead.cipher(keys.encd))

    def assets() -> None:
        for a, entry in enumerate(m.assets):
            key = ciphers[0] if entry.is_key else ciphers[1]
            aad = chunk_aad(m.bundle_id, a)
            for i, c in enumerate(bundle.chunks[a]):
                chain_link(c, links[a][i])
                m.aead.open(key, chunk_nonce(entry.nonce, i, i == entry.chunks - 1), c, aad)

    parts = {"verify": verify, "unseal": unseal, "kdf": kdfs, "cmac": cmac, "assets": assets}
    result = {}
    for name, fn in parts.items():
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        result[name] = statistics.median(samples) * 1e6
    return sum(result.values()), result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chips", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustprov-bench-") as tmp:
        root = Path(tmp)
        toml = write_sample_assets(root / "assets")
        made = icm.init(root / "icm")
        software = root / "icm" / "provisioning-software.cose"
        icm.sign_software(made, software)
        (root / "oem-chip").mkdir()
        oem_lot = icm.manufacture(
            made, root / "oem-chip" / "chip.farm", OEM_LOT, 1, root / "oem-chip" / "lot.json"
        )
        farm = root / "chips.farm"
        t = time.perf_counter()
        icm.manufacture(made, farm, CM_LOT, args.chips, root / "lot.json")
        manufacture_s = time.perf_counter() - t
        print(f"manufactured {args.chips} chips in {manufacture_s:.1f} s", file=sys.stderr)
        oem.keygen(
            root / "oem-chip" / "chip.farm",
            oem_lot.chips[0].uid,
            software_path=software,
            assets=asset_list.load(toml),
            out=root / "oem",
        )
        job = Job.load(software, root / "oem" / "enc-oem-share.cose", root / "oem" / "bundle.cbor")
        summary = provision_lot(
            farm_path=farm,
            lot=CM_LOT,
            job=job,
            records_url=f"sqlite:///{root / 'records.sqlite'}",
            jobs=args.jobs,
            station="bench",
        )
        if summary.failed or summary.provisioned != args.chips:
            print(f"FAILED: {summary.to_json()}", file=sys.stderr)
            return 1
        floor_us, parts = crypto_floor_us(root, made)
        farm_bytes = farm.stat().st_size + sum(p.stat().st_size for p in root.glob("chips.farm-*"))
    sys.stderr.flush()
    workers = summary.jobs  # the workers the line started (at most --jobs)
    per_chip_us = summary.seconds / args.chips * 1e6 * workers
    print(
        f"provisioned {args.chips} chips in {summary.seconds:.2f} s with {workers} worker(s): "
        f"{args.chips / summary.seconds:.0f} chips/s, {per_chip_us:.0f} us per chip per worker",
        file=sys.stderr,
    )
    print(
        "crypto floor per chip: "
        + ", ".join(f"{k} {v:.0f} us" for k, v in parts.items())
        + f" = {floor_us:.0f} us; ratio {per_chip_us / floor_us:.2f}",
        file=sys.stderr,
    )
    # ru_maxrss is KiB on Linux; children are the line's worker processes
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        json.dumps(
            {
                "chips": args.chips,
                "jobs": workers,
                "seconds": round(summary.seconds, 3),
                "chips_per_s": round(args.chips / summary.seconds, 1),
                "per_chip_us": round(per_chip_us, 1),
                "floor_us": round(floor_us, 1),
                "ratio": round(per_chip_us / floor_us, 2),
                "manufacture_seconds": round(manufacture_s, 2),
                "farm_bytes_per_chip": round(farm_bytes / args.chips),
                "peak_rss_mb": round(peak_kib / 1024, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
