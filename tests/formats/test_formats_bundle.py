"""trustprov.formats.bundle: the manifest, its COSE_Mac0, the bundle file."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import cbor2
import pytest

from trustprov.crypto.aead import A256GCM, AES_CCM_16_128_256, cmac_verify
from trustprov.crypto.digest import CHAIN_END, chain_head, sealed_tag, tag_link
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import (
    KEY_TYPES,
    MIN_CHUNK,
    Bundle,
    Manifest,
    SignedManifest,
    chunk_aad,
    chunk_count,
    chunk_nonce,
    chunk_plain_len,
)
from trustprov.formats.limits import LIMITS


@pytest.fixture(scope="module")
def b(builders: SimpleNamespace) -> SimpleNamespace:
    return builders


@pytest.fixture(scope="module")
def bundle(builders: SimpleNamespace) -> Bundle:
    return builders.seal_bundle()


def key(b: SimpleNamespace, name: str = "k", slot: int = 1, key_type: str = "aes-256", **kw: Any):
    return b.entry(
        name, "key", kw.pop("length", KEY_TYPES[key_type][0]), key_type=key_type, slot=slot, **kw
    )


def payload_with(m: Manifest, **changes: Any) -> bytes:
    doc = cbor2.loads(m.to_payload())
    for k, v in changes.items():
        if v is None:
            doc.pop(k)
        else:
            doc[k] = v
    return cbor.encode(doc)


def asset_with(m: Manifest, index: int = 0, **changes: Any) -> bytes:
    doc = cbor2.loads(m.to_payload())
    for k, v in changes.items():
        if v is None:
            doc["assets"][index].pop(k)
        else:
            doc["assets"][index][k] = v
    return cbor.encode(doc)


# -- Manifest construction ---------------------------------------------------------------------
def test_valid_manifest(b: SimpleNamespace) -> None:
    m = b.manifest((key(b), b.entry("fw", length=1000), b.entry("cfg", "config", 5)))
    assert [a.target for a in m.assets] == ["slot 1", "region r-fw", "region r-cfg"]
    assert m.assets[1].chunks == 4


@pytest.mark.parametrize(
    ("family", "bundle_id"),
    [(bytes(7), bytes(16)), (bytes(9), bytes(16)), (bytes(8), bytes(15)), (bytes(8), bytes(17))],
)
def test_id_lengths(b: SimpleNamespace, family: bytes, bundle_id: bytes) -> None:
    with pytest.raises(FormatError, match="id length"):
        b.manifest(family_id=family, bundle_id=bundle_id)


@pytest.mark.parametrize(
    ("aead", "chunk_size", "ok"),
    [
        (A256GCM, MIN_CHUNK - 1, False),
        (A256GCM, MIN_CHUNK, True),
        (A256GCM, LIMITS.chunk, True),
        (A256GCM, LIMITS.chunk + 1, False),
        (AES_CCM_16_128_256, MIN_CHUNK, True),
        (AES_CCM_16_128_256, 65535, True),
        (AES_CCM_16_128_256, 65536, False),  # CCM's 2-byte length field
        (A256GCM, 0, False),
    ],
)
def test_chunk_size_limits(b: SimpleNamespace, aead: Any, chunk_size: int, ok: bool) -> None:
    def make() -> Manifest:
        e = b.entry("fw", length=100_000, chunk_size=chunk_size if chunk_size else 1, aead=aead)
        return b.manifest((e,), aead=aead, chunk_size=chunk_size)

    if ok:
        assert make().chunk_size == chunk_size
    else:
        with pytest.raises(FormatError, match="chunk size"):
            make()


def test_asset_count(b: SimpleNamespace) -> None:
    with pytest.raises(FormatError, match="assets"):
        b.manifest(())
    many = tuple(b.entry(f"a{i}") for i in range(LIMITS.assets_per_bundle))
    assert len(b.manifest(many).assets) == LIMITS.assets_per_bundle
    with pytest.raises(FormatError, match="assets"):
        b.manifest((*many, b.entry("one-more")))


@pytest.mark.parametrize(
    ("what", "assets"),
    [
        ("name", lambda b: (b.entry("x", region="r1"), b.entry("x", region="r2"))),
        ("name", lambda b: (key(b, "x", slot=1), b.entry("x", region="r2"))),
        ("slot", lambda b: (key(b, "a", slot=3), key(b, "b", slot=3))),
        ("region", lambda b: (b.entry("a", region="app"), b.entry("b", "config", 4, region="app"))),
    ],
)
def test_duplicates(b: SimpleNamespace, what: str, assets: Any) -> None:
    with pytest.raises(FormatError, match=f"duplicate asset {what}"):
        b.manifest(assets(b))


def test_same_number_as_slot_and_in_region_names_is_fine(b: SimpleNamespace) -> None:
    m = b.manifest((key(b, "a", slot=1), b.entry("b", region="1")))
    assert len(m.assets) == 2


@pytest.mark.parametrize(("key_type", "lengths"), KEY_TYPES.items())
def test_key_lengths(b: SimpleNamespace, key_type: str, lengths: tuple[int, ...]) -> None:
    for n in lengths:
        assert b.manifest((key(b, key_type=key_type, length=n),)).assets[0].length == n
    for n in (1, 31, 33, 47, 65):
        if n not in lengths:
            with pytest.raises(FormatError, match="wrong length"):
                b.manifest((key(b, key_type=key_type, length=n),))


@pytest.mark.parametrize("key_type", ["rsa-2048", "aes-128", "", "EC-P256"])
def test_unknown_key_type(b: SimpleNamespace, key_type: str) -> None:
    e = b.entry("k", "key", 32, key_type=key_type, slot=1)
    with pytest.raises(FormatError, match="unknown key type"):
        b.manifest((e,))


def test_key_asset_must_be_one_chunk(b: SimpleNamespace) -> None:
    """Every valid key is at most 64 bytes, below the smallest chunk: a key asset announcing
    more than one chunk never validates."""
    e = dataclasses.replace(key(b), chunks=2)
    with pytest.raises(FormatError, match="chunk"):
        b.manifest((e,))
    raw = dataclasses.replace(key(b, key_type="raw", length=64), chunks=2)
    with pytest.raises(FormatError, match="chunk"):
        b.manifest((raw,))


@pytest.mark.parametrize("chunks", [0, 2, 4, 5])
def test_chunk_count_must_match_length(b: SimpleNamespace, chunks: int) -> None:
    e = dataclasses.replace(b.entry("fw", length=700), chunks=chunks)  # 3 chunks of 256
    with pytest.raises(FormatError, match="chunk count"):
        b.manifest((e,))


def test_empty_asset(b: SimpleNamespace) -> None:
    with pytest.raises(FormatError, match="empty"):
        b.manifest((b.entry("fw", length=0),))


@pytest.mark.parametrize("kind", ["bogus", "KEY"])
def test_unknown_kind_is_refused_on_construction(b: SimpleNamespace, kind: str) -> None:
    """Manifests validate on construction: a kind that from_payload refuses must not build,
    else the firmware MACs a manifest no chip can parse (seal-asset passes kind through)."""
    with pytest.raises(FormatError):
        b.manifest((b.entry("x", kind, 10, region="r"),))


# -- Manifest payload --------------------------------------------------------------------------
@pytest.mark.parametrize("aead", [A256GCM, AES_CCM_16_128_256], ids=["gcm", "ccm"])
def test_payload_round_trip(b: SimpleNamespace, aead: Any) -> None:
    m = b.manifest(
        (
            key(b, "k1", 1, aead=aead),
            key(b, "k2", 255, key_type="ec-p384", aead=aead),
            b.entry("fw", length=5000, aead=aead),
            b.entry("c", "certificate", 300, aead=aead),
        ),
        aead=aead,
        epoch=2**32 - 1,
        min_security_version=7,
    )
    assert Manifest.from_payload(m.to_payload()) == m
    assert cbor2.loads(m.to_payload())["aead"] == aead.cose_id


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 1},
        {"v": 3},
        {"v": 0},
        {"v": True},
        {"v": "1"},
        {"v": None},
        {"family": bytes(7)},
        {"family": "0102030405060708"},
        {"bundle-id": bytes(15)},
        {"epoch": -1},
        {"epoch": 2**32},
        {"min-svn": 2**32},
        {"min-svn": False},
        {"aead": 1},
        {"aead": 31.0},
        {"aead": "A256GCM"},
        {"chunk-size": 255},
        {"chunk-size": LIMITS.chunk + 1},
        {"chunk-size": -256},
        {"assets": []},
        {"assets": {}},
        {"assets": None},
        {"extra": 1},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:30],
)
def test_bad_payload_fields(b: SimpleNamespace, changes: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        Manifest.from_payload(payload_with(b.manifest(), **changes))


@pytest.mark.parametrize("version", [1, 3, 2**40])
def test_another_manifest_version_has_its_own_code(b: SimpleNamespace, version: int) -> None:
    """v1 digests are heads of the old ciphertext chain: a host and a chip refuse such a bundle
    with code bundle-version and a message that says what to do, before reading its fields."""
    with pytest.raises(FormatError, match=f"manifest v{version}") as e:
        Manifest.from_payload(payload_with(b.manifest(), v=version, extra=1))
    assert e.value.code == "bundle-version"
    assert "\n" not in e.value.message
    if version == 1:
        assert "reseal" in e.value.message


def test_manifest_version_is_2(b: SimpleNamespace) -> None:
    assert cbor2.loads(b.manifest().to_payload())["v"] == 2


def test_too_many_assets_in_payload(b: SimpleNamespace) -> None:
    m = b.manifest()
    asset = cbor2.loads(m.to_payload())["assets"][0]
    with pytest.raises(FormatError, match="more than"):
        Manifest.from_payload(payload_with(m, assets=[asset] * (LIMITS.assets_per_bundle + 1)))


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "bogus"},
        {"kind": None},
        {"kind": 1},
        {"name": ""},
        {"name": "n" * 65},
        {"name": None},
        {"region": None},
        {"region": 7},
        {"slot": 1},  # a data asset has no slot
        {"key-type": "aes-256"},
        {"length": 0},
        {"length": -1},
        {"length": 2**40 + 1},
        {"chunks": 2},
        {"chunks": None},
        {"nonce": bytes(8)},  # a CCM prefix in a GCM manifest
        {"nonce": bytes(6)},
        {"digest": bytes(31)},
        {"digest": None},
        {"extra": 0},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:30],
)
def test_bad_data_asset_fields(b: SimpleNamespace, changes: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        Manifest.from_payload(asset_with(b.manifest(), **changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"slot": None},
        {"slot": 256},
        {"slot": -1},
        {"key-type": None},
        {"key-type": "rsa"},
        {"key-type": 1},
        {"region": "app"},
        {"length": 33},
        {"kind": "firmware"},  # now it has a slot and a key type, no region
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:30],
)
def test_bad_key_asset_fields(b: SimpleNamespace, changes: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        Manifest.from_payload(asset_with(b.manifest((key(b),)), **changes))


def test_payload_size_limit(b: SimpleNamespace) -> None:
    m = b.manifest()
    big = payload_with(m, assets=cbor2.loads(m.to_payload())["assets"] + ["x" * LIMITS.manifest])
    with pytest.raises(FormatError, match="exceeds the limit"):
        Manifest.from_payload(big)


def test_huge_unknown_aead_id_is_a_format_error(b: SimpleNamespace) -> None:
    """An AEAD id that is a bignum of thousands of digits: FormatError, not ValueError."""
    with pytest.raises(FormatError):
        Manifest.from_payload(payload_with(b.manifest(), aead=256**2000))


# -- SignedManifest -----------------------------------------------------------------------------
def test_signed_manifest_round_trip(b: SimpleNamespace) -> None:
    m = b.manifest()
    data = b.mac0(m)
    signed = SignedManifest.from_bytes(data)
    assert signed.manifest == m
    assert signed.to_bytes() == data
    assert signed.message.protected == SignedManifest.protected_header(m.family_id)
    cmac_verify(b.AUTH, signed.message.mac_structure(), signed.message.auth)
    with pytest.raises(VerificationError):
        cmac_verify(b.ENCK, signed.message.mac_structure(), signed.message.auth)


def mac0_with(
    b: SimpleNamespace,
    *,
    header: dict[Any, Any] | None = None,
    unprotected: dict[Any, Any] | None = None,
    payload: bytes | None = None,
    tag: bytes = bytes(16),
) -> bytes:
    m = b.manifest()
    h = header if header is not None else SignedManifest.protected_header(m.family_id)
    return cose.CoseMessage(
        cose.TAG_MAC0,
        cose.encode_protected(h),
        h,
        unprotected or {},
        payload if payload is not None else m.to_payload(),
        tag,
    ).to_bytes()


def test_family_mismatch(b: SimpleNamespace) -> None:
    with pytest.raises(FormatError, match="different families"):
        SignedManifest.from_bytes(b.mac0(b.manifest(), header_family=b"OTHERFAM"))


@pytest.mark.parametrize("length", [0, 8, 15, 17, 32])
def test_tag_length(b: SimpleNamespace, length: int) -> None:
    with pytest.raises(FormatError, match="CMAC tag"):
        SignedManifest.from_bytes(mac0_with(b, tag=bytes(length)))


def test_unprotected_refused(b: SimpleNamespace) -> None:
    with pytest.raises(FormatError, match="unprotected"):
        SignedManifest.from_bytes(mac0_with(b, unprotected={4: b"kid"}))


@pytest.mark.parametrize(
    "header",
    [
        {1: 5, 3: "application/vnd.trustprov.manifest+cbor", "tp-family": b"\x01" * 8},  # HMAC
        {1: -65537, 3: "application/cbor", "tp-family": b"\x01" * 8},
        {1: -65537, 3: "application/vnd.trustprov.manifest+cbor"},
        {1: -65537, "tp-family": b"\x01" * 8},
        {1: -65537, 3: "application/vnd.trustprov.manifest+cbor", "tp-family": b"", "x": 1},
    ],
    ids=["hmac", "content-type", "no-family", "no-content-type", "extra"],
)
def test_bad_mac0_header(b: SimpleNamespace, header: dict[Any, Any]) -> None:
    with pytest.raises(FormatError):
        SignedManifest.from_bytes(mac0_with(b, header=header))


def test_signed_manifest_refuses_other_cose(b: SimpleNamespace) -> None:
    m = SignedManifest.from_bytes(b.mac0(b.manifest())).message
    sign1 = cose.CoseMessage(cose.TAG_SIGN1, m.protected_bytes, m.protected, {}, m.body, m.auth)
    with pytest.raises(FormatError, match="COSE_Mac0"):
        SignedManifest.from_bytes(sign1.to_bytes())


def test_manifest_payload_changed_under_the_mac(b: SimpleNamespace) -> None:
    """Parsing does not verify; the CMAC a chip checks does."""
    good = SignedManifest.from_bytes(b.mac0(b.manifest())).message
    other = b.manifest(epoch=99).to_payload()
    forged = cose.CoseMessage(
        cose.TAG_MAC0, good.protected_bytes, good.protected, {}, other, good.auth
    ).to_bytes()
    parsed = SignedManifest.from_bytes(forged)
    assert parsed.manifest.epoch == 99
    with pytest.raises(VerificationError):
        cmac_verify(b.AUTH, parsed.message.mac_structure(), parsed.message.auth)


# -- chunks ------------------------------------------------------------------------------------
def test_chunk_helpers() -> None:
    assert chunk_count(0, 256) == 1
    assert chunk_count(1, 256) == 1
    assert chunk_count(256, 256) == 1
    assert chunk_count(257, 256) == 2
    assert chunk_count(2**40, 256) == 2**32
    assert chunk_nonce(b"P" * 7, 1, False) == b"P" * 7 + b"\x00\x00\x00\x01\x00"
    assert chunk_nonce(b"P" * 8, 2**32 - 1, True) == b"P" * 8 + b"\xff\xff\xff\xff\x01"
    assert cbor2.loads(chunk_aad(b"I" * 16, 3)) == ["tp-chunk", b"I" * 16, 3]


def test_chunk_plain_len(b: SimpleNamespace) -> None:
    e = b.entry("fw", length=700)
    assert [chunk_plain_len(e.length, 256, i) for i in range(e.chunks)] == [256, 256, 188]
    exact = b.entry("fw", length=512)
    assert [chunk_plain_len(exact.length, 256, i) for i in range(exact.chunks)] == [256, 256]


# -- Bundle -------------------------------------------------------------------------------------
def test_bundle_round_trip(bundle: Bundle) -> None:
    data = bundle.to_bytes()
    parsed = Bundle.from_bytes(data)
    assert parsed.to_bytes() == data
    assert parsed.manifest == bundle.manifest
    assert parsed.chunks == bundle.chunks
    assert [len(c) for c in parsed.chunks] == [1, 3, 1]


def test_bundle_layout(bundle: Bundle) -> None:
    magic, version, mac0, assets = cbor2.loads(bundle.to_bytes())
    assert (magic, version) == ("trustprov-bundle", 1)
    assert mac0 == bundle.signed.to_bytes()
    assert [tuple(a) for a in assets] == list(bundle.chunks)


def test_bundle_chunks_open_with_their_keys(b: SimpleNamespace, bundle: Bundle) -> None:
    m = bundle.manifest
    for index, (e, chunks) in enumerate(zip(m.assets, bundle.chunks, strict=True)):
        assert chain_head(list(chunks)) == e.digest
        k = b.ENCK if e.is_key else b.ENCD
        plain = b"".join(
            m.aead.open(
                k, chunk_nonce(e.nonce, i, i == e.chunks - 1), c, chunk_aad(m.bundle_id, index)
            )
            for i, c in enumerate(chunks)
        )
        assert plain == b.plaintext_of(e.name, e.length)


def test_chain_links(bundle: Bundle) -> None:
    for index, e in enumerate(bundle.manifest.assets):
        chunks = bundle.chunks[index]
        links = bundle.chain_links(index)
        assert len(links) == len(chunks)
        assert links[-1] == CHAIN_END
        expected = e.digest
        for c, link in zip(chunks, links, strict=True):
            assert tag_link(sealed_tag(c), link) == expected
            expected = link


def test_bundle_asset_count_mismatch(bundle: Bundle) -> None:
    with pytest.raises(FormatError, match="asset count"):
        Bundle(bundle.signed, bundle.chunks[:-1])
    with pytest.raises(FormatError, match="asset count"):
        Bundle(bundle.signed, (*bundle.chunks, (b"x" * 26,)))


def test_bundle_chunk_count_mismatch(bundle: Bundle) -> None:
    fw = bundle.chunks[1]
    for wrong in (fw[:-1], (*fw, fw[-1]), ()):
        with pytest.raises(FormatError, match="wrong number of chunks"):
            Bundle(bundle.signed, (bundle.chunks[0], wrong, bundle.chunks[2]))


@pytest.mark.parametrize(("chunk", "delta"), [(0, -1), (0, 1), (2, -1), (2, 1), (1, -16)])
def test_bundle_chunk_length_mismatch(bundle: Bundle, chunk: int, delta: int) -> None:
    fw = list(bundle.chunks[1])
    fw[chunk] = fw[chunk][:delta] if delta < 0 else fw[chunk] + bytes(delta)
    with pytest.raises(FormatError, match="wrong length"):
        Bundle(bundle.signed, (bundle.chunks[0], tuple(fw), bundle.chunks[2]))


def bundle_doc(bundle: Bundle) -> list[Any]:
    return cbor2.loads(bundle.to_bytes())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__(0, "trustprov-bundlE"),
        lambda d: d.__setitem__(1, 2),
        lambda d: d.__setitem__(1, True),
        lambda d: d.__setitem__(2, "manifest"),
        lambda d: d.__setitem__(2, d[2][:-1]),
        lambda d: d.__setitem__(3, {}),
        lambda d: d.__setitem__(3, [*d[3], []]),
        lambda d: d[3].__setitem__(0, b"chunk"),
        lambda d: d[3][1].__setitem__(0, "text"),
        lambda d: d[3][1].append(d[3][1][0]),
        lambda d: d[3][1].__setitem__(2, d[3][1][2] + b"\x00"),
        lambda d: d.append(0),
        lambda d: d.pop(),
    ],
    ids=[
        "magic",
        "version",
        "version-bool",
        "manifest-text",
        "manifest-truncated",
        "assets-map",
        "extra-asset",
        "asset-not-list",
        "chunk-text",
        "extra-chunk",
        "chunk-long",
        "five-items",
        "three-items",
    ],
)
def test_bad_bundle_file(bundle: Bundle, mutate: Any) -> None:
    doc = bundle_doc(bundle)
    mutate(doc)
    with pytest.raises(FormatError):
        Bundle.from_bytes(cbor.encode(doc))


@pytest.mark.parametrize("value", [{}, "trustprov-bundle", b"", 1])
def test_bundle_file_not_a_list(value: Any) -> None:
    with pytest.raises(FormatError):
        Bundle.from_bytes(cbor.encode(value))


def test_oversized_chunk_refused(b: SimpleNamespace) -> None:
    data = cbor.encode(["trustprov-bundle", 1, b.mac0(b.manifest()), [[bytes(LIMITS.chunk + 17)]]])
    with pytest.raises(FormatError, match="longer than"):
        Bundle.from_bytes(data)


def test_ccm_bundle_round_trip(b: SimpleNamespace) -> None:
    bundle = b.seal_bundle(aead=AES_CCM_16_128_256, chunk_size=300)
    parsed = Bundle.from_bytes(bundle.to_bytes())
    assert parsed.manifest.aead is AES_CCM_16_128_256
    assert parsed.to_bytes() == bundle.to_bytes()


def test_float_bundle_format_is_refused(bundle: Bundle) -> None:
    """Integer fields must be integers: 1.0 (CBOR f9 3c00) is not the format version 1, even
    though Python compares them equal (the parsers already refuse True for the same reason)."""
    doc = bundle_doc(bundle)
    doc[1] = 1.0
    with pytest.raises(FormatError):
        Bundle.from_bytes(cbor.encode(doc))


def test_float_manifest_version_is_refused(b: SimpleNamespace) -> None:
    with pytest.raises(FormatError):
        Manifest.from_payload(payload_with(b.manifest(), v=1.0))
