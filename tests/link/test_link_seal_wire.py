"""The sealing run's seal.chunk request and answer: the canonical bytes of the generic encoder,
and an answer read exactly as the generic decoder reads it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustprov.errors import ChipRefused, TransportError
from trustprov.formats import cbor
from trustprov.link import messages, seal_wire

# each side of every CBOR head length: 1, 2, 3, 5 and 9 bytes
BOUNDS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**40]
LENGTHS = [0, 1, 23, 24, 255, 256, 16384, 31744, 65535, 65536]


@pytest.mark.parametrize("index", BOUNDS)
@pytest.mark.parametrize("length", LENGTHS)
def test_the_request_is_the_generic_encoders_bytes(index: int, length: int) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    assert seal_wire.chunk_request(index, data) == messages.encode_request(
        "seal.chunk", {"index": index, "data": data}
    )


def test_no_request_for_a_negative_index() -> None:
    with pytest.raises(ValueError, match="negative"):
        seal_wire.chunk_request(-1, b"x")


@pytest.mark.parametrize("length", LENGTHS)
def test_a_sealed_chunk_is_read_from_its_answer_without_a_copy(length: int) -> None:
    chunk = bytes([7]) * length
    answer = messages.encode_ok({"chunk": chunk})
    view = seal_wire.chunk_answer(answer, length)
    assert view == chunk
    assert view.obj is answer  # a view of the answer itself


def test_a_refusal_is_raised_with_the_chips_code() -> None:
    answer = messages.encode_error("bad-sequence", "chunks must come in order")
    with pytest.raises(ChipRefused) as e:
        seal_wire.chunk_answer(answer, 16)
    assert e.value.code == "bad-sequence"


@pytest.mark.parametrize(
    "answer",
    [
        messages.encode_ok({}),
        messages.encode_ok({"chunk": "text"}),
        messages.encode_ok({"chunk": bytes(16)}) + b"\x00",  # trailing byte
        messages.encode_ok({"chunk": bytes(16)})[:-1],  # one byte short
        b"",
    ],
)
def test_any_other_answer_is_a_transport_error(answer: bytes) -> None:
    with pytest.raises(TransportError):
        seal_wire.chunk_answer(answer, 16)


def test_a_chunk_of_another_length_is_left_to_the_bundle_writer() -> None:
    answer = messages.encode_ok({"chunk": bytes(20)})
    assert seal_wire.chunk_answer(answer, 16) == bytes(20)


def _generic(answer: bytes) -> object:
    try:
        chunk = messages.decode_response(answer).get("chunk")
    except (ChipRefused, TransportError) as e:
        return type(e)
    return chunk if isinstance(chunk, bytes) else TransportError


def _fast(answer: bytes, n: int) -> object:
    try:
        return bytes(seal_wire.chunk_answer(answer, n))
    except (ChipRefused, TransportError) as e:
        return type(e)


@given(
    st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda v, cut, extra: cbor.encode({"ok": {"chunk": v}})[: cut or None] + extra,
            st.binary(max_size=40),
            st.integers(-3, 0),
            st.binary(max_size=2),
        ),
    ),
    st.integers(0, 40),
)
def test_the_fast_path_reads_every_answer_as_the_generic_decoder(answer: bytes, n: int) -> None:
    assert _fast(answer, n) == _generic(answer)
