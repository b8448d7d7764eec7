"""Recompute every known-answer vector of vectors.json with trustprov's code, and check the
construction byte for byte against independent re-implementations built here from
pyca/cryptography's raw primitives (AES-CMAC, SHA-256) and hashlib.

A failure here means a byte format changed. If the change is deliberate, regenerate with
``python tests/vectors/generate.py`` and document it in docs/protocol.md.
"""

from __future__ import annotations

import binascii
import hashlib
import importlib.util
import json
import zlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trustprov.crypto.aead import AEADS, cmac_tag, cmac_verify
from trustprov.crypto.digest import chain_head, chain_links
from trustprov.crypto.kdf import kdf
from trustprov.crypto.keys import (
    SIGNATURE_ALGORITHMS,
    SUITES,
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
from trustprov.errors import VerificationError
from trustprov.formats import cose
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
from trustprov.formats.deflate import deflate, inflate
from trustprov.formats.frame import Frame, FrameDecoder, FrameType, LinkInfo, encode_frame
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.installed import expected_installed_digest
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages

VECTORS_PATH = Path(__file__).resolve().parent / "vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="ascii"))
SECTIONS = {
    "authorized_set",
    "software",
    "kdf",
    "f_oem_share",
    "g_master_key",
    "h_seed",
    "derive_keys",
    "generated_keys",
    "sealed_value",
    "chunk_nonce",
    "chunk_aad",
    "tag_chain",
    "bundle",
    "link_frames",
    "link_hello",
}
ORDERS = {
    "ec-p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ec-p384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def cases(section: str) -> list[Any]:
    return [pytest.param(v, id=f"{section}-{i}") for i, v in enumerate(VECTORS[section])]


# -- an independent SP 800-108r1 counter-mode KDF, from the spec --------------------------------
def aes_cmac(key: bytes, message: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(message)
    return c.finalize()


def reference_kdf(key: bytes, label: str, context: bytes, length: int) -> bytes:
    """K(i) = PRF(K_IN, [i]_32 || Label || 0x00 || Context || [L]_32), L in bits, i from 1."""
    out = b""
    i = 1
    while len(out) < length:
        fixed = (
            i.to_bytes(4, "big")
            + label.encode("ascii")
            + b"\x00"
            + context
            + (length * 8).to_bytes(4, "big")
        )
        out += aes_cmac(key, fixed)
        i += 1
    return out[:length]


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def test_every_section_is_present_and_non_empty() -> None:
    assert VECTORS.keys() >= SECTIONS
    for section in SECTIONS:
        assert VECTORS[section], section


def test_vectors_file_is_what_the_generator_writes() -> None:
    """vectors.json is stable: sorted keys, two-space indent, a final newline."""
    text = VECTORS_PATH.read_text(encoding="ascii")
    assert text == json.dumps(VECTORS, indent=2, sort_keys=True) + "\n"


def test_generator_reproduces_the_checked_in_file() -> None:
    """generate.py run now writes exactly vectors.json: nothing drifted, nothing was dropped."""
    spec = importlib.util.spec_from_file_location(
        "_trustprov_vectors_generate", VECTORS_PATH.with_name("generate.py")
    )
    assert spec is not None
    assert spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.render(generate.compute()) == VECTORS_PATH.read_text(encoding="ascii")


# -- recomputation with the project's code ----------------------------------------------------
@pytest.mark.parametrize("v", cases("kdf"))
def test_kdf(v: dict[str, Any]) -> None:
    out = kdf(h(v["key"]), v["label"], h(v["context"]), v["length"])
    assert out.hex() == v["output"]
    assert len(out) == v["length"]


@pytest.mark.parametrize("v", cases("f_oem_share"))
def test_f_oem_share(v: dict[str, Any]) -> None:
    assert f_oem_share(h(v["oem_rnd_input"]), h(v["rnd_share"])).hex() == v["oem_share"]


def test_f_vectors_cover_both_oem_rnd_input_lengths() -> None:
    assert {len(h(v["oem_rnd_input"])) for v in VECTORS["f_oem_share"]} == {16, 32}


@pytest.mark.parametrize("v", cases("g_master_key"))
def test_g_master_key(v: dict[str, Any]) -> None:
    k_mk = g_master_key(h(v["oem_share"]), h(v["hw_share"]), h(v["rom_share"]))
    assert k_mk.hex() == v["k_mk"]


@pytest.mark.parametrize("v", cases("h_seed"))
def test_h_seed(v: dict[str, Any]) -> None:
    assert h_seed(h(v["oem_rnd_input"]), h(v["rnd_share"])).hex() == v["seed"]


@pytest.mark.parametrize("v", cases("derive_keys"))
def test_derive_keys(v: dict[str, Any]) -> None:
    keys = derive_keys(h(v["k_mk"]), h(v["family_id"]))
    got = {
        "enck": keys.enck.hex(),
        "encd": keys.encd.hex(),
        "auth": keys.auth.hex(),
        "domain_id": keys.domain_id.hex(),
    }
    assert got == {k: v[k] for k in got}


@pytest.mark.parametrize("v", cases("generated_keys"))
def test_generated_keys(v: dict[str, Any]) -> None:
    material = asset_material(h(v["seed"]), v["key_type"], v["name"], v["length"])
    assert material.hex() == v["material"]
    if v["key_type"] == "aes-256":
        assert v["private"] == v["material"]
        assert v["public_spki_der"] is None
        return
    key = private_key_from_material(v["key_type"], material)
    assert private_key_bytes(key).hex() == v["private"]
    assert public_key_der(key).hex() == v["public_spki_der"]


def test_generated_keys_cover_every_asymmetric_type() -> None:
    types = {v["key_type"] for v in VECTORS["generated_keys"]}
    assert {"ec-p256", "ec-p384", "ed25519"} <= types


@pytest.mark.parametrize("v", cases("sealed_value"))
def test_sealed_value(v: dict[str, Any]) -> None:
    sealed = SealedValue.seal(
        h(v["key"]), v["kind"], h(v["family_id"]), h(v["nonce"]), h(v["plaintext"])
    )
    assert sealed.to_bytes().hex() == v["cose"]
    parsed = SealedValue.from_bytes(h(v["cose"]), v["kind"])
    assert parsed.open(h(v["key"])).hex() == v["plaintext"]


@pytest.mark.parametrize("v", cases("chunk_nonce"))
def test_chunk_nonce(v: dict[str, Any]) -> None:
    assert chunk_nonce(h(v["prefix"]), v["index"], v["last"]).hex() == v["nonce"]


@pytest.mark.parametrize("v", cases("chunk_aad"))
def test_chunk_aad(v: dict[str, Any]) -> None:
    assert chunk_aad(h(v["bundle_id"]), v["asset_index"]).hex() == v["aad"]


@pytest.mark.parametrize("v", cases("tag_chain"))
def test_tag_chain(v: dict[str, Any]) -> None:
    chunks = [h(c) for c in v["chunks"]]
    assert chain_head(chunks).hex() == v["head"]
    assert [link.hex() for link in chain_links(chunks)] == v["links"]


def _entry(a: dict[str, Any], chunk_size: int, digest: bytes) -> AssetEntry:
    length = len(h(a["plaintext"]))
    return AssetEntry(
        name=a["name"],
        kind=a["kind"],
        length=length,
        chunks=chunk_count(length, chunk_size),
        nonce=h(a["nonce"]),
        digest=digest,
        key_type=a.get("key_type"),
        slot=a.get("slot"),
        region=a.get("region"),
        deflate=a.get("deflate"),
    )


@pytest.mark.parametrize("v", cases("bundle"))
def test_bundle_chunks_and_digests(v: dict[str, Any]) -> None:
    aead = AEADS[v["aead"]]
    keys = {k: h(x) for k, x in v["keys"].items()}
    bundle_id = h(v["bundle_id"])
    for index, a in enumerate(v["assets"]):
        entry = _entry(a, v["chunk_size"], b"")
        key = keys["enck"] if entry.is_key else keys["encd"]
        plaintext = h(a["plaintext"])
        chunks, offset = [], 0
        for i in range(entry.chunks):
            n = chunk_plain_len(entry.length, v["chunk_size"], i)
            nonce = chunk_nonce(entry.nonce, i, i == entry.chunks - 1)
            aad = chunk_aad(bundle_id, index)
            piece = plaintext[offset : offset + n]
            if entry.deflate is not None:  # the recorded stream inflates to the plaintext
                stream = h(a["sealed_plaintexts"][i])
                assert stream.hex() == deflate(piece, entry.deflate).hex()
                assert zlib.decompress(stream, -entry.deflate) == piece  # zlib's own inflate
                piece = stream
            chunks.append(aead.seal(key, nonce, piece, aad))
            offset += n
        assert [c.hex() for c in chunks] == v["chunks"][index]
        assert chain_head(chunks).hex() == v["digests"][index]


@pytest.mark.parametrize("v", cases("bundle"))
def test_bundle_manifest_mac0_and_file(v: dict[str, Any]) -> None:
    aead = AEADS[v["aead"]]
    family = h(v["family_id"])
    manifest = Manifest(
        family_id=family,
        bundle_id=h(v["bundle_id"]),
        epoch=v["epoch"],
        min_security_version=v["min_svn"],
        aead=aead,
        chunk_size=v["chunk_size"],
        assets=tuple(
            _entry(a, v["chunk_size"], h(d)) for a, d in zip(v["assets"], v["digests"], strict=True)
        ),
    )
    payload = manifest.to_payload()
    assert payload.hex() == v["manifest_payload"]
    header = SignedManifest.protected_header(family)
    protected = cose.encode_protected(header)
    tag = cmac_tag(h(v["keys"]["auth"]), cose.mac_structure(protected, payload))
    mac0 = cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, payload, tag).to_bytes()
    assert mac0.hex() == v["manifest_mac0"]
    chunks = tuple(tuple(h(c) for c in asset) for asset in v["chunks"])
    bundle = Bundle(SignedManifest.from_bytes(mac0), chunks)
    assert bundle.to_bytes().hex() == v["bundle"]


@pytest.mark.parametrize("v", cases("bundle"))
def test_bundle_vector_parses_verifies_and_opens(v: dict[str, Any]) -> None:
    """What a chip does with the bundle: CMAC first, then each chunk against the chain, then
    the AEAD, giving back the recorded plaintexts."""
    bundle = Bundle.from_bytes(h(v["bundle"]))
    m = bundle.signed.message
    cmac_verify(h(v["keys"]["auth"]), m.mac_structure(), m.auth)
    manifest = bundle.manifest
    assert manifest.aead.name == v["aead"]
    for index, (entry, chunks) in enumerate(zip(manifest.assets, bundle.chunks, strict=True)):
        links = bundle.chain_links(index)
        expected = entry.digest
        plaintext = b""
        key = h(v["keys"]["enck" if entry.is_key else "encd"])
        for i, (c, link) in enumerate(zip(chunks, links, strict=True)):
            assert tag_link_by_hand(c, link) == expected
            expected = link
            nonce = chunk_nonce(entry.nonce, i, i == entry.chunks - 1)
            opened = manifest.aead.open(key, nonce, c, chunk_aad(manifest.bundle_id, index))
            if entry.deflate is not None:  # into exactly the chunk's length (6.6 step 7)
                opened = inflate(opened, entry.deflate, entry.plain_len(manifest.chunk_size, i))
            plaintext += opened
        assert plaintext.hex() == v["assets"][index]["plaintext"]


@pytest.mark.parametrize("v", cases("bundle"))
def test_installed_digest_of_a_chip_holding_the_bundle(v: dict[str, Any]) -> None:
    """The host's expected digest (formats.installed) is SHA-256 of the recorded encoding."""
    encoding = h(v["installed_encoding"])
    assert hashlib.sha256(encoding).hexdigest() == v["installed_digest"]
    bundle = Bundle.from_bytes(h(v["bundle"]))
    digest = expected_installed_digest(bundle, h(v["domain_id"]))
    assert digest.hex() == v["installed_digest"]


def test_bundle_vectors_cover_gcm_and_ccm_and_a_deflated_firmware() -> None:
    assert {v["aead"] for v in VECTORS["bundle"]} == {"A256GCM", "AES-CCM-16-128-256"}
    deflated = [a for v in VECTORS["bundle"] for a in v["assets"] if "deflate" in a]
    assert [(a["kind"], a["deflate"]) for a in deflated] == [("firmware", 9)]
    streams = [h(x) for x in deflated[0]["sealed_plaintexts"]]
    assert sum(map(len, streams)) < len(h(deflated[0]["plaintext"])) // 2


# -- independent checks of the byte formats ---------------------------------------------------
KDF_PARAMS = [
    (bytes(range(32)), "F/oem-share", bytes(16), 32),
    (bytes(range(32)), "K/domain", b"family!!\x01", 16),
    (bytes(range(1, 33)), "H/asset", b"ec-p384\x00name", 56),
    (bytes([0xFF] * 32), "x", b"", 1),
    (bytes([0x5A] * 32), "multi", b"ctx", 100),
    (bytes([0x00] * 32), "max", b"\x00\x01", 1024),
]


@pytest.mark.parametrize(("key", "label", "context", "length"), KDF_PARAMS)
def test_kdf_matches_hand_built_sp800_108_counter_mode(
    key: bytes, label: str, context: bytes, length: int
) -> None:
    assert kdf(key, label, context, length) == reference_kdf(key, label, context, length)


@pytest.mark.parametrize("v", cases("kdf"))
def test_kdf_vectors_match_hand_built_counter_mode(v: dict[str, Any]) -> None:
    expected = reference_kdf(h(v["key"]), v["label"], h(v["context"]), v["length"])
    assert expected.hex() == v["output"]


def test_kdf_single_block_is_one_cmac_over_the_fixed_input() -> None:
    key, label, context = bytes(range(32)), "G/master-key", bytes(range(100, 132))
    fixed = b"\x00\x00\x00\x01" + b"G/master-key" + b"\x00" + context + b"\x00\x00\x00\x80"
    assert kdf(key, label, context, 16) == aes_cmac(key, fixed)


@pytest.mark.parametrize("v", cases("f_oem_share"))
def test_f_is_kdf_of_rnd_share_over_oem_rnd_input(v: dict[str, Any]) -> None:
    expected = reference_kdf(h(v["rnd_share"]), "F/oem-share", h(v["oem_rnd_input"]), 32)
    assert expected.hex() == v["oem_share"]


@pytest.mark.parametrize("v", cases("g_master_key"))
def test_g_is_kdf_of_hw_xor_rom_over_oem_share(v: dict[str, Any]) -> None:
    family_key = xor(h(v["hw_share"]), h(v["rom_share"]))
    expected = reference_kdf(family_key, "G/master-key", h(v["oem_share"]), 32)
    assert expected.hex() == v["k_mk"]
    got = g_master_key(h(v["oem_share"]), h(v["hw_share"]), h(v["rom_share"]))
    assert got == expected


def test_g_composition_by_hand_on_fresh_inputs() -> None:
    oem_share, hw, rom = bytes(range(32)), bytes([0xA5] * 32), bytes(range(64, 96))
    expected = reference_kdf(xor(hw, rom), "G/master-key", oem_share, 32)
    assert g_master_key(oem_share, hw, rom) == expected
    # only HW_SHARE xor ROM_SHARE matters: moving bits between the shares changes nothing
    mask = bytes(range(7, 39))
    assert g_master_key(oem_share, xor(hw, mask), xor(rom, mask)) == expected


@pytest.mark.parametrize("v", cases("h_seed"))
def test_h_is_kdf_of_rnd_share_over_oem_rnd_input(v: dict[str, Any]) -> None:
    expected = reference_kdf(h(v["rnd_share"]), "H/seed", h(v["oem_rnd_input"]), 32)
    assert expected.hex() == v["seed"]


@pytest.mark.parametrize("v", cases("derive_keys"))
def test_derived_keys_by_hand(v: dict[str, Any]) -> None:
    k_mk, context = h(v["k_mk"]), h(v["family_id"]) + b"\x01"
    assert reference_kdf(k_mk, "K/enck", context, 32).hex() == v["enck"]
    assert reference_kdf(k_mk, "K/encd", context, 32).hex() == v["encd"]
    assert reference_kdf(k_mk, "K/auth", context, 32).hex() == v["auth"]
    assert reference_kdf(k_mk, "K/domain", context, 16).hex() == v["domain_id"]


@pytest.mark.parametrize("v", cases("generated_keys"))
def test_generated_keys_by_hand(v: dict[str, Any]) -> None:
    """asset = KDF(seed, "H/asset", TYPE || 0x00 || NAME, L); EC: d = (c mod (n-1)) + 1."""
    context = v["key_type"].encode("ascii") + b"\x00" + v["name"].encode("utf-8")
    material = reference_kdf(h(v["seed"]), "H/asset", context, v["length"])
    assert material.hex() == v["material"]
    if v["key_type"] in ORDERS:
        n = ORDERS[v["key_type"]]
        d = int.from_bytes(material, "big") % (n - 1) + 1
        assert d == int(v["private"], 16)
        curve = ec.SECP256R1() if v["key_type"] == "ec-p256" else ec.SECP384R1()
        public = ec.derive_private_key(d, curve).public_key()
        assert public_key_der(public).hex() == v["public_spki_der"]
    elif v["key_type"] == "ed25519":
        public = ed25519.Ed25519PrivateKey.from_private_bytes(material).public_key()
        assert public_key_der(public).hex() == v["public_spki_der"]


@pytest.mark.parametrize("v", cases("chunk_nonce"))
def test_chunk_nonce_layout_by_hand(v: dict[str, Any]) -> None:
    nonce = h(v["nonce"])
    prefix = h(v["prefix"])
    assert nonce[: len(prefix)] == prefix
    assert int.from_bytes(nonce[len(prefix) : len(prefix) + 4], "big") == v["index"]
    assert nonce[len(prefix) + 4 :] == (b"\x01" if v["last"] else b"\x00")


@pytest.mark.parametrize("v", cases("chunk_aad"))
def test_chunk_aad_is_the_cbor_array(v: dict[str, Any]) -> None:
    assert cbor2.loads(h(v["aad"])) == ["tp-chunk", h(v["bundle_id"]), v["asset_index"]]


def tag_link_by_hand(sealed: bytes, next_link: bytes) -> bytes:
    """h_i = SHA-256("tp-tagc" || tag_i || h_{i+1}), tag_i the last 16 bytes of sealed_i (6.3)."""
    return hashlib.sha256(b"tp-tagc" + sealed[-16:] + next_link).digest()


@pytest.mark.parametrize("v", cases("tag_chain"))
def test_tag_chain_by_hand(v: dict[str, Any]) -> None:
    link = bytes(32)
    links = [link]
    for c, tag in zip(reversed(v["chunks"]), reversed(v["tags"]), strict=True):
        assert h(c)[-16:] == h(tag)
        link = tag_link_by_hand(h(c), link)
        links.insert(0, link)
    assert link.hex() == v["head"]
    assert [x.hex() for x in links] == v["links"]


@pytest.mark.parametrize("v", cases("tag_chain"))
def test_tag_chain_ignores_the_ciphertext_before_the_tag(v: dict[str, Any]) -> None:
    """Only the tag enters a link: the AEAD, which verifies that tag over the ciphertext, binds
    the rest. A chip must still refuse such a chunk, by its AEAD (tests/attacks)."""
    chunks = [h(c) for c in v["chunks"]]
    changed = [bytes(len(c) - 16) + c[-16:] for c in chunks]
    assert chain_head(changed).hex() == v["head"]


@pytest.mark.parametrize("v", cases("sealed_value"))
def test_sealed_value_layout_by_hand(v: dict[str, Any]) -> None:
    """COSE_Encrypt0 = 16([protected bstr, {5: iv}, ciphertext]); AAD = Enc_structure."""
    value = cbor2.loads(h(v["cose"]))
    assert isinstance(value, cbor2.CBORTag)
    assert value.tag == 16
    protected, unprotected, ciphertext = value.value
    assert cbor2.loads(protected) == {
        1: 3,
        "tp-value": v["kind"],
        "tp-family": h(v["family_id"]),
    }
    assert unprotected == {5: h(v["nonce"])}
    aad = cbor2.dumps(["Encrypt0", protected, b""])
    assert AESGCM(h(v["key"])).decrypt(h(v["nonce"]), ciphertext, aad).hex() == v["plaintext"]


@pytest.mark.parametrize("v", cases("bundle"))
def test_manifest_mac0_layout_by_hand(v: dict[str, Any]) -> None:
    """COSE_Mac0 = 17([protected, {}, payload, tag]); tag = AES-CMAC(K_AUTH, MAC_structure)."""
    value = cbor2.loads(h(v["manifest_mac0"]))
    assert value.tag == 17
    protected, unprotected, payload, tag = value.value
    assert cbor2.loads(protected) == {
        1: -65537,
        3: "application/vnd.trustprov.manifest+cbor",
        "tp-family": h(v["family_id"]),
    }
    assert unprotected == {}
    assert payload.hex() == v["manifest_payload"]
    mac_structure = cbor2.dumps(["MAC0", protected, b"", payload])
    assert aes_cmac(h(v["keys"]["auth"]), mac_structure) == tag
    fields = cbor2.loads(payload)
    assert fields["v"] == 2  # the chain over the tags (protocol.md 6.3)
    assert fields["aead"] == AEADS[v["aead"]].cose_id
    assert [a["digest"].hex() for a in fields["assets"]] == v["digests"]
    for a, chunks in zip(fields["assets"], v["chunks"], strict=True):
        link = bytes(32)
        for c in reversed(chunks):
            link = tag_link_by_hand(h(c), link)
        assert a["digest"] == link
    bundle = cbor2.loads(h(v["bundle"]))
    assert bundle[:3] == ["trustprov-bundle", 1, h(v["manifest_mac0"])]
    assert [[c.hex() for c in a] for a in bundle[3]] == v["chunks"]


# -- software signatures (EdDSA: signing vector; ECDSA and ML-DSA, randomized: verify-only) ----
@pytest.mark.parametrize("v", VECTORS["software"], ids=lambda v: v["suite"])
def test_software_signature_vectors(v: dict[str, Any]) -> None:
    """The keys come from their seeds (ML-DSA: FIPS 204 seed; P-256: FIPS 186-5 A.2.1), the
    image's layout is the documented one byte for byte, every signature verifies over its
    ToBeSigned, and the immutable memory names exactly the suite and its keys."""
    suite = v["suite"]
    algs = SUITES[suite]
    private = [
        mldsa.MLDSA65PrivateKey.from_seed_bytes(bytes.fromhex(seed))
        if alg == "ML-DSA-65"
        else ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
        if alg == "EdDSA"
        else private_key_from_material("ec-p256", bytes.fromhex(seed))
        for alg, seed in zip(algs, v["key_seeds"], strict=True)
    ]
    keys = [k.public_key() for k in private]
    assert [public_key_der(k).hex() for k in keys] == v["public_keys_spki"]
    image = bytes.fromhex(v["image"])
    sw = SignedSoftware.from_bytes(image)
    assert sw.alg == suite
    m = sw.message
    assert m.protected_bytes.hex() == v["body_protected"]
    assert m.body.hex() == v["payload"]
    assert [s.protected_bytes.hex() for s in m.signatures] == v["signature_protected"]
    tagged = cbor2.loads(image)
    if len(algs) == 1:
        assert tagged.tag == 18
        assert cbor2.loads(m.protected_bytes)[1] == SIGNATURE_ALGORITHMS[suite].cose_id
        tbs = [cbor2.dumps(["Signature1", m.protected_bytes, b"", m.body])]
        sigs = [m.auth]
    else:
        assert tagged.tag == 98
        assert 1 not in cbor2.loads(m.protected_bytes)  # the algorithms are per signature
        assert [cbor2.loads(s.protected_bytes) for s in m.signatures] == [
            {1: SIGNATURE_ALGORITHMS[a].cose_id} for a in algs
        ]
        tbs = [
            cbor2.dumps(["Signature", m.protected_bytes, s.protected_bytes, b"", m.body])
            for s in m.signatures
        ]
        sigs = [s.signature for s in m.signatures]
    assert [t.hex() for t in tbs] == v["to_be_signed"]
    for alg, key, sig, t in zip(algs, keys, sigs, tbs, strict=True):
        SIGNATURE_ALGORITHMS[alg].verify(key, sig, t)
    sw.verify(keys, suite=suite)
    if suite == "EdDSA":  # deterministic (RFC 8032): a signing vector, byte for byte
        again = SignedSoftware.sign(
            private,
            alg=suite,
            name=sw.name,
            version=sw.version,
            security_version=sw.security_version,
            code=m.body,
        )
        assert again.to_bytes() == image
    if len(keys) > 1:
        with pytest.raises(VerificationError):
            sw.verify(keys[::-1], suite=suite)
    mem = ImmutableMemory.from_bytes(bytes.fromhex(v["immutable"]))
    assert (mem.software_suite, [k.hex() for k in mem.software_keys]) == (
        suite,
        v["public_keys_spki"],
    )
    puk = cbor2.loads(bytes.fromhex(v["immutable"]))[5]
    if len(algs) == 1:
        assert puk == bytes.fromhex(v["public_keys_spki"][0])
    else:
        assert puk == [
            [SIGNATURE_ALGORITHMS[a].cose_id, bytes.fromhex(k)]
            for a, k in zip(algs, v["public_keys_spki"], strict=True)
        ]


# -- link frames (docs/protocol.md, section 12) --------------------------------------------------
@pytest.mark.parametrize("v", cases("link_frames"))
def test_link_frame(v: dict[str, Any]) -> None:
    kind = FrameType[v["type"]]
    wire = encode_frame(kind, v["seq"], v["frag"], h(v["payload"]), more=v["more"])
    assert wire.hex() == v["wire"]
    assert FrameDecoder().feed(h(v["wire"])) == [
        Frame(kind, v["seq"], v["frag"], h(v["payload"]), v["more"])
    ]


def slip_by_hand(body: bytes) -> bytes:
    out = bytearray([0xC0])
    for b in body:
        out += {0xC0: b"\xdb\xdc", 0xDB: b"\xdb\xdd"}.get(b, bytes([b]))
    out.append(0xC0)
    return bytes(out)


@pytest.mark.parametrize("v", cases("link_frames"))
def test_link_frame_layout_by_hand(v: dict[str, Any]) -> None:
    """header = type [1] || flags [1] || seq [2] || frag [2] || len [2];
    body = header || payload || CRC-32(payload || header) [4]; SLIP-stuffed between 0xC0."""
    payload = h(v["payload"])
    header = (
        bytes([v["type_byte"], 1 if v["more"] else 0])
        + v["seq"].to_bytes(2, "big")
        + v["frag"].to_bytes(2, "big")
        + len(payload).to_bytes(2, "big")
    )
    body = header + payload + (binascii.crc32(payload + header) & 0xFFFFFFFF).to_bytes(4, "big")
    assert slip_by_hand(body).hex() == v["wire"]


def test_link_frames_cover_every_type_and_the_escapes() -> None:
    assert {v["type"] for v in VECTORS["link_frames"]} == {t.name for t in FrameType}
    wires = [h(v["wire"]) for v in VECTORS["link_frames"]]
    assert any(b"\xdb\xdc" in w and b"\xdb\xdd" in w for w in wires)
    status = next(v for v in VECTORS["link_frames"] if v["name"] == "request rom.status")
    assert h(status["payload"]) == messages.encode_request("rom.status", {})


@pytest.mark.parametrize("v", cases("link_hello"))
def test_link_hello_answer(v: dict[str, Any]) -> None:
    ids = h(v["boot_id"]), h(v["link_id"])
    info = LinkInfo(v["version"], v["window"], v["max_frame"], v["max_message"], *ids)
    assert info.to_bytes().hex() == v["answer_payload"]
    by_hand = (
        bytes([v["version"], v["window"]])
        + v["max_frame"].to_bytes(2, "big")
        + v["max_message"].to_bytes(4, "big")
        + h(v["boot_id"])
        + h(v["link_id"])
    )
    assert by_hand.hex() == v["answer_payload"]
    first = int.from_bytes(h(v["boot_id"])[:2], "big") ^ int.from_bytes(h(v["link_id"])[:2], "big")
    assert info.first_seq == first == v["first_seq"]


# -- the authorized set (formats/authz.py; RFC 9162 section 2.1) ---------------------------------
def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 by hand, with hashlib: the recursive definition."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while 2 * k < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(m, D[n]) by hand, recursively."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while 2 * k < n:
        k *= 2
    if m < k:
        return [*_audit_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_audit_path(m - k, leaves[k:]), _mth(leaves[:k])]


@pytest.mark.parametrize("v", cases("authorized_set"))
def test_authorized_set(v: dict[str, Any]) -> None:
    from trustprov.formats.authz import (  # noqa: PLC0415 - beside its only use
        AuthorizedSet,
        InclusionProof,
        verify_inclusion,
    )

    uids = [bytes.fromhex(u) for u in v["uids"]]
    s = AuthorizedSet.from_bytes(bytes.fromhex(v["auth_file"]))
    assert s.uids == uids
    assert s.root.hex() == v["root"]
    assert [hashlib.sha256(b"\x00" + u).hexdigest() for u in uids] == v["leaf_hashes"]
    assert _mth(uids).hex() == v["root"]
    uid = bytes.fromhex(v["proof_uid"])
    m = uids.index(uid)
    assert (v["proof_index"], v["proof_size"]) == (m, len(uids))
    assert [p.hex() for p in _audit_path(m, uids)] == v["proof_path"]
    proof = InclusionProof.from_bytes(bytes.fromhex(v["proof_cbor"]))
    assert cbor2.loads(bytes.fromhex(v["proof_cbor"])) == [
        m,
        len(uids),
        [bytes.fromhex(p) for p in v["proof_path"]],
    ]
    verify_inclusion(bytes.fromhex(v["root"]), uid, proof, size=len(uids))
    assert cbor2.loads(bytes.fromhex(v["auth_file"])) == [
        "trustprov-authorized",
        1,
        bytes.fromhex(v["family"]),
        bytes.fromhex(v["root"]),
        b"".join(uids),
    ]
