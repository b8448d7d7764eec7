"""Seed corpus of a chip-c fuzzer from the repository's vectors (make fuzz).

Usage: seeds.py FUZZER DIR. fuzz_frames: every frame of vectors.json's link_frames and a hello;
fuzz_request: every request of link_messages.json; fuzz_cose: the signed software images of
vectors.json and link_messages.json; fuzz_image: the immutable images of vectors.json;
fuzz_manifest: the vector bundles' manifests and the authorized sets' proofs; fuzz_inflate:
the raw DEFLATE cases of tools/deflate_h.py, each as W - 9, the length - 1 (2 bytes), the stream.
"""

import json
import sys
from pathlib import Path

import cbor2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "chip-c/tools"))

import deflate_h  # noqa: E402 - a sibling tool, found through the path set above


def seeds(fuzzer: str) -> list[bytes]:
    vectors = json.loads((ROOT / "tests/vectors/vectors.json").read_text())
    messages = json.loads((ROOT / "tests/vectors/link_messages.json").read_text())
    requests = [bytes.fromhex(s["request"]) for s in messages["steps"]]
    if fuzzer == "fuzz_frames":
        frames = [bytes.fromhex(f["wire"]) for f in vectors["link_frames"]]
        return [*frames, b"".join(frames)]
    if fuzzer == "fuzz_request":
        return requests
    if fuzzer == "fuzz_cose":
        images = [bytes.fromhex(s["image"]) for s in vectors["software"]]
        for r in requests:
            try:
                decoded = cbor2.loads(r)
            except cbor2.CBORDecodeError:
                decoded = None  # the vector of a request that is not CBOR
            if isinstance(decoded, dict) and decoded.get("op") == "rom.boot":
                images.append(decoded["args"]["image"])
        return images
    if fuzzer == "fuzz_manifest":
        manifests = [b"M" + bytes.fromhex(b["manifest_mac0"]) for b in vectors["bundle"]]
        proofs = [b"P" + bytes.fromhex(s["proof_cbor"]) for s in vectors["authorized_set"]]
        return manifests + proofs
    if fuzzer == "fuzz_inflate":
        return [
            bytes([wbits - 9]) + min(length - 1, 65535).to_bytes(2, "big") + stream
            for _, wbits, stream, length, _ in deflate_h.good() + deflate_h.refused()
        ]
    if fuzzer == "fuzz_image":
        return [bytes.fromhex(s["immutable"]) for s in vectors["software"]]
    raise SystemExit(f"seeds.py: no fuzzer {fuzzer}")


def main() -> None:
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds(sys.argv[1])):
        (out / f"seed-{i:03d}").write_bytes(data)


if __name__ == "__main__":
    main()
