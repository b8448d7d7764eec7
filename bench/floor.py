"""Benchmark: the CM's crypto floor per chip, and what the per-asset chain costs in it.

For the demo bundle (a 256 KiB firmware among its assets) and for the same assets with a
16 MiB firmware, it prints the floor per chip exactly as `make bench` measures it
(`bench/provision.py` `crypto_floor_us`: the bare pyca/cryptography calls of one chip), and,
timed in the same run over the same sealed chunks, the three parts of the per-chunk work:
the AEAD opens, the chain the protocol uses now (SHA-256 over each chunk's tag, docs/protocol.md
6.3) and, for comparison, the chain of manifest v1 (SHA-256 over every byte of ciphertext).

    python bench/floor.py [--firmware-mib 16] [--rounds 30]

Progress goes to stderr; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from trustprov.crypto.digest import CHAIN_END, chain_head, sha256
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.demo import make_family, seal_bundle, write_sample_assets
from trustprov.formats.bundle import Bundle, chunk_aad, chunk_nonce
from trustprov.formats.sealed import SealedValue
from trustprov.roles import icm
from trustprov.roles.oem import assets as asset_list

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
from provision import crypto_floor_us
from timing import median_us


def _chunk_parts(root: Path, made: icm.Icm, rounds: int) -> dict[str, float]:
    """Median µs per chip of the AEAD opens, the tag chain and the v1 ciphertext chain."""
    mem = made.immutable
    sealed = SealedValue.from_bytes((root / "oem" / "enc-oem-share.cose").read_bytes())
    keys = derive_keys(
        g_master_key(sealed.open(mem.k_oem_share), mem.hw_share, mem.rom_share), mem.family_id
    )
    bundle = Bundle.from_bytes((root / "oem" / "bundle.cbor").read_bytes())
    m = bundle.manifest
    ciphers = (m.aead.cipher(keys.enck), m.aead.cipher(keys.encd))

    def opens() -> None:
        for a, entry in enumerate(m.assets):
            key = ciphers[0] if entry.is_key else ciphers[1]
            aad = chunk_aad(m.bundle_id, a)
            for i, c in enumerate(bundle.chunks[a]):
                m.aead.open(key, chunk_nonce(entry.nonce, i, i == entry.chunks - 1), c, aad)

    def tag_chain() -> None:
        for chunks in bundle.chunks:
            chain_head(list(chunks))

    def ciphertext_chain() -> None:  # manifest v1: h_i = SHA-256(sealed_i || h_{i+1})
        for chunks in bundle.chunks:
            link = CHAIN_END
            for c in reversed(chunks):
                link = sha256(c, link)

    return {
        "aead_open": median_us(opens, rounds),
        "tag_chain": median_us(tag_chain, rounds),
        "v1_ciphertext_chain": median_us(ciphertext_chain, rounds),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--firmware-mib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=30, help="timed rounds per figure")
    args = ap.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="trustprov-floor-") as tmp:
        base = Path(tmp)
        (base / "family").mkdir()
        family = make_family(base / "family")
        for label, firmware in (
            ("demo", None),
            (f"firmware_{args.firmware_mib}mib", args.firmware_mib << 20),
        ):
            root = base / label
            toml = write_sample_assets(root / "assets")
            if firmware is not None:
                (root / "assets" / "firmware.bin").write_bytes(os.urandom(firmware))
            (root / "icm").mkdir()
            (root / "icm" / "provisioning-software.cose").write_bytes(family.software.read_bytes())
            seal_bundle(root, family, asset_list.load(toml))
            floor, parts = crypto_floor_us(root, family.icm, rounds=args.rounds)
            chunk = _chunk_parts(root, family.icm, args.rounds)
            figures[label] = {
                "floor_us": round(floor, 1),
                "floor_parts_us": {k: round(v, 1) for k, v in parts.items()},
                "chunk_parts_us": {k: round(v, 1) for k, v in chunk.items()},
                "v1_floor_us": round(floor - chunk["tag_chain"] + chunk["v1_ciphertext_chain"], 1),
            }
            _say(
                f"{label}: floor {floor:.0f} us per chip ("
                + ", ".join(f"{k} {v:.0f}" for k, v in parts.items())
                + f"); chain over tags {chunk['tag_chain']:.0f} us, over every ciphertext "
                f"byte (v1) {chunk['v1_ciphertext_chain']:.0f} us, "
                f"AEAD opens {chunk['aead_open']:.0f} us"
            )
    print(json.dumps({"floor": figures}))
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
