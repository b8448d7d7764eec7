"""The published test family of the conformance suite, from fixed seeds.

FAMILY_ID, HW_SHARE and ROM_SHARE are those of the known-answer vectors (docs/protocol.md
section 11), so the vector bundles install on a chip of this family; K_OEM_SHARE,
K_OEM_MASTER_SHARE and the seeds of the keys are SHA-256 of fixed labels. The OEM values and the
A256GCM vector bundle are copied from ``tests/vectors/vectors.json``. Everything here is public:
a chip burned with this family protects nothing, and a port is burned with it identically.

Writes ``src/trustprov/conformance/test-family.json`` (checked in; ``test_family.py`` fails when
it and this script disagree). Run from any directory::

    python tests/conformance/generate_family.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "vectors.json"
OUT = ROOT / "src" / "trustprov" / "conformance" / "test-family.json"


def seed(label: str) -> str:
    return hashlib.sha256(f"trustprov conformance test family/{label}".encode()).hexdigest()


#: bytes of key material per algorithm of the suites other than EdDSA's own key
SUITE_KEY_LENGTHS = {"ES256": 40, "ES384": 56, "ML-DSA-65": 32, "ML-DSA-87": 32}


def _material(label: str, length: int) -> str:
    """``length`` bytes: the seeds of ``label`` then ``label/2``, concatenated and cut."""
    return (seed(label) + seed(f"{label}/2"))[: 2 * length]


def compute() -> dict[str, Any]:
    v = json.loads(VECTORS.read_text(encoding="utf-8"))
    g = v["g_master_key"][0]
    f = v["f_oem_share"][0]
    bundle = next(b for b in v["bundle"] if b["aead"] == "A256GCM")
    return {
        "about": "trustprov's published conformance test family: public test values, never a "
        "real family (docs/protocol.md, Conformance)",
        "family_id": bundle["family_id"],
        "hw_share": g["hw_share"],
        "rom_share": g["rom_share"],
        "k_oem_share": seed("k-oem-share"),
        "k_oem_master_share": seed("k-oem-master-share"),
        # RFC 8032 private keys: EdDSA signing is deterministic, so signed images are reproducible
        "signing_key_ed25519": seed("software-signing-key"),
        "wrong_key_ed25519": seed("wrong-software-signing-key"),
        # 40 bytes of FIPS 186-5 A.2.1 material for the device CA's P-256 key
        "device_ca_material": (seed("device-ca") + seed("device-ca/2"))[:80],
        "oem_rnd_input": f["oem_rnd_input"],
        "rnd_share": f["rnd_share"],
        "oem_share": f["oem_share"],
        # the signing keys of the other suites (5.1), one per algorithm: FIPS 186-5 A.2.1
        # material (40 bytes P-256, 56 bytes P-384) or the FIPS 204 seed (ML-DSA)
        "suite_keys": {
            alg: _material(f"software-signing-key/{alg}", length)
            for alg, length in SUITE_KEY_LENGTHS.items()
        },
        "wrong_suite_keys": {
            alg: _material(f"wrong-software-signing-key/{alg}", length)
            for alg, length in SUITE_KEY_LENGTHS.items()
        },
        "other_oem_rnd_input": seed("other-oem-rnd-input"),
        "other_rnd_share": seed("other-rnd-share"),
        "bundle": {
            k: bundle[k]
            for k in ("bundle", "bundle_id", "domain_id", "epoch", "min_svn", "installed_digest")
        },
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main() -> None:
    OUT.write_text(render(compute()), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
