"""Benchmark: provision a lot of chips and compare the per-chip cost with the crypto floor.

The floor is measured in the same run: the bare pyca/cryptography calls one chip needs for this
bundle (one signature verify of the software, one unseal of ENC(OEM_SHARE), the five KDF calls of
G and the key derivation, one CMAC over the manifest, and per chunk one SHA-256 hash-chain link
and one AEAD open), timed in a loop. The ratio achieved / floor is what to watch: absolute times
on shared machines are noisy.

    python bench/provision.py [--chips 10000] [--workers 1,2] [--dir DIR]

The lot is manufactured once (timed), then provisioned afresh with each worker count, with the
demo assets (a 256 KiB firmware among them). Progress goes to stderr; the last line printed is
one JSON object: the figures of the run with the most workers (seconds, chips_per_s,
per_chip_us, ratio), every run under "runs", the floor, manufacturing time, farm bytes per
provisioned chip and peak RSS (the bench process or any one worker). per_chip_us is wall time
x workers / chips: the cost of one chip on one worker, pool start-up included. Under "custody":
the ICM's signing with its keys in a SoftHSM2 token beside key files (bench/custody.py: a
64 MiB software image, the certificates of a 100,000-chip lot manifest; --custody-chips 0 leaves
it out). Under "authorize": the OEM's authorized set of a million UIDs built, loaded and every
proof taken, beside the bare SHA-256 floor of the same run (bench/authz.py; --authorize-uids 0
leaves it out).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from trustprov.crypto.aead import cmac_verify
from trustprov.crypto.digest import sealed_tag, tag_link
from trustprov.crypto.keys import load_public_key
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.demo import CM_LOT, make_family, seal_bundle, write_sample_assets
from trustprov.formats.bundle import Bundle, chunk_aad, chunk_nonce
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.line.station import provision_lot
from trustprov.roles import assets as asset_list
from trustprov.roles import icm
from trustprov.roles.cm import Job

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
import authz
import custody


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
                tag_link(sealed_tag(c), links[a][i])
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


def _peak_rss_mb() -> float:
    """Peak resident set of this process or any one worker the line started (KiB on Linux)."""
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return peak_kib / 1024


def _farm_bytes(farm: Path) -> int:
    with sqlite3.connect(farm) as db:  # fold the write-ahead log into the file first
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in farm.parent.glob(farm.name + "*"))


def _workers(text: str) -> list[int]:
    try:
        counts = [int(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a list of worker counts, e.g. 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts must be at least 1")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chips", type=int, default=10_000)
    ap.add_argument(
        "--workers", type=_workers, default=[1, 2], help="worker counts to run, e.g. 1,2"
    )
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--custody-image-mib", type=int, default=64, help="software image to sign")
    ap.add_argument(
        "--custody-chips", type=int, default=100_000, help="lot certificates to sign (0: none)"
    )
    ap.add_argument(
        "--authorize-uids", type=int, default=1_000_000, help="UIDs to authorize (0: none)"
    )
    args = ap.parse_args()
    if args.chips < 1:
        ap.error("--chips must be at least 1")
    with tempfile.TemporaryDirectory(prefix="trustprov-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        toml = write_sample_assets(root / "assets")
        family = make_family(root)
        made_farm = root / "made.farm"
        t = time.perf_counter()
        icm.manufacture(family.icm, made_farm, CM_LOT, args.chips, root / "lot.json")
        manufacture_s = time.perf_counter() - t
        made_bytes = _farm_bytes(made_farm)
        _say(
            f"manufactured {args.chips} chips in {manufacture_s:.1f} s "
            f"({manufacture_s / args.chips * 1e6:.0f} us per chip, "
            f"{made_bytes / args.chips:.0f} farm bytes per chip)"
        )
        seal_bundle(root, family, asset_list.load(toml))
        oem_dir = root / "oem"
        job = Job.load(family.software, oem_dir / "enc-oem-share.cose", oem_dir / "bundle.cbor")
        floor_us, parts = crypto_floor_us(root, family.icm)
        _say(
            "crypto floor per chip: "
            + ", ".join(f"{k} {v:.0f} us" for k, v in parts.items())
            + f" = {floor_us:.0f} us"
        )
        runs = []
        farm_bytes = 0
        for n in args.workers:
            farm = root / f"chips-{n}.farm"  # the same lot, fresh from manufacturing, per run
            shutil.copyfile(made_farm, farm)
            summary = provision_lot(
                farm_path=farm,
                lot=CM_LOT,
                job=job,
                records_url=f"sqlite:///{root / f'records-{n}.sqlite'}",
                jobs=n,
                station="bench",
                on_outcome=_Ticker(args.chips),
            )
            if summary.failed or summary.provisioned != args.chips:
                _say(f"FAILED: {summary.to_json()}")
                return 1
            workers = summary.jobs  # the workers the line started (at most n)
            per_chip_us = summary.seconds / args.chips * 1e6 * workers
            run = {
                "workers": workers,
                "seconds": round(summary.seconds, 3),
                "chips_per_s": round(args.chips / summary.seconds, 1),
                "per_chip_us": round(per_chip_us, 1),
                "ratio": round(per_chip_us / floor_us, 2),
            }
            runs.append(run)
            _say(
                f"provisioned {args.chips} chips in {summary.seconds:.1f} s with {workers} "
                f"worker(s): {run['chips_per_s']:.0f} chips/s, {per_chip_us:.0f} us per chip per "
                f"worker, ratio {run['ratio']:.2f} to the floor"
            )
            farm_bytes = _farm_bytes(farm)
            farm.unlink()  # keep at most two farms of a large lot on disk
        custody_figures = (
            custody.run(
                root / "custody", image_mib=args.custody_image_mib, chips=args.custody_chips
            )
            if args.custody_chips > 0
            else {}
        )
    authorize_figures = authz.run(args.authorize_uids) if args.authorize_uids > 0 else {}
    if authorize_figures:
        _say(
            f"authorized {args.authorize_uids} UIDs: tree in "
            f"{authorize_figures['build_seconds']} s beside a SHA-256 floor of "
            f"{authorize_figures['sha256_floor_seconds']} s; every proof in "
            f"{authorize_figures['every_proof_seconds']} s"
        )
    last = runs[-1]  # the run with the most workers
    peak = _peak_rss_mb()
    _say(f"farm {farm_bytes / args.chips:.0f} bytes per provisioned chip; peak RSS {peak:.0f} MB")
    print(
        json.dumps(
            {
                "chips": args.chips,
                "jobs": last["workers"],
                "seconds": last["seconds"],
                "chips_per_s": last["chips_per_s"],
                "per_chip_us": last["per_chip_us"],
                "floor_us": round(floor_us, 1),
                "ratio": last["ratio"],
                "peak_rss_mb": round(peak, 1),
                "manufacture_seconds": round(manufacture_s, 2),
                "farm_bytes_per_chip": round(farm_bytes / args.chips),
                "runs": runs,
                "floor_parts_us": {k: round(v, 1) for k, v in parts.items()},
                "custody": custody_figures,
                "authorize": authorize_figures,
            }
        )
    )
    return 0


class _Ticker:
    """A line on stderr every tenth of the lot, so a long run shows it is alive."""

    def __init__(self, chips: int) -> None:
        self.chips, self.done, self.start = chips, 0, time.perf_counter()
        self.every = max(1, chips // 10)

    def __call__(self, _outcome: object) -> None:
        self.done += 1
        if self.done % self.every == 0 and self.done < self.chips:
            rate = self.done / (time.perf_counter() - self.start)
            _say(f"  {self.done} of {self.chips} chips, {rate:.0f} chips/s")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
