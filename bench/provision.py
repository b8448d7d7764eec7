"""Benchmark: provision a lot of chips and compare the per-chip cost with the crypto floor.

The floor is measured in the same run: the bare pyca/cryptography calls one chip needs for this
bundle (one signature verify of the software, one unseal of ENC(OEM_SHARE), the five KDF calls of
G and the key derivation, one CMAC over the manifest, per chunk one hash-chain link and one AEAD
open, per device key the manifest names one key pair from TRNG material, and the ES256 signature
of the chip's receipt), each the cheapest correct call, timed in a loop, and the one ES256
verify of that receipt that the station makes per chip before it records it (protocol.md 9,
rule 7). The ratio achieved / floor is what to watch:
absolute times on shared machines are noisy. Beside each run's wall time, the CPU time of all
its processes per chip: on a machine shared with other work, how far the line would go alone.

    python bench/provision.py [--chips 10000] [--workers 1,2] [--dir DIR]

The lot is manufactured once (timed, beside its own floor: one P-256 key pair from TRNG
material and one certificate signed by the device CA per chip), then provisioned afresh with
each worker count, with the demo assets (a 256 KiB firmware among them). Progress goes to
stderr, every figure beside its floor; the last line printed is one JSON object: the figures of
the run with the most workers (seconds, chips_per_s, per_chip_us, ratio, speedup over the first
run, cpu_per_chip_us), every run under "runs", the floor and its parts, manufacturing time per
chip beside its floor, farm bytes per provisioned chip and peak RSS (the bench process or any
one worker). per_chip_us is wall time x workers / chips: the cost of one chip on one worker,
pool start-up included. Under "custody":
the ICM's signing with its keys in a SoftHSM2 token beside key files (bench/custody.py: a
64 MiB software image, the certificates of a 100,000-chip lot manifest; --custody-chips 0 leaves
it out). Under "authorize": the OEM's authorized set of a million UIDs built, loaded and every
proof taken, beside the bare SHA-256 floor of the same run (bench/authz.py; --authorize-uids 0
leaves it out). Under "station_verify": what the station's check of a chip's receipt costs
per chip (parse, the certificate's key, ES256 verify, the claims), cold (a certificate parsed
for the chip) and warm (its key kept per UID), beside its floor, one bare ES256 verify.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

# The line's worker processes start with "spawn" and import this module again, as their
# __mp_main__, where none of this is used: a worker's start-up stays the line's own, not this
# benchmark's (trustprov.demo, the records store, the custody and authorization benchmarks).
# Imported by name (bench/floor.py uses its floor), it imports them.
if __name__ != "__mp_main__" or TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from trustprov.crypto.aead import cmac_verify
    from trustprov.crypto.digest import sealed_tag, tag_link
    from trustprov.crypto.keys import (
        MATERIAL_LEN,
        SIGNATURE_ALGORITHMS,
        load_public_key,
        private_key_from_material,
    )
    from trustprov.crypto.schedule import derive_keys, g_master_key
    from trustprov.demo import CM_LOT, make_family, seal_bundle, write_sample_assets
    from trustprov.formats.bundle import Bundle, chunk_aad, chunk_nonce
    from trustprov.formats.receipt import Receipt
    from trustprov.formats.sealed import SealedValue
    from trustprov.formats.software import SignedSoftware
    from trustprov.line.station import provision_lot
    from trustprov.roles import icm
    from trustprov.roles.cm import Job, Outcome
    from trustprov.roles.oem import assets as asset_list
    from trustprov.roles.trust import LotTrust

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
    import authz
    import custody


def crypto_floor_us(root: Path, made: icm.Icm, rounds: int = 300) -> tuple[float, dict[str, float]]:
    """Median microseconds of the bare primitive calls of one chip, by component: each with
    the cheapest correct call (keys loaded once, as a chip holds them), and the host's one
    ES256 verify of the chip's receipt (``host-verify``)."""
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

    # the bytes signed and MACed, encoded once: a chip hashes them as they arrive
    to_be_signed, signature = software.message.to_be_signed(), software.message.auth
    es = SIGNATURE_ALGORITHMS.get(software.alg)  # None for a hybrid suite

    def verify() -> None:
        if es is None:  # a hybrid suite: every signature of the COSE_Sign
            software.verify(public)
        else:
            es.verify(public, signature, to_be_signed)

    def unseal() -> None:
        sealed.open(mem.k_oem_share)

    def kdfs() -> None:
        derive_keys(g_master_key(oem_share, mem.hw_share, mem.rom_share), mem.family_id)

    mac_structure = mac_message.mac_structure()

    def cmac() -> None:
        cmac_verify(keys.auth, mac_structure, mac_message.auth)

    ciphers = (m.aead.cipher(keys.enck), m.aead.cipher(keys.encd))

    def assets() -> None:
        for a, entry in enumerate(m.assets):
            key = ciphers[0] if entry.is_key else ciphers[1]
            aad = chunk_aad(m.bundle_id, a)
            for i, c in enumerate(bundle.chunks[a]):
                tag_link(sealed_tag(c), links[a][i])
                m.aead.open(key, chunk_nonce(entry.nonce, i, i == entry.chunks - 1), c, aad)

    # per device key the manifest names: a key pair made from the chip's TRNG (the public
    # half goes into the receipt)
    materials = [(d.key_type, os.urandom(MATERIAL_LEN[d.key_type])) for d in m.device_keys]

    def device_keys() -> None:
        for key_type, material in materials:
            private_key_from_material(key_type, material)

    # the receipt (docs/protocol.md 6.8): one ES256 signature with the chip's identity key over
    # a Sig_structure of a receipt's size (the demo's, with one device key: under 700 bytes)
    identity = ec.generate_private_key(ec.SECP256R1())
    es256 = SIGNATURE_ALGORITHMS["ES256"]
    to_sign = os.urandom(700)

    def receipt() -> None:
        es256.sign(identity, to_sign)

    signed = (identity.public_key(), es256.sign(identity, to_sign))  # the station checks it

    def host_verify() -> None:
        es256.verify(signed[0], signed[1], to_sign)

    parts = {
        "verify": verify,
        "unseal": unseal,
        "kdf": kdfs,
        "cmac": cmac,
        "assets": assets,
        "device-keys": device_keys,
        "receipt": receipt,
        "host-verify": host_verify,
    }
    result = {}
    for name, fn in parts.items():
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        result[name] = statistics.median(samples) * 1e6
    return sum(result.values()), result


def manufacture_floor_us(made: icm.Icm, rounds: int = 300) -> float:
    """Median microseconds of what manufacturing needs per chip at the least: its P-256
    identity key made from TRNG material, and its certificate signed by the device CA."""
    template = made.chip_certificate_template
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "00" * 16)])
    samples = []
    for i in range(rounds):
        t = time.perf_counter()
        key = private_key_from_material("ec-p256", os.urandom(MATERIAL_LEN["ec-p256"]))
        template.subject_name(name).public_key(key.public_key()).serial_number(
            i + 1
        ).not_valid_before(_EPOCH).sign(made.ca_key, hashes.SHA256())
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


_EPOCH = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def _cpu_seconds() -> float:
    """CPU time of this process and of the worker processes it has reaped (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


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


def _provision_run(
    root: Path, farm: Path, job: Job, n: int, *, chips: int, floor_us: float
) -> dict[str, float] | None:
    """Provision the lot of ``farm`` with ``n`` workers; its figures, or None if a chip failed."""
    cpu = _cpu_seconds()
    ticker = _Ticker(chips)
    summary = provision_lot(
        farm_path=farm,
        lot=CM_LOT,
        job=job,
        records_url=f"sqlite:///{root / f'records-{n}.sqlite'}",
        jobs=n,
        station="bench",
        on_outcome=ticker,
    )
    if summary.failed or summary.provisioned != chips:
        _say(f"FAILED: {summary.to_json()}")
        return None
    # every process of the line: the station and its workers, start-up included
    cpu_us = (_cpu_seconds() - cpu) / chips * 1e6
    workers = summary.jobs  # the workers the line started (at most n)
    per_chip_us = summary.seconds / chips * 1e6 * workers
    return {
        "workers": workers,
        "seconds": round(summary.seconds, 3),
        "chips_per_s": round(chips / summary.seconds, 1),
        "per_chip_us": round(per_chip_us, 1),
        "ratio": round(per_chip_us / floor_us, 2),
        "cpu_per_chip_us": round(cpu_us, 1),
        "cpu_ratio": round(cpu_us / floor_us, 2),
        "speedup": 1.0,  # beside the first run (of the fewest workers, as given)
        "station_verify": station_verify_us(ticker.outcomes, job),
    }


def station_verify_us(outcomes: list[Outcome], job: Job, rounds: int = 200) -> dict[str, float]:
    """Median microseconds of the station's check of one chip's receipt (`LotTrust.verify`):
    cold, with the chip's certificate parsed for it, and warm, with its key kept; beside one
    bare ES256 verify of the same receipt (the floor)."""
    sample = [o for o in outcomes if o.receipt is not None][:rounds]
    if not sample:
        return {}
    cold, warm, floor = [], [], []
    es256 = SIGNATURE_ALGORITHMS["ES256"]
    for o in sample:
        trust = LotTrust(CM_LOT, None)  # the chip's own certificate, as the bench's line
        t = time.perf_counter()
        checked = trust.verify(o, job.expected)
        cold.append(time.perf_counter() - t)
        if checked.result != "provisioned":
            raise SystemExit(f"the station refused a genuine receipt: {checked.error}")
        t = time.perf_counter()
        trust.verify(o, job.expected)
        warm.append(time.perf_counter() - t)
        assert o.receipt is not None  # sampled with one
        message = Receipt.from_bytes(o.receipt).message
        key = trust.anchor(o)[1]
        tbs, signature = message.to_be_signed(), message.auth
        t = time.perf_counter()
        es256.verify(key, signature, tbs)
        floor.append(time.perf_counter() - t)
    median = statistics.median
    floor_us = median(floor) * 1e6
    return {
        "cold_us": round(median(cold) * 1e6, 1),
        "warm_us": round(median(warm) * 1e6, 1),
        "floor_us": round(floor_us, 1),
        "cold_ratio": round(median(cold) * 1e6 / floor_us, 2),
        "warm_ratio": round(median(warm) * 1e6 / floor_us, 2),
    }


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
        manufacture_floor = manufacture_floor_us(family.icm)
        manufacture_us = manufacture_s / args.chips * 1e6
        _say(
            f"manufactured {args.chips} chips in {manufacture_s:.1f} s "
            f"({manufacture_us:.0f} us per chip beside a floor of {manufacture_floor:.0f} us, "
            f"ratio {manufacture_us / manufacture_floor:.2f}; "
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
            run = _provision_run(root, farm, job, n, chips=args.chips, floor_us=floor_us)
            if run is None:
                return 1
            if runs:
                run["speedup"] = round(runs[0]["seconds"] / run["seconds"], 2)
            runs.append(run)
            _say(
                f"provisioned {args.chips} chips in {run['seconds']:.1f} s with {run['workers']} "
                f"worker(s): {run['chips_per_s']:.0f} chips/s, {run['per_chip_us']:.0f} us per "
                f"chip per worker beside a floor of {floor_us:.0f} us (ratio {run['ratio']:.2f}); "
                f"CPU of the line {run['cpu_per_chip_us']:.0f} us per chip "
                f"(ratio {run['cpu_ratio']:.2f})"
                + (f"; {run['speedup']:.2f}x the first run's speed" if len(runs) > 1 else "")
            )
            sv = run["station_verify"]
            if sv:
                _say(
                    f"station's check of a receipt: {sv['cold_us']:.0f} us cold (certificate "
                    f"parsed), {sv['warm_us']:.0f} us warm (key kept), beside one ES256 verify "
                    f"of {sv['floor_us']:.0f} us (ratios {sv['cold_ratio']:.2f}, "
                    f"{sv['warm_ratio']:.2f})"
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
                "speedup": last["speedup"],
                "cpu_per_chip_us": last["cpu_per_chip_us"],
                "peak_rss_mb": round(peak, 1),
                "manufacture_seconds": round(manufacture_s, 2),
                "manufacture_per_chip_us": round(manufacture_us, 1),
                "manufacture_floor_us": round(manufacture_floor, 1),
                "manufacture_ratio": round(manufacture_us / manufacture_floor, 2),
                "farm_bytes_per_chip": round(farm_bytes / args.chips),
                "runs": runs,
                "floor_parts_us": {k: round(v, 1) for k, v in parts.items()},
                "station_verify": last["station_verify"],
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
        self.outcomes: list[Outcome] = []  # a sample, for the station's verification cost

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        if len(self.outcomes) < 200:
            self.outcomes.append(outcome)
        if self.done % self.every == 0 and self.done < self.chips:
            rate = self.done / (time.perf_counter() - self.start)
            _say(f"  {self.done} of {self.chips} chips, {rate:.0f} chips/s")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
