"""Known-answer vectors of trustprov's reference cryptographic construction.

Every input below is fixed (hard-coded hex); every output is computed with trustprov's own code
and written to ``vectors.json`` beside this file, which is checked in. ``test_vectors.py``
recomputes each output from the inputs recorded in the JSON, so any change of a byte format (a
label, a header, an encoding, a nonce layout) fails the tests until the vectors are regenerated on
purpose and the change is documented in docs/protocol.md.

Run from any directory::

    python tests/vectors/generate.py
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from trustprov.crypto.aead import AEADS, cmac_tag
from trustprov.crypto.digest import chain_head, chain_links, sealed_tag
from trustprov.crypto.kdf import kdf
from trustprov.crypto.keys import (
    MATERIAL_LEN,
    SUITES,
    PrivateKey,
    private_key_bytes,
    private_key_from_material,
    public_key_der,
)
from trustprov.crypto.schedule import (
    asset_material,
    derive_keys,
    f_oem_share,
    g_master_key,
    h_seed,
)
from trustprov.errors import ArtifactError
from trustprov.formats import cbor, cose
from trustprov.formats.authz import AuthorizedSet, leaf_hash
from trustprov.formats.bundle import (
    AssetEntry,
    Bundle,
    Manifest,
    SignedManifest,
    chunk_aad,
    chunk_count,
    chunk_nonce,
    chunk_plain_len,
)
from trustprov.formats.deflate import deflate as deflate_chunk
from trustprov.formats.frame import FrameType, LinkInfo, encode_frame, encode_hello
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware

OUT = Path(__file__).resolve().parent / "vectors.json"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- fixed inputs ----------------------------------------------------------------------------
# the AES-256 key of NIST SP 800-38B's CMAC examples, as a KDF key
KDF_KEY = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
KDF_KEY_2 = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
OEM_RND_INPUT_16 = h("cf37a53b17c92be276df97690dee6553")
OEM_RND_INPUT_32 = h("e6329ac0f2d7dacd493f2e3ee5102a7c5fb0095ba5b7b487d27bb76dcfa13614")
RND_SHARE = h("c3ddfc6fdb422bf6a8f5cfff514d808ccca491a18ddb7b834169cf8b605554bd")
HW_SHARE = h("d2df7e41c0bc259a8958541678c0515b2f9fd6442b80a3352bdd3d709780d3bf")
ROM_SHARE = h("471af325ef663485fa061d27fbdad54f76d01d090e1c61ca5ac0ddd8b4988b5e")
FAMILY_ID = h("175db4c7f73cd8ff")
SEAL_KEY = h("5c4b8a3e1f0d2c6b7a9e8d0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445")
SEAL_NONCE = h("b45265ddd3d0376f9d346d12")
BUNDLE_ID = h("b45265ddd3d0376f9d346d121154ea7c")
AES_KEY_ASSET = h("8f1e2d3c4b5a69788796a5b4c3d2e1f0f0e1d2c3b4a5968778695a4b3c2d1e0f")
CONFIG_ASSET = b"mode=production\nregion=eu\n"

KDF_CASES: list[tuple[bytes, str, bytes, int]] = [
    (KDF_KEY, "F/oem-share", OEM_RND_INPUT_16, 32),
    (KDF_KEY, "F/oem-share", OEM_RND_INPUT_16, 16),  # L is in the fixed input: not a prefix
    (KDF_KEY, "K/domain", FAMILY_ID + b"\x01", 16),
    (KDF_KEY, "H/asset", b"ec-p256\x00signer", 40),
    (KDF_KEY, "H/asset", b"ec-p384\x00attest", 56),
    (KDF_KEY_2, "test/empty-context", b"", 32),
    (KDF_KEY_2, "test/one-byte", h("00"), 1),
    (KDF_KEY_2, "test/multi-block", bytes(range(40)), 100),  # 7 PRF blocks
    (KDF_KEY_2, "test/max", h("ff"), 1024),
]

GENERATED_KEYS = [
    ("ec-p256", "signer"),
    ("ec-p384", "attest"),
    ("ed25519", "update"),
    ("aes-256", "storage"),
]


def firmware_plaintext(n: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(n))


# -- vectors ----------------------------------------------------------------------------------
def kdf_vectors() -> list[dict[str, Any]]:
    return [
        {
            "key": key.hex(),
            "label": label,
            "context": context.hex(),
            "length": length,
            "output": kdf(key, label, context, length).hex(),
        }
        for key, label, context, length in KDF_CASES
    ]


def schedule_vectors() -> dict[str, Any]:
    f, hs = [], []
    for oem_rnd_input in (OEM_RND_INPUT_16, OEM_RND_INPUT_32):
        common = {"oem_rnd_input": oem_rnd_input.hex(), "rnd_share": RND_SHARE.hex()}
        f.append({**common, "oem_share": f_oem_share(oem_rnd_input, RND_SHARE).hex()})
        hs.append({**common, "seed": h_seed(oem_rnd_input, RND_SHARE).hex()})
    g = []
    for entry in f:
        oem_share = h(entry["oem_share"])
        g.append(
            {
                "oem_share": oem_share.hex(),
                "hw_share": HW_SHARE.hex(),
                "rom_share": ROM_SHARE.hex(),
                "k_mk": g_master_key(oem_share, HW_SHARE, ROM_SHARE).hex(),
            }
        )
    keys = []
    for entry in g:
        k = derive_keys(h(entry["k_mk"]), FAMILY_ID)
        keys.append(
            {
                "k_mk": entry["k_mk"],
                "family_id": FAMILY_ID.hex(),
                "enck": k.enck.hex(),
                "encd": k.encd.hex(),
                "auth": k.auth.hex(),
                "domain_id": k.domain_id.hex(),
            }
        )
    return {"f_oem_share": f, "g_master_key": g, "h_seed": hs, "derive_keys": keys}


def generated_key_vectors(seed: bytes) -> list[dict[str, Any]]:
    out = []
    for key_type, name in GENERATED_KEYS:
        length = MATERIAL_LEN[key_type]
        material = asset_material(seed, key_type, name, length)
        entry: dict[str, Any] = {
            "seed": seed.hex(),
            "key_type": key_type,
            "name": name,
            "length": length,
            "material": material.hex(),
        }
        if key_type == "aes-256":
            entry["private"] = material.hex()
            entry["public_spki_der"] = None
        else:
            private = private_key_from_material(key_type, material)
            entry["private"] = private_key_bytes(private).hex()
            entry["public_spki_der"] = public_key_der(private).hex()
        out.append(entry)
    return out


def sealed_vectors() -> list[dict[str, Any]]:
    cases = [
        ("oem-share", h("00" * 32)),
        ("oem-rnd-input", OEM_RND_INPUT_16),
        ("rnd-share", RND_SHARE),
    ]
    return [
        {
            "key": SEAL_KEY.hex(),
            "kind": kind,
            "family_id": FAMILY_ID.hex(),
            "nonce": SEAL_NONCE.hex(),
            "plaintext": plaintext.hex(),
            "cose": SealedValue.seal(SEAL_KEY, kind, FAMILY_ID, SEAL_NONCE, plaintext)
            .to_bytes()
            .hex(),
        }
        for kind, plaintext in cases
    ]


def chunk_vectors() -> dict[str, Any]:
    nonces = [
        (h("0102030405060708"), 0, True),  # CCM prefix, single chunk
        (h("a1a2a3a4a5a6a7"), 0, False),  # GCM prefix, first of several
        (h("a1a2a3a4a5a6a7"), 2, True),
        (h("a1a2a3a4a5a6a7"), 2**32 - 1, True),
    ]
    return {
        "chunk_nonce": [
            {
                "prefix": p.hex(),
                "index": i,
                "last": last,
                "nonce": chunk_nonce(p, i, last).hex(),
            }
            for p, i, last in nonces
        ],
        "chunk_aad": [
            {"bundle_id": BUNDLE_ID.hex(), "asset_index": i, "aad": chunk_aad(BUNDLE_ID, i).hex()}
            for i in (0, 1, 23, 64)
        ],
        # the chain over the chunks' AEAD tags (6.3): the shortest sealed chunk (1 byte and its
        # tag), a 48-byte one, and three of an asset, each with every link h_1..h_{n+1}
        "tag_chain": [
            {
                "chunks": [c.hex() for c in chunks],
                "tags": [sealed_tag(c).hex() for c in chunks],
                "links": [link.hex() for link in chain_links(chunks)],
                "head": chain_head(chunks).hex(),
            }
            for chunks in (
                [b"\x5a" * 17],
                [b"\x00" * 48],
                [firmware_plaintext(272), firmware_plaintext(272)[::-1], b"tail" * 10],
            )
        ],
    }


def deflated_firmware_plaintext(n: int) -> bytes:
    """A firmware-like plaintext that deflates: repeated text with a counter in it."""
    return b"".join(b"trustprov firmware word %04d; " % i for i in range(n // 29 + 1))[:n]


def bundle_vector(
    aead_name: str, keys: dict[str, Any], signer: dict[str, Any], deflate: int | None = None
) -> dict[str, Any]:
    """A whole bundle sealed as the firmware's SealingSession does, with fixed nonce prefixes;
    with ``deflate``, its firmware asset deflated with that window (docs/protocol.md 6.2), each
    chunk's stream recorded as "sealed_plaintexts"."""
    aead = AEADS[aead_name]
    enck, encd, auth = h(keys["enck"]), h(keys["encd"]), h(keys["auth"])
    chunk_size = 256
    prefix_len = aead.nonce_len - 5
    assets: list[dict[str, Any]] = [
        {
            "name": "aes-1",
            "kind": "key",
            "key_type": "aes-256",
            "slot": 1,
            "plaintext": AES_KEY_ASSET.hex(),
        },
        {
            "name": "fw",
            "kind": "firmware",
            "region": "app",
            "plaintext": (
                firmware_plaintext(600) if deflate is None else deflated_firmware_plaintext(600)
            ).hex(),
            **({} if deflate is None else {"deflate": deflate}),
        },
        {"name": "cfg", "kind": "config", "region": "config", "plaintext": CONFIG_ASSET.hex()},
        {
            "name": signer["name"],
            "kind": "key",
            "key_type": signer["key_type"],
            "slot": 8,
            "plaintext": signer["private"],
        },
    ]
    entries, all_chunks = [], []
    for index, a in enumerate(assets):
        a["nonce"] = bytes([0xA0 + index] * prefix_len).hex()
        plaintext = h(a["plaintext"])
        entry = AssetEntry(
            name=a["name"],
            kind=a["kind"],
            length=len(plaintext),
            chunks=chunk_count(len(plaintext), chunk_size),
            nonce=h(a["nonce"]),
            digest=b"",
            key_type=a.get("key_type"),
            slot=a.get("slot"),
            region=a.get("region"),
            deflate=a.get("deflate"),
        )
        key = enck if entry.is_key else encd
        chunks, offset, streams = [], 0, []
        for i in range(entry.chunks):
            n = chunk_plain_len(entry.length, chunk_size, i)
            nonce = chunk_nonce(entry.nonce, i, i == entry.chunks - 1)
            piece = plaintext[offset : offset + n]
            if entry.deflate is not None:  # raw DEFLATE, level 9, as the OEM's host makes it
                piece = deflate_chunk(piece, entry.deflate)
                streams.append(piece.hex())
            chunks.append(aead.seal(key, nonce, piece, chunk_aad(BUNDLE_ID, index)))
            offset += n
        if streams:
            a["sealed_plaintexts"] = streams
        entries.append(dataclasses.replace(entry, digest=chain_head(chunks)))
        all_chunks.append(chunks)
    manifest = Manifest(
        family_id=FAMILY_ID,
        bundle_id=BUNDLE_ID,
        epoch=7,
        min_security_version=2,
        aead=aead,
        chunk_size=chunk_size,
        assets=tuple(entries),
    )
    # exactly as trustprov.firmware.sealing.SealingSession.finish
    header = SignedManifest.protected_header(FAMILY_ID)
    protected = cose.encode_protected(header)
    payload = manifest.to_payload()
    tag = cmac_tag(auth, cose.mac_structure(protected, payload))
    mac0 = cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, payload, tag).to_bytes()
    bundle = Bundle(SignedManifest.from_bytes(mac0), tuple(tuple(c) for c in all_chunks))
    # the installed digest of a chip holding this bundle (docs/protocol.md 6.7), built by hand
    domain_id = h(keys["domain_id"])
    slots = {e.slot: [e.name, e.key_type, e.digest] for e in entries if e.is_key}
    regions = {
        e.region: [e.name, e.length, hashlib.sha256(domain_id + e.digest).digest()]
        for e in entries
        if not e.is_key
    }
    installed = cbor2.dumps(
        ["trustprov-installed", 1, domain_id, BUNDLE_ID, manifest.epoch, slots, regions],
        canonical=True,
    )
    return {
        "aead": aead.name,
        "keys": {"enck": enck.hex(), "encd": encd.hex(), "auth": auth.hex()},
        "family_id": FAMILY_ID.hex(),
        "bundle_id": BUNDLE_ID.hex(),
        "epoch": manifest.epoch,
        "min_svn": manifest.min_security_version,
        "chunk_size": chunk_size,
        "assets": assets,
        "chunks": [[c.hex() for c in chunks] for chunks in all_chunks],
        "digests": [e.digest.hex() for e in entries],
        "manifest_payload": payload.hex(),
        "manifest_mac0": mac0.hex(),
        "bundle": bundle.to_bytes().hex(),
        "domain_id": domain_id.hex(),
        "installed_encoding": installed.hex(),
        "installed_digest": hashlib.sha256(installed).digest().hex(),
    }


# the software signature vectors: keys from fixed seeds; ECDSA and ML-DSA signing are randomized
# here, so these vectors are verify-only and a signature is made once and carried over for as
# long as it still verifies over the same bytes under the same keys
SOFTWARE_CODE = {"firmware/main.py": b"print('trustprov')\n"}
SOFTWARE_KEY_SEEDS = {
    "ES256": h("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"),
    "ML-DSA-65": h("8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"),
    # RFC 8032 7.1 TEST 1's secret key: EdDSA is deterministic, so its image is a signing vector
    "EdDSA": h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
}
#: EdDSA signs deterministically: its image is a full signing vector; the others verify-only
SOFTWARE_SUITES = ("ES256", "EdDSA", "ML-DSA-65", "ES256+ML-DSA-65")
SOFTWARE_FAMILY = h("0102030405060708")


def software_key(alg: str) -> PrivateKey:
    seed = SOFTWARE_KEY_SEEDS[alg]
    if alg == "ML-DSA-65":
        return mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return private_key_from_material("ec-p256", seed)


def software_vectors(previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for suite in SOFTWARE_SUITES:
        keys = [software_key(a) for a in SUITES[suite]]
        image = None
        for old in previous:
            if old.get("suite") != suite:
                continue
            try:
                sw = SignedSoftware.from_bytes(h(old["image"]))
                sw.verify([k.public_key() for k in keys], suite=suite)
            except (ArtifactError, KeyError, ValueError):
                break
            if sw.code == cose_code() and sw.version == "1.0" and sw.security_version == 7:
                image = sw
        if image is None:
            image = SignedSoftware.sign(
                keys,
                alg=suite,
                name="trustprov-provisioning",
                version="1.0",
                security_version=7,
                code=cose_code(),
            )
        spki = [public_key_der(k) for k in keys]
        immutable = ImmutableMemory(
            SOFTWARE_FAMILY,
            *[bytes([n]) * 32 for n in (1, 2, 3, 4)],
            software_keys=tuple(spki),
            software_suite=suite,
        )
        m = image.message
        out.append(
            {
                "suite": suite,
                "key_seeds": [SOFTWARE_KEY_SEEDS[a].hex() for a in SUITES[suite]],
                "public_keys_spki": [k.hex() for k in spki],
                "payload": m.body.hex(),
                "body_protected": m.protected_bytes.hex(),
                "signature_protected": [s.protected_bytes.hex() for s in m.signatures],
                "to_be_signed": [
                    (m.to_be_signed_by(s) if m.signatures else m.to_be_signed()).hex()
                    for s in (m.signatures or [None])  # type: ignore[list-item]
                ],
                "image": image.to_bytes().hex(),
                "immutable": immutable.to_bytes().hex(),
            }
        )
    return out


def cose_code() -> bytes:
    return cbor.encode(SOFTWARE_CODE)


# -- link layer (docs/protocol.md, section 12) ------------------------------------------------
LINK_ID = h("6c1d0a57")
BOOT_ID = h("b0075eed")
STATUS_REQUEST = h("a2626f706a726f6d2e7374617475736461726773a0")  # {"op": "rom.status", "args": {}}
EMPTY_OK = h("a1626f6ba0")  # {"ok": {}}
STUFFED = bytes([0xC0, 0xDB, 0x00, 0xDB, 0xDC, 0xC0, 0xC0])  # every byte that must be escaped
FRAGMENTED = bytes(range(150))  # three fragments at a max frame of 64


def link_frame_vectors() -> list[dict[str, Any]]:
    info = LinkInfo(1, 8, 1024, 4 * 1024 * 1024 + 64 * 1024, BOOT_ID, LINK_ID)
    first = info.first_seq
    cases: list[tuple[str, FrameType, int, int, bytes, bool]] = [
        ("hello", FrameType.HELLO, 0, 0, encode_hello(LINK_ID), False),
        ("hello answer", FrameType.HELLO_ANSWER, 0, 0, info.to_bytes(), False),
        ("request rom.status", FrameType.REQUEST, first, 0, STATUS_REQUEST, False),
        ("ack", FrameType.ACK, first, 0, b"", False),
        ("response ok", FrameType.RESPONSE, first, 0, EMPTY_OK, False),
        ("request with every escape", FrameType.REQUEST, 0xC0DB, 0x00C0, STUFFED, True),
        ("nak", FrameType.NAK, 0xFFFF, 2, b"", False),
        ("reset", FrameType.RESET, 7, 0, b"", False),
        ("error too large", FrameType.ERROR, 9, 3, b"\x01", False),
    ]
    for i in range(3):
        part = FRAGMENTED[i * 64 : (i + 1) * 64]
        cases.append((f"fragment {i} of 3", FrameType.REQUEST, 0x0102, i, part, i < 2))
    return [
        {
            "name": name,
            "type": kind.name,
            "type_byte": int(kind),
            "seq": seq,
            "frag": frag,
            "more": more,
            "payload": payload.hex(),
            "wire": encode_frame(kind, seq, frag, payload, more=more).hex(),
        }
        for name, kind, seq, frag, payload, more in cases
    ]


def link_hello_vector() -> dict[str, Any]:
    info = LinkInfo(1, 8, 1024, 4 * 1024 * 1024 + 64 * 1024, BOOT_ID, LINK_ID)
    return {
        "link_id": LINK_ID.hex(),
        "boot_id": BOOT_ID.hex(),
        "version": info.version,
        "window": info.window,
        "max_frame": info.max_frame,
        "max_message": info.max_message,
        "answer_payload": info.to_bytes().hex(),
        "first_seq": info.first_seq,
    }


def authorized_set_vectors() -> list[dict[str, Any]]:
    """Merkle trees (RFC 9162 section 2.1) of fixed UIDs, a proof per tree, the AUTH file."""
    out = []
    for n, prove in ((1, 0), (5, 4), (7, 2)):
        uids = [bytes([0xA0 + i]) * 16 for i in range(n)]
        s = AuthorizedSet.from_uids(uids, family_id=h("0102030405060708"))
        proof = s.proof(uids[prove])
        out.append(
            {
                "uids": [u.hex() for u in uids],
                "family": "0102030405060708",
                "leaf_hashes": [leaf_hash(u).hex() for u in uids],
                "root": s.root.hex(),
                "proof_uid": uids[prove].hex(),
                "proof_index": proof.index,
                "proof_size": proof.size,
                "proof_path": [p.hex() for p in proof.path],
                "proof_cbor": proof.to_bytes().hex(),
                "auth_file": s.to_bytes().hex(),
            }
        )
    return out


def compute() -> dict[str, Any]:
    schedule = schedule_vectors()
    seed = h(schedule["h_seed"][1]["seed"])
    generated = generated_key_vectors(seed)
    keys = schedule["derive_keys"][0]
    signer = next(g for g in generated if g["key_type"] == "ec-p256")
    return {
        "about": (
            "trustprov known-answer vectors (docs/protocol.md); all byte strings are hex. "
            "Regenerate with: python tests/vectors/generate.py"
        ),
        "kdf": kdf_vectors(),
        **schedule,
        "generated_keys": generated,
        "sealed_value": sealed_vectors(),
        **chunk_vectors(),
        "bundle": [
            *(bundle_vector(name, keys, signer) for name in ("A256GCM", "AES-CCM-16-128-256")),
            bundle_vector("A256GCM", keys, signer, deflate=9),
        ],
        "software": software_vectors(_previous("software")),
        "link_frames": link_frame_vectors(),
        "link_hello": [link_hello_vector()],
        "authorized_set": authorized_set_vectors(),
    }


def _previous(section: str) -> list[dict[str, Any]]:
    if not OUT.is_file():
        return []
    value: list[dict[str, Any]] = json.loads(OUT.read_text(encoding="ascii")).get(section, [])
    return value


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUT.write_text(render(compute()), encoding="ascii")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
