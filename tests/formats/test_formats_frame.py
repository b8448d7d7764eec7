"""The frame codec: round trips, stuffing, and a decoder that survives any bytes."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustprov.errors import FormatError
from trustprov.formats.frame import (
    END,
    ESC,
    Frame,
    FrameDecoder,
    FrameType,
    LinkInfo,
    crc32,
    decode_hello,
    encode_frame,
    encode_hello,
    encoded_size_bound,
    parse_body,
    unstuff,
)

frames = st.builds(
    Frame,
    st.sampled_from(list(FrameType)),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=300),
    st.booleans(),
)


def wire(f: Frame) -> bytes:
    return encode_frame(f.kind, f.seq, f.frag, f.payload, more=f.more)


@given(st.lists(frames, max_size=8), st.integers(1, 50))
def test_frames_round_trip_in_any_slicing(fs: list[Frame], step: int) -> None:
    data = b"".join(wire(f) for f in fs)
    decoder = FrameDecoder()
    out: list[Frame] = []
    for i in range(0, len(data), step):
        out += decoder.feed(data[i : i + step])
    assert out == fs
    assert decoder.bad_frames == 0


@given(frames)
def test_no_marker_inside_a_frame(f: Frame) -> None:
    data = wire(f)
    assert data[0] == END
    assert data[-1] == END
    assert END not in data[1:-1]
    assert len(data) <= encoded_size_bound(len(f.payload))


def test_stuffing_and_layout_by_hand() -> None:
    data = encode_frame(FrameType.REQUEST, 0x0102, 3, b"\xc0\xdb\x00", more=True)
    header, payload = bytes([3, 1, 1, 2, 0, 3, 0, 3]), b"\xc0\xdb\x00"
    crc = zlib.crc32(payload + header).to_bytes(4, "big")
    expected = header + payload + crc
    stuffed = expected.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    assert data == b"\xc0" + stuffed + b"\xc0"


def test_crc_is_crc32_iso_hdlc() -> None:
    assert crc32(b"123456789") == 0xCBF43926


@given(st.lists(st.one_of(frames.map(wire), st.binary(max_size=40)), max_size=12))
@settings(max_examples=200)
def test_garbage_is_dropped_and_valid_frames_after_it_survive(parts: list[bytes]) -> None:
    decoder = FrameDecoder()
    got = decoder.feed(b"".join(parts))
    # every complete valid frame not glued to garbage is recovered after an END
    tail = wire(Frame(FrameType.ACK, 7, 9))
    assert decoder.feed(b"\xc0" + tail)[-1:] == [Frame(FrameType.ACK, 7, 9)]
    assert all(isinstance(f, Frame) for f in got)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x03" * 11,
        bytes([0x0B, 0, 0, 0, 0, 0, 0, 0]),  # unknown type
        bytes([0x03, 0x02, 0, 0, 0, 0, 0, 0]),  # reserved flag
        bytes([0x03, 0x00, 0, 0, 0, 0, 0, 5]),  # length says 5, there is none
    ],
)
def test_bad_bodies_are_refused(body: bytes) -> None:
    crc = crc32(body[8:] + body[:8]).to_bytes(4, "big") if len(body) >= 8 else b""
    with pytest.raises(FormatError):
        parse_body(body + crc, 100)


def test_crc_mismatch_and_bad_escape_are_counted_not_raised() -> None:
    good = encode_frame(FrameType.REQUEST, 1, 0, b"abc")
    flipped = bytearray(good)
    flipped[5] ^= 0x01
    decoder = FrameDecoder()
    assert decoder.feed(bytes(flipped)) == []
    assert decoder.feed(b"\xc0\x01\xdb\x00\xc0") == []
    assert decoder.bad_frames == 2
    assert decoder.feed(good) == [Frame(FrameType.REQUEST, 1, 0, b"abc")]
    with pytest.raises(FormatError):
        unstuff(bytes([ESC, 0x00]))


def test_the_buffer_is_bounded_and_resyncs_after_an_overlong_run() -> None:
    decoder = FrameDecoder(max_payload=64)
    assert decoder.feed(b"\xc0" + b"\x55" * 10_000) == []
    assert len(decoder._buf) == 0
    assert decoder.feed(b"\x55" * 100 + encode_frame(FrameType.NAK, 2, 0)) == [
        Frame(FrameType.NAK, 2, 0)
    ]
    assert decoder.dropped_bytes >= 10_000
    # a frame larger than the decoder's limit is refused, however it arrives
    assert decoder.feed(encode_frame(FrameType.REQUEST, 0, 0, bytes(65))) == []


def test_hello_payloads() -> None:
    assert decode_hello(encode_hello(b"abcd")) == (1, b"abcd")
    with pytest.raises(FormatError):
        decode_hello(b"\x01abc")
    info = LinkInfo(1, 8, 1024, 4096, b"boot", b"link")
    assert LinkInfo.from_bytes(info.to_bytes()) == info
    assert info.to_bytes() == bytes.fromhex("0108040000001000") + b"bootlink"
    for bad in (LinkInfo(1, 0, 1024, 4096, b"boot", b"link"), LinkInfo(1, 8, 63, 1, b"b0ot", b"l")):
        with pytest.raises(FormatError):
            LinkInfo.from_bytes(bad.to_bytes())


def test_frame_repr_shows_no_payload() -> None:
    assert "secret" not in repr(Frame(FrameType.REQUEST, 0, 0, b"secret"))


@given(st.lists(st.binary(max_size=200), max_size=20))
@settings(max_examples=300)
def test_the_decoder_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_payload=64)
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert len(frame.payload) <= 64
        assert len(decoder._buf) <= encoded_size_bound(64)
