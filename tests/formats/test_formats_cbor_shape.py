"""trustprov.formats.cbor: what a hostile CBOR message may cost. Every decode is bounded in
items and nesting (`formats.limits.Shape`) before cbor2 builds anything, so bytes that would
become hundreds of megabytes of Python objects are refused having cost almost nothing.

The memory bounds here are measured with tracemalloc (peak of what Python allocated during the
call), not with timings: they hold on any machine."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from trustprov.errors import FormatError, TransportError
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import Bundle, Manifest, SignedManifest
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS, MiB, Shape
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages

PEAK_BOUND = 16 * MiB  # a refused message may cost at most this much memory beyond its bytes
SIZE = 4 * MiB  # a full-size link message


def _array_of(head: bytes, item: bytes, count: int) -> bytes:
    return head + count.to_bytes(4, "big") + item * count


def _request_around(inner: bytes) -> bytes:
    """A link request {"op": "cm.chunk", "args": {"data": inner}} without re-encoding inner."""
    return b"\xa2bop" + b"hcm.chunk" + b"dargs" + b"\xa1ddata" + inner


N = SIZE - 64
HOSTILE = {
    # one array header announcing every item: the count alone is refused
    "empty-maps": _request_around(_array_of(b"\x9a", b"\xa0", N)),
    "empty-arrays": _request_around(_array_of(b"\x9a", b"\x80", N)),
    "tiny-ints": _request_around(_array_of(b"\x9a", b"\x00", N)),
    # the same items in nested arrays of 23 (no large count anywhere): counted one by one
    "empty-maps-in-small-arrays": _request_around(
        _array_of(b"\x9a", b"\x97" + b"\xa0" * 23, N // 24)
    ),
    "one-map-of-many-pairs": _request_around(b"\xba" + (N // 2).to_bytes(4, "big") + b"\x00" * N),
    "deep-arrays": _request_around(b"\x81" * N + b"\x00"),
    "deep-maps": _request_around(b"\xa1\x00" * (N // 2) + b"\x00"),
    "deep-tags": _request_around(b"\xc6" * N + b"\x00"),
    "huge-bstr-length": _request_around(b"\x5b" + (2**63).to_bytes(8, "big")),
    "huge-tstr-length": _request_around(b"\x7b" + (2**64 - 1).to_bytes(8, "big")),
    "indefinite-maps": _request_around(b"\x9f" + b"\xbf\xff" * (N // 2) + b"\xff"),
    "indefinite-bstr-chunks": _request_around(b"\x5f" + b"\x40" * N + b"\xff"),
}


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("side", ["request", "response"])
def test_hostile_link_messages_are_refused_in_bounded_memory(name: str, side: str) -> None:
    data = HOSTILE[name]
    assert len(data) <= LIMITS.link_message
    decode: Callable[[bytes], Any] = (
        messages.decode_request if side == "request" else messages.decode_response
    )
    error = FormatError if side == "request" else TransportError
    tracemalloc.start()
    try:
        with pytest.raises(error) as e:
            decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BOUND, f"{name}: {peak / MiB:.1f} MiB to refuse it"
    assert "\n" not in e.value.message
    assert len(e.value.message) < 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x9f\x01\xff", "indefinite-length"),
        (b"\xbf\x01\x02\xff", "indefinite-length"),
        (b"\x5f\x41a\xff", "indefinite-length"),
        (b"\x7f\x61a\xff", "indefinite-length"),
        (b"\xff", "indefinite-length"),  # a lone break stop code
        (b"\x1c", "reserved"),
        (b"\xc1\x00", "tag 1"),
        (b"\x81\xd2\x80", "tag 18"),  # a tag the caller allows, but not at the top
        (b"\xd2\xd2\x80", "tag 18"),  # ... nor inside itself
        (b"\x5b" + (2**63).to_bytes(8, "big"), "claims 9223372036854775808 bytes"),
        (b"\x9b" + (2**64 - 1).to_bytes(8, "big"), "claims 18446744073709551615 entries"),
        (b"\xbb" + (2**63).to_bytes(8, "big"), "claims"),
        (b"\x82\x01", "claims 2 entries"),
        (b"\x18", "truncated"),
        (b"\x81", "claims 1 entries, more than remain"),
        (b"\x01\x02", "trailing"),
        (b"\xa2\x61k\x01\x61k\x02", "repeats a key"),
        (b"\xa2\x01\x00\x18\x01\x00", "repeats a key"),  # 1 and 1 in a longer encoding
        (b"\x81\xa3\x01\x80\x02\xa0\x01\x83\x00\x00\x00", "repeats a key"),  # nested, big value
        (b"\xa2\x01\x00\xf5\x00", "repeats a key"),  # 1 and true: equal keys in Python
        (b"\xa1\x81\x00\x00", "array as a map key"),
        (b"\xa1\x01\xa1\xa0\x00", "map as a map key"),  # nested: the key of the inner map
        (b"\xa1\xd2\x80\x00", "tag 18"),  # a tag as a key
        (b"\x82\x00\xf9\x3c\x00", "float"),
        (b"\xa1\x61k\xfb\x40\x08\x00\x00\x00\x00\x00\x00", "float"),
        (b"\xf7", "simple value"),  # undefined
        (b"\x81\xf8\x20", "simple value"),
        (b"\xc2\x41\x01", "tag 2"),  # a bignum
    ],
)
def test_each_refusal_is_a_one_line_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message) as e:
        cbor.decode(data, limit=1024, what="test", tags=frozenset({18}))
    assert e.value.message.startswith("test: ")
    assert "\n" not in e.value.message


SHAPE = Shape(items=10, depth=3)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([0] * 9, True),  # 10 items
        ([0] * 10, False),
        ({i: i for i in range(4)}, True),  # 9 items
        ({i: i for i in range(5)}, False),
        ([[[0]]], True),  # depth 3
        ([[[[]]]], False),
        ([[{"a": 1}]], True),
        ([[{"a": []}]], False),
        ([b"x" * 100_000], True),  # a string is one item, whatever its length
    ],
)
def test_shape_counts_items_and_depth_exactly(value: Any, ok: bool) -> None:
    data = cbor.encode(value)
    if ok:
        assert cbor.decode(data, limit=1 << 20, what="t", shape=SHAPE) == value
    else:
        with pytest.raises(FormatError, match=r"more than 10 CBOR items|deeper than 3"):
            cbor.decode(data, limit=1 << 20, what="t", shape=SHAPE)


def test_a_tag_counts_as_one_level_and_one_item() -> None:
    data = cbor2.dumps(cbor2.CBORTag(18, [[0]]))
    assert cbor.decode(data, limit=64, what="t", shape=Shape(4, 3), tags=frozenset({18}))
    with pytest.raises(FormatError, match="deeper than 2"):
        cbor.decode(data, limit=64, what="t", shape=Shape(4, 2), tags=frozenset({18}))
    with pytest.raises(FormatError, match="more than 3 CBOR items"):
        cbor.decode(data, limit=64, what="t", shape=Shape(3, 3), tags=frozenset({18}))


PARSERS: dict[str, tuple[Callable[[bytes], Any], int]] = {
    "software": (SignedSoftware.from_bytes, LIMITS.software),
    "sealed value": (SealedValue.from_bytes, LIMITS.sealed_value),
    "manifest": (SignedManifest.from_bytes, LIMITS.manifest),
    "manifest payload": (Manifest.from_payload, LIMITS.manifest),
    "bundle": (Bundle.from_bytes, 16 * MiB),  # 1 GiB is allowed, 16 MiB makes the point
    "immutable memory": (ImmutableMemory.from_bytes, 4096),
    "cose": (lambda d: cose.decode(d, cose.TAG_SIGN1, limit=LIMITS.software, what="t"), SIZE),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("kind", ["empty-maps", "deep-arrays", "tagged-empty-maps"])
def test_every_artifact_parser_refuses_item_floods_in_bounded_memory(
    parser: str, kind: str
) -> None:
    parse, size = PARSERS[parser]
    n = size - 16
    data = {
        "empty-maps": b"\x84" + b"\x9a" + (n // 24).to_bytes(4, "big") + b"\x97" + b"\xa0" * 23,
        "deep-arrays": b"\x81" * n + b"\x00",
        "tagged-empty-maps": b"\xd2\x84\x40\xa0\x40"
        + b"\x9a"
        + (n // 24).to_bytes(4, "big")
        + (b"\x97" + b"\xa0" * 23) * (n // 24),
    }[kind]
    if kind == "empty-maps":
        data = data[:6] + data[6:] * (n // 24)
    data = data[:size]
    tracemalloc.start()
    try:
        with pytest.raises(FormatError):
            parse(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BOUND + len(data), f"{parser}: {peak / MiB:.1f} MiB to refuse {kind}"


# -- the largest genuine artifacts fit their shapes --------------------------------------------
def test_the_largest_manifest_fits_its_shape(builders: Any) -> None:
    """64 assets, half keys and half data, names and regions of the longest, every field."""
    n = LIMITS.assets_per_bundle
    entries = tuple(
        builders.entry(f"{i:02}".ljust(LIMITS.name, "k"), "key", 32, key_type="aes-256", slot=i)
        if i % 2
        else builders.entry(
            f"{i:02}".ljust(LIMITS.name, "d"), "firmware", 2**40, region=f"{i:02}".ljust(64, "r")
        )
        for i in range(n)
    )
    m = builders.manifest(entries)
    payload = m.to_payload()
    items = cbor.count_items(payload, LIMITS.manifest_shape, "t")
    assert items < LIMITS.manifest_shape.items // 2  # with room to grow
    assert Manifest.from_payload(payload) == m
    assert SignedManifest.from_bytes(builders.mac0(m)).manifest == m


def test_a_bundle_of_the_smallest_chunks_fits_its_shape(builders: Any) -> None:
    """Every chunk of the smallest size: the most items a bundle of its size may hold."""
    assets = tuple((f"fw{i}", "firmware", 256 * 40, None, None, f"app{i}") for i in range(8))
    data = builders.seal_bundle(assets, chunk_size=256).to_bytes()
    assert Bundle.from_bytes(data).manifest.assets[0].chunks == 40


def test_a_bundle_flooded_with_small_items_is_refused_for_its_size() -> None:
    """Far below the 4 Mi items a 1 GiB bundle may hold, yet more than one per 256 bytes."""
    n = 1 << 20
    data = b"\x84" + b"\x00" * 3 + b"\x9a" + n.to_bytes(4, "big") + b"\x40" * n
    with pytest.raises(FormatError, match="CBOR items"):
        Bundle.from_bytes(data)
