"""trustprov.formats.bundle.bundle_file: the bundle file indexed from its heads, and written in
pieces.

The index must accept exactly the files `Bundle.from_bytes` accepts (the one in-memory parser,
fuzzed), give the same chunks and chain links, and refuse with a `FormatError` whatever the
pre-scan of `trustprov.formats.cbor` refuses, without reading past a head it distrusts.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from types import SimpleNamespace

import cbor2
import pytest

from trustprov.crypto.aead import TAG_LEN
from trustprov.crypto.digest import DIGEST_LEN
from trustprov.errors import FormatError
from trustprov.formats.bundle import Bundle, bundle_file
from trustprov.formats.bundle.bundle_file import BundleIndex, BundleWriter, chunk_lengths


@pytest.fixture(scope="module")
def bundle(builders: SimpleNamespace) -> Bundle:
    return builders.seal_bundle()


def index_of(data: bytes) -> BundleIndex:
    return BundleIndex.read(io.BytesIO(data), len(data))


def read_from(data: bytes, index: BundleIndex) -> list[list[bytes]]:
    out = []
    for a in range(len(index.manifest.assets)):
        chunks = []
        for i in range(index.chunks(a)):
            offset, length = index.locate(a, i)
            chunks.append(data[offset : offset + length])
        out.append(chunks)
    return out


def test_the_index_finds_every_chunk_and_the_chain(bundle: Bundle) -> None:
    data = bundle.to_bytes()
    index = index_of(data)
    assert index.manifest == bundle.manifest
    assert index.manifest_bytes == bundle.signed.to_bytes()
    chunks = read_from(data, index)
    assert chunks == [list(c) for c in bundle.chunks]
    for a in range(len(chunks)):
        links = index.chain_links(a, lambda asset, i: chunks[asset][i][-TAG_LEN:])
        assert [links[k : k + DIGEST_LEN] for k in range(0, len(links), DIGEST_LEN)] == (
            bundle.chain_links(a)
        )


@pytest.mark.parametrize("writeback_step", [bundle_file.WRITEBACK_STEP, 1, 300])
def test_the_writer_writes_in_any_order_what_the_encoder_writes(
    bundle: Bundle, tmp_path: Path, writeback_step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with the early write-out asked after every chunk or every few: the same bytes, chunks
    # given as the link's views of the chip's answers
    monkeypatch.setattr(bundle_file, "WRITEBACK_STEP", writeback_step)
    m = bundle.manifest
    lengths = [chunk_lengths(e, m.chunk_size) for e in m.assets]
    f = (tmp_path / "bundle").open("w+b")
    w = BundleWriter(f, len(bundle.signed.to_bytes()), lengths)
    order = [(a, i) for a, c in enumerate(bundle.chunks) for i in range(len(c))]
    random.Random(7).shuffle(order)
    for a, i in order:
        w.chunk(a, i, memoryview(b"x" + bundle.chunks[a][i])[1:])
    w.finish(bundle.signed.to_bytes())
    f.close()
    assert (tmp_path / "bundle").read_bytes() == bundle.to_bytes()  # canonical, byte for byte
    assert w.size == len(bundle.to_bytes())


def test_the_writer_refuses_what_was_not_planned(bundle: Bundle, tmp_path: Path) -> None:
    m = bundle.manifest
    lengths = [chunk_lengths(e, m.chunk_size) for e in m.assets]
    manifest = bundle.signed.to_bytes()
    with (tmp_path / "bundle").open("w+b") as f:
        w = BundleWriter(f, len(manifest), lengths)
        with pytest.raises(FormatError, match="not the one planned"):
            w.chunk(0, 0, bundle.chunks[0][0] + b"x")  # another length
        with pytest.raises(FormatError, match="not the one planned"):
            w.chunk(len(lengths), 0, b"x")  # no such asset
        w.chunk(0, 0, bundle.chunks[0][0])
        with pytest.raises(FormatError, match="not the one planned"):
            w.chunk(0, 0, bundle.chunks[0][0])  # twice
        with pytest.raises(FormatError, match="never written"):
            w.finish(manifest)
        for a, chunks in enumerate(bundle.chunks):
            for i, c in enumerate(chunks):
                if (a, i) != (0, 0):
                    w.chunk(a, i, c)
        with pytest.raises(FormatError, match="planned"):
            w.finish(manifest + b"\x00")
        assert not w.finished
        w.finish(manifest)
        assert w.finished


def _accepts(parse: object, data: bytes) -> bool:
    try:
        parse(data)  # type: ignore[operator]  # one of the two parsers
    except FormatError:
        return False
    return True


def test_the_index_accepts_exactly_what_the_parser_accepts(bundle: Bundle) -> None:
    """Byte flips, truncations and insertions of a real bundle: both parsers agree, and when
    they accept, they see the same chunks."""
    data = bundle.to_bytes()
    rng = random.Random(13)
    cases = [data[:n] for n in range(0, len(data), 7)] + [data + b"\x00"]
    for _ in range(3000):
        mutated = bytearray(data)
        at = rng.randrange(len(mutated))
        if rng.random() < 0.8:
            mutated[at] ^= 1 << rng.randrange(8)
        else:
            mutated[at:at] = bytes([rng.randrange(256)])
        cases.append(bytes(mutated))
    agreed = 0
    for case in cases:
        ok = _accepts(Bundle.from_bytes, case)
        assert _accepts(index_of, case) == ok, case.hex()
        if ok:
            assert read_from(case, index_of(case)) == [
                list(c) for c in Bundle.from_bytes(case).chunks
            ]
            agreed += 1
    assert agreed  # some flips land in ciphertext: those bundles still parse


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"\x9f", "indefinite"),  # an indefinite-length array
        (b"\xc6\x84", "tag"),  # a tag
        (b"\x84\x70trustprov-bundle\x01\x5a\xff\xff\xff\xff", "more than remain"),
        (b"\x84\x70trustprov-bundle\x01\x41\x00", "manifest"),
        (b"\x83\x70trustprov-bundle\x01\x40", "not a trustprov bundle"),
        (b"\x84\x70trustprov-bundlf\x01\x40\x80", "not a trustprov bundle"),
        (b"\x84\x70trustprov-bundle\xf5\x40\x80", "format"),  # true is not 1
        (b"\x84\x70trustprov-bundle\x01\x5c", "reserved"),
        (b"", "truncated"),
    ],
)
def test_the_index_refuses_what_the_pre_scan_refuses(doc: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        index_of(doc)


def test_an_array_announcing_more_items_than_the_file_holds_is_refused_unread(
    bundle: Bundle,
) -> None:
    v = cbor2.loads(bundle.to_bytes())
    head = cbor2.dumps(v[:3], canonical=True)[1:]  # the first three items, without their array
    doc = b"\x84" + head + b"\x9b" + (2**40).to_bytes(8, "big")  # 2**40 assets announced
    with pytest.raises(FormatError, match="more than remain"):
        index_of(doc)
