"""trustprov.formats.deflate and the manifest's "deflate" field (docs/protocol.md 6.1, 6.2, 6.6).

Every bound of a deflated chunk has a test that fails if the bound is dropped: a bomb, a
truncated stream, trailing bytes, a stream too long, a distance beyond the window.
"""

from __future__ import annotations

import io
import os
import zlib
from types import SimpleNamespace

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustprov.crypto.aead import TAG_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.bundle import Bundle, Manifest
from trustprov.formats.bundle.bundle_file import BundleIndex, chunk_lengths
from trustprov.formats.bundle.chunks import chunk_plain_len
from trustprov.formats.deflate import DEFLATE_SLACK, MAX_WBITS, MIN_WBITS, deflate, inflate

#: 512 random bytes then the same again: a distance of exactly 512 at W = 10
_HALF = bytes(range(256)) + bytes(reversed(range(256)))


def _far(distance: int, wbits: int = 15) -> bytes:
    """A stream whose second half repeats its first from ``distance`` bytes back."""
    block = os.urandom(distance)
    return deflate(block + block, wbits)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(MIN_WBITS, MAX_WBITS))
def test_inflate_undoes_deflate(data: bytes, wbits: int) -> None:
    assert inflate(deflate(data, wbits), wbits, len(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(1, 600))
def test_any_stream_gives_exactly_its_length_or_a_format_error(stream: bytes, length: int) -> None:
    try:
        out = inflate(stream, 15, length)
    except FormatError:
        return
    assert len(out) == length


@pytest.mark.parametrize("length", [100, 999, 30000])
def test_a_bomb_is_refused(length: int) -> None:
    stream = deflate(bytes(100_000), 15)  # 100 kB of zeros in ~100 bytes
    with pytest.raises(FormatError, match="past its length"):
        inflate(stream, 15, length)


def test_inflate_asks_zlib_for_one_byte_past_the_length_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, wbits: int) -> None:
            self._d = real(wbits)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            asked.append(max_length)
            return self._d.decompress(data, max_length)

        def __getattr__(self, name: str) -> object:
            return getattr(self._d, name)

    monkeypatch.setattr(zlib, "decompressobj", Spy)
    with pytest.raises(FormatError):
        inflate(deflate(bytes(100_000), 15), 15, 1000)
    assert asked
    assert all(0 < n <= 1001 for n in asked)


def test_a_truncated_stream_is_refused() -> None:
    data = os.urandom(600)
    stream = deflate(data, 15)
    for cut in (1, 10, len(stream) // 2):
        with pytest.raises(FormatError):
            inflate(stream[:-cut], 15, len(data))


def test_a_stream_without_a_final_block_is_refused() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = c.compress(b"abc" * 100) + c.flush(zlib.Z_SYNC_FLUSH)  # all the bytes, no BFINAL
    with pytest.raises(FormatError, match="truncated"):
        inflate(stream, 15, 300)


def test_a_stream_short_of_its_length_is_refused() -> None:
    with pytest.raises(FormatError, match="short"):
        inflate(deflate(b"x" * 99, 15), 15, 100)


@pytest.mark.parametrize("extra", [b"\x00", b"\x03\x00", deflate(b"more", 15)])
def test_bytes_after_the_final_block_are_refused(extra: bytes) -> None:
    stream = deflate(b"abc" * 100, 15)
    with pytest.raises(FormatError, match="after the final block"):
        inflate(stream + extra, 15, 300)


def test_a_stream_longer_than_its_chunk_plus_16_is_refused() -> None:
    data = os.urandom(100)
    stream = deflate(data, 15)
    assert len(stream) <= len(data) + DEFLATE_SLACK  # incompressible: stored, 5 bytes more
    padded = stream + bytes(len(data) + DEFLATE_SLACK + 1 - len(stream))
    with pytest.raises(FormatError, match="out of bounds"):
        inflate(padded, 15, len(data))
    with pytest.raises(FormatError, match="out of bounds"):
        inflate(b"", 15, len(data))


@pytest.mark.parametrize("distance", [1000, 513, 2000])
def test_a_distance_beyond_the_window_is_refused(distance: int) -> None:
    stream = _far(distance)
    with pytest.raises(FormatError, match="not a valid"):
        inflate(stream, 9, 2 * distance)
    assert inflate(stream, 15, 2 * distance)  # the same stream within its window


def test_a_distance_beyond_the_window_after_the_first_window_is_refused() -> None:
    # 4 KiB of output first, then a match 1,000 bytes back: zlib alone would accept it when
    # the whole chunk is inflated in one call
    head, block = os.urandom(4096), os.urandom(1000)
    data = head + block + block
    with pytest.raises(FormatError):
        inflate(deflate(data, 15), 9, len(data))


def test_a_distance_of_exactly_the_window_is_allowed() -> None:
    stream = deflate(_HALF + _HALF, 10)
    assert inflate(stream, 9, 1024) == _HALF + _HALF


def test_incompressible_chunks_of_the_oem_tools_sizes_fit_the_slack() -> None:
    # zlib stores incompressible input in blocks of about 16 KiB, 5 bytes of header each: up
    # to the 32 KiB chunks the OEM's tools make, within 16 (a 64 KiB chunk is not: 20 bytes)
    for n in (1, 256, 16384, 32768):
        assert len(deflate(os.urandom(n), 15)) <= n + DEFLATE_SLACK


# -- the manifest's "deflate" --------------------------------------------------------------
@pytest.fixture(scope="module")
def b(builders: SimpleNamespace) -> SimpleNamespace:
    return builders


def test_a_deflated_entry_round_trips_and_an_undeflated_one_encodes_as_before(
    b: SimpleNamespace,
) -> None:
    plain = b.manifest((b.entry("fw"),))
    assert b"deflate" not in plain.to_payload()
    m = b.manifest((b.entry("fw", deflate=12),))
    assert Manifest.from_payload(m.to_payload()) == m
    assert cbor2.loads(m.to_payload())["assets"][0]["deflate"] == 12
    assert m.deflated
    assert not plain.deflated


@pytest.mark.parametrize("wbits", [0, 8, 16, 2**40])
def test_a_window_out_of_range_is_refused(b: SimpleNamespace, wbits: int) -> None:
    doc = cbor2.loads(b.manifest((b.entry("fw"),)).to_payload())
    doc["assets"][0]["deflate"] = wbits
    with pytest.raises(FormatError, match="deflate"):
        Manifest.from_payload(cbor.encode(doc))


@pytest.mark.parametrize("value", [True, "15", -1, 15.0, None])
def test_a_window_of_another_type_is_refused(b: SimpleNamespace, value: object) -> None:
    doc = cbor2.loads(b.manifest((b.entry("fw"),)).to_payload())
    doc["assets"][0]["deflate"] = value
    with pytest.raises(FormatError):
        Manifest.from_payload(cbor.encode(doc))


@pytest.mark.parametrize("kind", ["key", "certificate"])
def test_keys_and_certificates_are_never_deflated(b: SimpleNamespace, kind: str) -> None:
    entry = (
        b.entry("k", "key", 32, key_type="aes-256", slot=1)
        if kind == "key"
        else b.entry("c", "certificate", 300)
    )
    doc = cbor2.loads(b.manifest((entry,)).to_payload())
    doc["assets"][0]["deflate"] = 15
    with pytest.raises(FormatError, match="only firmware and config"):
        Manifest.from_payload(cbor.encode(doc))
    with pytest.raises(FormatError, match="only firmware and config"):
        b.manifest((b.entry("c", "certificate", 300, deflate=15),))


def test_chunk_plain_len_is_a_function_of_the_length() -> None:
    assert [chunk_plain_len(700, 256, i) for i in range(3)] == [256, 256, 188]
    assert chunk_plain_len(1, 256, 0) == 1


# -- bundles of deflated assets ------------------------------------------------------------
@pytest.fixture(scope="module")
def deflated(builders: SimpleNamespace) -> Bundle:
    return builders.seal_bundle(deflate=9)


def test_a_deflated_bundle_round_trips_in_memory_and_indexed(deflated: Bundle) -> None:
    assert deflated.manifest.deflated
    assert Bundle.from_bytes(deflated.to_bytes()) == deflated
    data = deflated.to_bytes()
    index = BundleIndex.read(io.BytesIO(data), len(data))
    for a, chunks in enumerate(deflated.chunks):
        for i, c in enumerate(chunks):
            at, n = index.locate(a, i)
            assert data[at : at + n] == c


def test_a_deflated_chunk_outside_its_bounds_is_refused(deflated: Bundle) -> None:
    m = deflated.manifest
    a = next(i for i, e in enumerate(m.assets) if e.deflate is not None)
    most = m.assets[a].plain_len(m.chunk_size, 0) + DEFLATE_SLACK + TAG_LEN
    for bad in (bytes(TAG_LEN), bytes(most + 1)):
        chunks = list(map(list, deflated.chunks))
        chunks[a][0] = bad
        with pytest.raises(FormatError, match="wrong length"):
            Bundle(deflated.signed, tuple(map(tuple, chunks)))
        data = Bundle.__new__(Bundle)
        object.__setattr__(data, "signed", deflated.signed)
        object.__setattr__(data, "chunks", tuple(map(tuple, chunks)))
        raw = data.to_bytes()
        with pytest.raises(FormatError, match="wrong length"):
            BundleIndex.read(io.BytesIO(raw), len(raw))


def test_chunk_lengths_are_not_given_for_a_deflated_asset(deflated: Bundle) -> None:
    e = next(e for e in deflated.manifest.assets if e.deflate is not None)
    with pytest.raises(ValueError, match="deflated"):
        chunk_lengths(e, deflated.manifest.chunk_size)


def test_a_deflated_asset_needs_chunks_of_at_most_65520(b: SimpleNamespace) -> None:
    """So that its sealed chunks (at most chunk size + 32) fit every reader's 65,552."""
    for size in (65520, 65521):
        fw = b.entry("fw", "firmware", 70_000, chunk_size=size, deflate=15)
        if size == 65520:
            b.manifest((fw,), chunk_size=size)
        else:
            with pytest.raises(FormatError, match="chunks above 65520"):
                b.manifest((fw,), chunk_size=size)
