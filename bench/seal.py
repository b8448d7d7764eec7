"""Benchmark: the OEM's sealing of a firmware, beside its crypto floor and NXP SPSDK.

    python bench/seal.py [--mib 64] [--chunk-size N] [--rounds 3] [--dir DIR]

Achieved: `oem.keygen` in this process (the provisioning chip boots the signed software, makes
the OEM's keys and seals the firmware, the bundle is written to disk), median of --rounds; and
the same as one `trustprov oem keygen` process, start-up included (median of --rounds), its
modules' bytecode compiled beforehand as an installed package's is.

Floor, measured in the same run: the bare pyca/cryptography calls of that keygen, each done
once as the chip does it: the boot's signature verify, the three seals of FIG. 2 (ENC(OEM_RND_
INPUT), ENC(RND_SHARE), ENC(OEM_SHARE)), F, G, the key derivation and H, then per chunk one
AEAD seal and one chain link (`trustprov.crypto.digest.tag_link` over its tag), and
the CMAC of the manifest. Plaintext comes from memory: reading the file is not crypto.
Beside it, the write floor: the bundle's bytes written to a new file in one call and made
durable with one fsync, as any sealing tool must; the achieved time is given against the sum
of both floors too. Without --chunk-size the asset list leaves the chunk size to `oem keygen`
(its default: the largest that fits the family's RAM).

SPSDK: `nxpimage sb31 export` (an SB3.1 container, NXP's secure-binary update format for the
same job) of the same firmware, as one process, with a configuration made from its own
template and keys made for it. SPSDK is installed into its own virtual environment under the
cache directory (--spsdk-venv; pip from PyPI); where that fails the comparison is skipped with a
one-line message. Progress goes to stderr; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trustprov
from trustprov.crypto.aead import cmac_tag
from trustprov.crypto.digest import CHAIN_END, sealed_tag, tag_link
from trustprov.crypto.keys import load_public_key
from trustprov.crypto.schedule import derive_keys, f_oem_share, g_master_key, h_seed
from trustprov.demo import Family, make_family
from trustprov.formats.bundle import BUNDLE_ID_LEN, chunk_aad, chunk_nonce
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.roles import oem
from trustprov.roles.bundle_io import BundleFile
from trustprov.roles.oem import assets as asset_list

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
import spsdk_sb31

MiB = 1024 * 1024


def write_assets(d: Path, mib: int, chunk_size: int | None) -> Path:
    d.mkdir()
    block = os.urandom(MiB)
    with (d / "app.bin").open("wb") as f:
        for _ in range(mib):
            f.write(block)
        f.flush()
        # on disk before any timing: else the first keygen's fsync commits this file's blocks
        # with the bundle's (ext4's ordered journal)
        os.fsync(f.fileno())
    toml = d / "assets.toml"
    bundle = "" if chunk_size is None else f"[bundle]\nchunk-size = {chunk_size}\n\n"
    toml.write_text(
        bundle + '[[asset]]\nname = "app"\nkind = "firmware"\nregion = "app"\nfile = "app.bin"\n'
    )
    return toml


def floor_seconds(family: Family, firmware: bytes, bundle: BundleFile, rounds: int) -> float:
    """Median seconds of the bare primitive calls of one keygen of ``firmware``."""
    mem = family.icm.immutable
    software = SignedSoftware.from_bytes(family.software.read_bytes())
    public = load_public_key(mem.k_puk_icm_prov)
    m = bundle.manifest
    chunk_size = m.chunk_size
    n = -(-len(firmware) // chunk_size)
    entry = m.assets[0]
    message = bundle.signed.message
    nonce = bytes(12)

    def once() -> None:
        software.verify(public)  # the boot ROM
        oem_rnd_input, rnd_share = os.urandom(32), os.urandom(32)
        master = mem.k_oem_master_share
        SealedValue.seal(master, "oem-rnd-input", mem.family_id, nonce, oem_rnd_input)
        SealedValue.seal(master, "rnd-share", mem.family_id, nonce, rnd_share)
        share = f_oem_share(oem_rnd_input, rnd_share)
        keys = derive_keys(g_master_key(share, mem.hw_share, mem.rom_share), mem.family_id)
        h_seed(oem_rnd_input, rnd_share)
        SealedValue.seal(mem.k_oem_share, "oem-share", mem.family_id, nonce, share)
        cipher = m.aead.cipher(keys.encd)
        aad = chunk_aad(bytes(BUNDLE_ID_LEN), 0)
        link = CHAIN_END
        view = memoryview(firmware)
        for i in reversed(range(n)):
            plain = view[i * chunk_size : (i + 1) * chunk_size]
            c = m.aead.seal(cipher, chunk_nonce(entry.nonce, i, i == n - 1), plain, aad)  # type: ignore[arg-type]  # AESGCM takes any buffer
            link = tag_link(sealed_tag(c), link)
        cmac_tag(keys.auth, message.mac_structure())

    return _median(once, rounds)


def write_floor_seconds(d: Path, size: int, rounds: int) -> float:
    """Median seconds of writing ``size`` bytes to a new file in one call and one fsync."""
    data = os.urandom(MiB) * (size // MiB) + os.urandom(size % MiB)

    def once(k: list[int] = [0]) -> None:  # noqa: B006 - a counter across calls
        k[0] += 1
        path = d / f"write-floor-{k[0]}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()

    return _median(once, rounds)


def _median(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mib", type=int, default=64, help="firmware size in MiB")
    ap.add_argument(
        "--chunk-size", type=int, default=None, help="the bundle's chunk size (default: keygen's)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument(
        "--spsdk-venv",
        type=Path,
        default=Path.home() / ".cache" / "trustprov-bench" / "spsdk-venv",
        help="SPSDK's virtual environment (made if missing)",
    )
    ap.add_argument("--no-spsdk", action="store_true", help="skip the SPSDK comparison")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustprov-seal-", dir=args.dir) as tmp:
        root = Path(tmp)
        family = make_family(root)
        toml = write_assets(root / "assets", args.mib, args.chunk_size)
        assets = asset_list.load(toml)
        firmware = (root / "assets" / "app.bin").read_bytes()

        def keygen(k: list[int] = [0]) -> None:  # noqa: B006 - a counter across calls
            k[0] += 1
            out = root / f"oem-{k[0]}"
            oem.keygen(
                family.oem_farm,
                family.oem_uid,
                software_path=family.software,
                assets=assets,
                out=out,
            )
            if k[0] > 1:
                shutil.rmtree(out)

        achieved = _median(keygen, args.rounds)
        bundle = BundleFile(root / "oem-1" / "bundle.cbor")
        floor = floor_seconds(family, firmware, bundle, args.rounds)
        del firmware
        write_floor = write_floor_seconds(root, bundle.size, args.rounds)
        process_s = _process(root, family, toml, args.rounds)
        ratio = achieved / floor
        chunk_size = bundle.manifest.chunk_size
        _say(
            f"OEM sealing of {args.mib} MiB ({chunk_size}-byte chunks): {achieved:.3f} s "
            f"in-process, {process_s:.3f} s as a process; floor {floor:.3f} s; "
            f"ratio {ratio:.2f}; write floor {write_floor:.3f} s, ratio to both floors "
            f"{achieved / (floor + write_floor):.2f}"
        )
        spsdk = {}
        if args.no_spsdk:
            _say("SPSDK comparison skipped: --no-spsdk")
        else:
            try:
                spsdk_s = spsdk_sb31.export_seconds(
                    args.spsdk_venv, root / "spsdk", root / "assets" / "app.bin"
                )
            except spsdk_sb31.Unavailable as e:
                _say(f"SPSDK comparison skipped: {e}")
            else:
                spsdk = {
                    "spsdk_seconds": round(spsdk_s, 3),
                    "spsdk_ratio": round(spsdk_s / process_s, 1),
                }
                _say(
                    f"nxpimage sb31 export of the same firmware: {spsdk_s:.2f} s, "
                    f"{spsdk_s / process_s:.1f}x the trustprov oem keygen process"
                )
    print(
        json.dumps(
            {
                "seal_mib": args.mib,
                "seal_chunk_size": chunk_size,
                "seal_seconds": round(achieved, 3),
                "seal_process_seconds": round(process_s, 3),
                "seal_floor_seconds": round(floor, 3),
                "seal_ratio": round(ratio, 2),
                "seal_write_floor_seconds": round(write_floor, 3),
                "seal_ratio_with_write": round(achieved / (floor + write_floor), 2),
                **spsdk,
            }
        )
    )
    return 0


def _bytecode() -> None:
    """trustprov's modules compiled once before the timed processes, into their __pycache__
    (ignored by git), as pip compiles a package it installs and did SPSDK's: a checkout run with
    PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process, a sixth of
    its time."""
    package = Path(trustprov.__file__).parent
    subprocess.run(  # noqa: S603 - the standard library's compileall over our package
        [sys.executable, "-m", "compileall", "-q", str(package)], check=True
    )


def _process(root: Path, fam: Family, toml: Path, rounds: int) -> float:
    """Median seconds of one `trustprov oem keygen` process, start-up included."""
    argv = [
        sys.executable,
        "-m",
        "trustprov",
        "oem",
        "keygen",
        "--farm",
        str(fam.oem_farm),
        "--chip",
        fam.oem_uid.hex(),
        "--software",
        str(fam.software),
        "--assets",
        str(toml),
        "--out",
    ]
    _bytecode()
    samples = []
    for k in range(rounds):
        t = time.perf_counter()
        out = str(root / f"oem-process-{k}")
        subprocess.run([*argv, out], check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - our CLI
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
