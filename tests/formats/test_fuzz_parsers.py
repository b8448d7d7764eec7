"""Property tests of every parser of untrusted bytes, and round trips of the valid artifacts.

Every parser, fed random bytes, random CBOR (or JSON), valid artifacts with flipped bits or cut
short, or valid artifacts with a field replaced deep inside, either returns a value of its type
or raises a `TrustprovError` subclass: never another exception.

Shared references (CBOR tags 28/29) are left out of the generated inputs: they can build
cyclic or exponentially shared structures, and a parser that loops on them would hang the suite
instead of failing it. `test_formats_cbor.py` checks them in a child process with a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustprov.crypto.aead import A256GCM, AES_CCM_16_128_256
from trustprov.errors import ChipRefused, FormatError, TransportError, TrustprovError
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import (
    ASSET_KINDS,
    KEY_TYPES,
    MIN_CHUNK,
    AssetEntry,
    Bundle,
    Manifest,
    SignedManifest,
    chunk_count,
)
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS
from trustprov.formats.lot import LotChip, LotManifest
from trustprov.formats.sealed import PLAINTEXT_LENS, SEALED_KINDS, SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUND_TRIP = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "cbor.decode": lambda d: cbor.decode(
        d, limit=LIMITS.manifest, what="fuzz", tags=cose.COSE_TAGS
    ),
    "cose.decode-sign1": lambda d: cose.decode(
        d, cose.TAG_SIGN1, limit=LIMITS.software, what="fuzz", shape=LIMITS.software_shape
    ),
    "cose.decode-encrypt0": lambda d: cose.decode(
        d,
        cose.TAG_ENCRYPT0,
        limit=LIMITS.sealed_value,
        what="fuzz",
        shape=LIMITS.sealed_value_shape,
    ),
    "cose.decode-mac0": lambda d: cose.decode(
        d, cose.TAG_MAC0, limit=LIMITS.manifest, what="fuzz", shape=LIMITS.manifest_shape
    ),
    "SignedSoftware.from_bytes": SignedSoftware.from_bytes,
    "SealedValue.from_bytes": SealedValue.from_bytes,
    "SealedValue.from_bytes-expected": lambda d: SealedValue.from_bytes(d, "oem-share"),
    "SignedManifest.from_bytes": SignedManifest.from_bytes,
    "Manifest.from_payload": Manifest.from_payload,
    "Bundle.from_bytes": Bundle.from_bytes,
    "LotManifest.from_json": LotManifest.from_json,
    "ImmutableMemory.from_bytes": ImmutableMemory.from_bytes,
    "decode_request": messages.decode_request,
    "decode_response": messages.decode_response,
}
RESULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "cbor.decode": object,
    "cose.decode-sign1": cose.CoseMessage,
    "cose.decode-encrypt0": cose.CoseMessage,
    "cose.decode-mac0": cose.CoseMessage,
    "SignedSoftware.from_bytes": SignedSoftware,
    "SealedValue.from_bytes": SealedValue,
    "SealedValue.from_bytes-expected": SealedValue,
    "SignedManifest.from_bytes": SignedManifest,
    "Manifest.from_payload": Manifest,
    "Bundle.from_bytes": Bundle,
    "LotManifest.from_json": LotManifest,
    "ImmutableMemory.from_bytes": ImmutableMemory,
    "decode_request": tuple,
    "decode_response": dict,
}
SOFTWARE = ["software-ES256", "software-ES384", "software-EdDSA"]
#: artifact -> (the valid samples its mutations start from, every parser that takes it)
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "software": (SOFTWARE, ["cbor.decode", "cose.decode-sign1", "SignedSoftware.from_bytes"]),
    "sealed": (
        ["sealed"],
        [
            "cbor.decode",
            "cose.decode-encrypt0",
            "SealedValue.from_bytes",
            "SealedValue.from_bytes-expected",
        ],
    ),
    "manifest-mac0": (
        ["manifest-mac0"],
        ["cbor.decode", "cose.decode-mac0", "SignedManifest.from_bytes"],
    ),
    "manifest-payload": (["manifest-payload"], ["cbor.decode", "Manifest.from_payload"]),
    "bundle": (["bundle"], ["cbor.decode", "Bundle.from_bytes"]),
    "lot": (["lot"], ["LotManifest.from_json"]),
    "immutable": (["immutable", "immutable-hybrid"], ["cbor.decode", "ImmutableMemory.from_bytes"]),
    # the ES256+ML-DSA-65 hybrid is a COSE_Sign (tag 98), not for the Sign1 decoder
    "software-hybrid": (["software-hybrid"], ["cbor.decode", "SignedSoftware.from_bytes"]),
    "request": (["request"], ["cbor.decode", "decode_request"]),
    "response": (["response-ok", "response-error"], ["cbor.decode", "decode_response"]),
}
CBOR_GROUPS = [g for g in GROUPS if g != "lot"]
CBOR_PARSERS = [p for p in PARSERS if p != "LotManifest.from_json"]


def parse_or_refuse(name: str, data: bytes) -> Any:
    """The parser's result, or None if it refused with a TrustprovError; anything else raised
    propagates and fails the property."""
    try:
        result = PARSERS[name](data)
    except TrustprovError:
        return None
    assert isinstance(result, RESULT_TYPES[name])
    return result


def test_every_parser_is_fuzzed_from_valid_artifacts(samples: dict[str, bytes]) -> None:
    assert set(PARSERS) == set(RESULT_TYPES)
    assert {p for _, parsers in GROUPS.values() for p in parsers} == set(PARSERS)
    for seeds, parsers in GROUPS.values():
        for seed in seeds:
            for name in parsers:
                if name == "decode_response" and seed == "response-error":
                    with pytest.raises(ChipRefused):
                        PARSERS[name](samples[seed])
                else:
                    assert parse_or_refuse(name, samples[seed]) is not None, (name, seed)


# -- strategies -------------------------------------------------------------------------------
SMALL_INTS = st.integers(min_value=-(2**70), max_value=2**70)
TAGS = st.sampled_from([0, 1, 2, 3, 16, 17, 18, 24, 25, 30, 256, 258, 55799, 96, 97, 98])
HUGE = 256**2000  # 4817 decimal digits, over Python's default int-to-str limit of 4300


class _Huge(int):
    """A huge int that Hypothesis can print (its repr is short); CBOR encodes it as a bignum
    and a parser decodes a plain int again."""

    def __repr__(self) -> str:
        return f"<{'-' if self < 0 else ''}int of {self.bit_length()} bits>"


HUGE_INTS = st.sampled_from([_Huge(HUGE), _Huge(-HUGE)])
CBOR_KEYS = st.one_of(
    st.text(max_size=12),
    st.integers(-70000, 70000),
    HUGE_INTS,
    st.sampled_from([2**64, 1.0, 3.0]),
    st.sampled_from(
        [
            "tp-name",
            "tp-version",
            "tp-svn",
            "tp-code",
            "tp-value",
            "tp-family",
            "v",
            "assets",
            "op",
            "args",
            "ok",
            "error",
            "message",
            "name",
            "kind",
            "slot",
            "region",
            "chunks",
            "length",
        ]
    ),
)
CBOR_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    SMALL_INTS,
    st.floats(allow_nan=False),
    st.text(max_size=24),
    st.binary(max_size=48),
    HUGE_INTS,
    st.sampled_from([[], {}, "", b"", 1.0, 3.0, -65537, 2**64, -(2**64) - 1]),
)
CBOR_VALUES = st.recursive(
    CBOR_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(CBOR_KEYS, children, max_size=5),
        st.builds(cbor2.CBORTag, TAGS, children),
    ),
    max_leaves=24,
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    SMALL_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["00" * 16, "00" * 8, "LOT-1", "-----BEGIN CERTIFICATE-----\n"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=10), st.sampled_from(["lot", "family", "chips", "uid"])),
            children,
            max_size=5,
        ),
    ),
    max_leaves=24,
)


def encode_any(value: Any) -> bytes:
    return cbor2.dumps(value)


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Bit flips, truncation, insertion, deletion, overwrite or duplication of a slice."""
    b = bytearray(data)
    op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite", "duplicate"]))
    if op == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
    elif op == "truncate":
        b = b[: draw(st.integers(0, len(b) - 1))]
    elif op == "insert":
        i = draw(st.integers(0, len(b)))
        b[i:i] = draw(st.binary(min_size=1, max_size=16))
    elif op == "delete":
        i = draw(st.integers(0, len(b) - 1))
        del b[i : i + draw(st.integers(1, 16))]
    elif op == "overwrite":
        i = draw(st.integers(0, len(b) - 1))
        chunk = draw(st.binary(min_size=1, max_size=16))
        b[i : i + len(chunk)] = chunk
    else:
        i = draw(st.integers(0, len(b) - 1))
        j = draw(st.integers(i, min(len(b), i + 64)))
        b[j:j] = b[i:j]
    return bytes(b)


_NOT_CBOR = object()


def _inner_cbor(data: bytes) -> Any:
    try:
        return cbor.decode(data, limit=len(data) or 1, what="inner")
    except TrustprovError:
        return _NOT_CBOR


def _mutate(
    draw: st.DrawFn, node: Any, leaves: st.SearchStrategy[Any], keys: Any, depth: int
) -> Any:
    """``node`` with one change somewhere inside it: a value replaced, an item or field
    dropped or added, a string cut; nested CBOR byte strings are opened and mutated too."""
    descend = depth < 8 and draw(st.integers(0, 4)) > 0
    if descend and isinstance(node, bytes) and (inner := _inner_cbor(node)) is not _NOT_CBOR:
        return cbor2.dumps(_mutate(draw, inner, leaves, keys, depth + 1), canonical=True)
    if descend and isinstance(node, cbor2.CBORTag):
        return cbor2.CBORTag(node.tag, _mutate(draw, node.value, leaves, keys, depth + 1))
    if descend and isinstance(node, list) and node:
        new = list(node)
        i = draw(st.integers(0, len(new) - 1))
        op = draw(st.sampled_from(["descend", "descend", "delete", "insert"]))
        if op == "descend":
            new[i] = _mutate(draw, new[i], leaves, keys, depth + 1)
        elif op == "delete":
            del new[i]
        else:
            new.insert(i, draw(leaves))
        return new
    if descend and isinstance(node, dict) and node:
        new = dict(node)
        k = draw(st.sampled_from(list(new)))
        op = draw(st.sampled_from(["descend", "descend", "delete", "insert"]))
        if op == "descend":
            new[k] = _mutate(draw, new[k], leaves, keys, depth + 1)
        elif op == "delete":
            del new[k]
        else:
            new[draw(keys)] = draw(leaves)
        return new
    if isinstance(node, str | bytes) and node and draw(st.booleans()):
        i = draw(st.integers(0, len(node) - 1))
        return node[:i] + node[i + 1 :] if draw(st.booleans()) else node[:i]
    return draw(leaves)


@st.composite
def cbor_tree_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    tree = cbor2.loads(data)
    return cbor2.dumps(_mutate(draw, tree, CBOR_VALUES, CBOR_KEYS, 0))


@st.composite
def json_tree_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    tree = json.loads(data)
    keys = st.one_of(st.text(max_size=10), st.sampled_from(["lot", "family", "chips", "uid"]))
    return json.dumps(_mutate(draw, tree, JSON_VALUES, keys, 0)).encode()


# -- parsers never raise anything but TrustprovError ------------------------------------------
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    for name in PARSERS:
        parse_or_refuse(name, data)


@pytest.mark.parametrize("group", GROUPS)
@FUZZ
@given(data=st.data())
def test_bit_flipped_and_truncated_artifacts(
    group: str, samples: dict[str, bytes], data: st.DataObject
) -> None:
    seeds, parsers = GROUPS[group]
    seed = samples[data.draw(st.sampled_from(seeds), label="seed")]
    mutated = data.draw(byte_mutation(seed), label="mutated")
    for name in parsers:
        parse_or_refuse(name, mutated)


@FUZZ
@given(value=CBOR_VALUES)
def test_random_cbor(value: Any) -> None:
    data = encode_any(value)
    for name in CBOR_PARSERS:
        parse_or_refuse(name, data)


@FUZZ
@given(
    tag=st.sampled_from([cose.TAG_SIGN1, cose.TAG_ENCRYPT0, cose.TAG_MAC0]),
    items=st.lists(CBOR_VALUES, max_size=5),
    protected=st.dictionaries(CBOR_KEYS, CBOR_VALUES, max_size=6),
)
def test_random_cose_shaped_messages(tag: int, items: list[Any], protected: dict[Any, Any]) -> None:
    """Tagged arrays whose first item is a bstr-wrapped map: past the outer checks."""
    data = cbor2.dumps(cbor2.CBORTag(tag, [cbor2.dumps(protected), *items]))
    for name in (
        "SignedSoftware.from_bytes",
        "SealedValue.from_bytes",
        "SignedManifest.from_bytes",
    ):
        parse_or_refuse(name, data)
    parse_or_refuse(
        {18: "cose.decode-sign1", 16: "cose.decode-encrypt0", 17: "cose.decode-mac0"}[tag], data
    )


@pytest.mark.parametrize("group", CBOR_GROUPS)
@FUZZ
@given(data=st.data())
def test_structurally_mutated_artifacts(
    group: str, samples: dict[str, bytes], data: st.DataObject
) -> None:
    seeds, parsers = GROUPS[group]
    seed = samples[data.draw(st.sampled_from(seeds), label="seed")]
    mutated = data.draw(cbor_tree_mutation(seed), label="mutated")
    for name in parsers:
        parse_or_refuse(name, mutated)


@FUZZ
@given(value=JSON_VALUES)
def test_random_json_lot_manifest(value: Any) -> None:
    parse_or_refuse("LotManifest.from_json", json.dumps(value).encode())


@FUZZ
@given(data=st.data())
def test_structurally_mutated_lot_manifest(samples: dict[str, bytes], data: st.DataObject) -> None:
    parse_or_refuse("LotManifest.from_json", data.draw(json_tree_mutation(samples["lot"])))


@FUZZ
@given(data=st.data())
def test_mutated_responses_raise_only_transport_or_refusal(
    samples: dict[str, bytes], data: st.DataObject
) -> None:
    """decode_response turns every malformed response into TransportError; a well-formed
    error response is ChipRefused."""
    seed = samples[data.draw(st.sampled_from(["response-ok", "response-error"]))]
    mutated = data.draw(st.one_of(byte_mutation(seed), cbor_tree_mutation(seed)))
    try:
        result = messages.decode_response(mutated)
    except (ChipRefused, TransportError):
        return  # any other exception, TrustprovError or not, fails the property
    assert isinstance(result, dict)


# -- integers too long for str() -----------------------------------------------------------------


def _with_huge_label(samples: dict[str, bytes], name: str) -> bytes:
    if name in ("SignedSoftware.from_bytes", "SignedManifest.from_bytes", "Bundle.from_bytes"):
        seed = "bundle" if name == "Bundle.from_bytes" else "manifest-mac0"
        seed = "software-ES256" if name == "SignedSoftware.from_bytes" else seed
        value = cbor2.loads(samples[seed])
        target = value[2] if name == "Bundle.from_bytes" else samples[seed]
        msg = cbor2.loads(target)
        protected = cbor2.loads(msg.value[0])
        protected[HUGE] = 0
        msg.value[0] = cbor2.dumps(protected)
        if name != "Bundle.from_bytes":
            return cbor2.dumps(msg)
        value[2] = cbor2.dumps(msg)
        return cbor2.dumps(value)
    seed = {
        "Manifest.from_payload": "manifest-payload",
        "decode_request": "request",
        "decode_response": "response-error",
    }[name]
    doc = cbor2.loads(samples[seed])
    doc[HUGE] = 0
    return cbor2.dumps(doc)


@pytest.mark.parametrize(
    "name",
    [
        "SignedSoftware.from_bytes",
        "SignedManifest.from_bytes",
        "Bundle.from_bytes",
        "Manifest.from_payload",
        "decode_request",
        "decode_response",
    ],
)
def test_huge_integer_labels_are_format_errors(samples: dict[str, bytes], name: str) -> None:
    """An unknown map label that is a bignum of 4817 digits: the parser must refuse it with a
    TrustprovError, not leak the ValueError of formatting it into the message."""
    data = _with_huge_label(samples, name)
    with pytest.raises(TrustprovError):
        PARSERS[name](data)


# -- round trips --------------------------------------------------------------------------------
NAMES = st.text(
    st.characters(exclude_categories=("C", "Z"), include_characters=" ", max_codepoint=0x2FFFF),
    min_size=1,
    max_size=LIMITS.name,
).filter(lambda name: len(name.encode("utf-8")) <= LIMITS.name)  # the limit is in bytes


@st.composite
def manifests(draw: st.DrawFn, max_data_len: int = 2**40) -> Manifest:
    aead = draw(st.sampled_from([A256GCM, AES_CCM_16_128_256]))
    chunk_size = draw(st.integers(MIN_CHUNK, min(LIMITS.chunk, aead.max_message)))
    n = draw(st.integers(1, 6))
    names = draw(st.lists(NAMES, min_size=n, max_size=n, unique=True))
    slots = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n, unique=True))
    regions = draw(st.lists(NAMES, min_size=n, max_size=n, unique=True))
    assets = []
    for i in range(n):
        kind = draw(st.sampled_from(ASSET_KINDS))
        key_type = draw(st.sampled_from(sorted(KEY_TYPES))) if kind == "key" else None
        if key_type is not None:
            length = draw(st.sampled_from(KEY_TYPES[key_type]))
        else:
            length = draw(st.integers(1, max_data_len))
        assets.append(
            AssetEntry(
                name=names[i],
                kind=kind,
                length=length,
                chunks=chunk_count(length, chunk_size),
                nonce=draw(st.binary(min_size=aead.nonce_len - 5, max_size=aead.nonce_len - 5)),
                digest=draw(st.binary(min_size=32, max_size=32)),
                key_type=key_type,
                slot=slots[i] if kind == "key" else None,
                region=regions[i] if kind != "key" else None,
                # firmware and config may be deflated (W 9..15) beside chunks of <= 65,520
                deflate=draw(st.none() | st.integers(9, 15))
                if kind in ("firmware", "config") and chunk_size <= 65520
                else None,
            )
        )
    return Manifest(
        family_id=draw(st.binary(min_size=8, max_size=8)),
        bundle_id=draw(st.binary(min_size=16, max_size=16)),
        epoch=draw(st.integers(0, 2**32 - 1)),
        min_security_version=draw(st.integers(0, 2**32 - 1)),
        aead=aead,
        chunk_size=chunk_size,
        assets=tuple(assets),
    )


@ROUND_TRIP
@given(manifest=manifests())
def test_manifest_round_trip(manifest: Manifest, builders: SimpleNamespace) -> None:
    payload = manifest.to_payload()
    assert Manifest.from_payload(payload) == manifest
    assert cbor.encode(cbor2.loads(payload)) == payload  # canonical
    signed = SignedManifest.from_bytes(builders.mac0(manifest))
    assert signed.manifest == manifest
    assert SignedManifest.from_bytes(signed.to_bytes()) == signed


@ROUND_TRIP
@given(data=st.data())
def test_bundle_round_trip(builders: SimpleNamespace, data: st.DataObject) -> None:
    manifest = data.draw(manifests(max_data_len=1500))
    # a deflated asset's chunk is any length its bounds allow (1 .. len + 16, and the tag)
    chunks = tuple(
        tuple(
            data.draw(st.binary(min_size=lo + 16, max_size=hi + 16))
            for lo, hi in (e.sealed_plain_range(manifest.chunk_size, i) for i in range(e.chunks))
        )
        for e in manifest.assets
    )
    bundle = Bundle(SignedManifest.from_bytes(builders.mac0(manifest)), chunks)
    encoded = bundle.to_bytes()
    parsed = Bundle.from_bytes(encoded)
    assert parsed.manifest == manifest
    assert parsed.chunks == chunks
    assert parsed.to_bytes() == encoded


#: the values trustprov's formats carry: no floats, integers within CBOR's 64-bit range
CBOR_DATA = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64 - 1),
        st.text(),
        st.binary(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.integers(-(2**64), 2**64 - 1)), children, max_size=5
        ),
    ),
    max_leaves=20,
)


@ROUND_TRIP
@given(value=CBOR_DATA)
def test_cbor_round_trip(value: Any) -> None:
    encoded = cbor.encode(value)
    decoded = cbor.decode(encoded, limit=len(encoded), what="rt")
    assert decoded == value
    assert cbor.encode(decoded) == encoded


@ROUND_TRIP
@given(
    kind=st.sampled_from(SEALED_KINDS),
    key=st.binary(min_size=32, max_size=32),
    family=st.binary(min_size=8, max_size=8),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(min_size=1, max_size=64),
)
def test_sealed_value_round_trip(
    kind: str, key: bytes, family: bytes, nonce: bytes, plaintext: bytes
) -> None:
    data = SealedValue.seal(key, kind, family, nonce, plaintext).to_bytes()
    parsed = SealedValue.from_bytes(data, kind)
    assert (parsed.kind, parsed.family_id) == (kind, family)
    if len(plaintext) in PLAINTEXT_LENS[kind]:
        assert parsed.open(key) == plaintext
    else:
        with pytest.raises(FormatError):
            parsed.open(key)
    assert parsed.to_bytes() == data


@ROUND_TRIP
@given(data=st.data())
def test_lot_manifest_round_trip(builders: SimpleNamespace, data: st.DataObject) -> None:
    uids = data.draw(st.lists(st.binary(min_size=16, max_size=16), unique=True, max_size=5))
    family = data.draw(st.binary(min_size=8, max_size=8))
    lot = LotManifest(
        data.draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)),
        family,
        tuple(LotChip(uid, builders.certificate(uid, family)) for uid in uids),
    )
    encoded = lot.to_json()
    assert LotManifest.from_json(encoded) == lot
    assert LotManifest.from_json(encoded).to_json() == encoded


OPS = st.text(st.characters(categories=("L", "N", "P")), min_size=1, max_size=32).filter(
    lambda op: len(op.encode("utf-8")) <= messages.MAX_OP  # the limit is in bytes
)
ARGS = st.dictionaries(st.text(max_size=16), CBOR_DATA, max_size=6)


@ROUND_TRIP
@given(op=OPS, args=ARGS)
def test_request_round_trip(op: str, args: dict[str, Any]) -> None:
    assert messages.decode_request(messages.encode_request(op, args)) == (op, args)


@ROUND_TRIP
@given(result=ARGS)
def test_ok_response_round_trip(result: dict[str, Any]) -> None:
    assert messages.decode_response(messages.encode_ok(result)) == result


@ROUND_TRIP
@given(code=OPS, message=st.text(max_size=400))
def test_error_response_round_trip(code: str, message: str) -> None:
    with pytest.raises(ChipRefused) as e:
        messages.decode_response(messages.encode_error(code, message))
    assert e.value.code == code
    assert e.value.message == message[: messages.MAX_MESSAGE_TEXT]
