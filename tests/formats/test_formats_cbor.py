"""trustprov.formats.cbor: the canonical encoder and the strict, size-limited decoder."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import cbor2
import pytest

from trustprov.errors import FormatError
from trustprov.formats import cbor


def dec(data: Any, limit: int = 1024) -> Any:
    return cbor.decode(data, limit=limit, what="test")


def test_encode_is_core_deterministic() -> None:
    # map keys sorted by their encoded bytes (shorter first), smallest integer encodings
    assert cbor.encode({"bb": 1, "a": 2, 10: 3, -1: 4}) == bytes.fromhex(
        "a40a032004616102626262" + "01"
    )
    assert cbor.encode(23) == b"\x17"
    assert cbor.encode(24) == b"\x18\x18"
    assert cbor.encode(b"") == b"\x40"
    assert cbor.encode(1.5) == bytes.fromhex("f93e00")  # shortest float


def test_encode_does_not_depend_on_insertion_order() -> None:
    assert cbor.encode({"x": 1, "y": [1, 2], 3: b"z"}) == cbor.encode(
        {3: b"z", "y": [1, 2], "x": 1}
    )


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 2**64 - 1, -(2**64), "text", b"bytes", [1, [2, [3]]], {"a": {1: b""}}, True, None],
)
def test_round_trip(value: Any) -> None:
    assert dec(cbor.encode(value)) == value


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decode_accepts_byte_like(kind: type) -> None:
    assert dec(kind(b"\x83\x01\x02\x03")) == [1, 2, 3]


@pytest.mark.parametrize("data", ["\x01", 1, None, [1], {"a": 1}])
def test_decode_refuses_non_bytes(data: Any) -> None:
    with pytest.raises(FormatError, match="expected bytes"):
        dec(data)


def test_decode_size_limit() -> None:
    data = cbor.encode(b"x" * 100)
    assert dec(data, limit=len(data)) == b"x" * 100
    with pytest.raises(FormatError, match="exceeds the limit"):
        dec(data, limit=len(data) - 1)


def test_decode_empty() -> None:
    with pytest.raises(FormatError, match="empty"):
        dec(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x02",  # two items
        b"\x80\x00",
        cbor.encode({"a": 1}) + b"\x00",
        cbor.encode(b"abc") + b"\xff",
    ],
)
def test_decode_trailing_bytes(data: bytes) -> None:
    with pytest.raises(FormatError, match="trailing"):
        dec(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x1c",  # reserved additional information
        b"\x82\x01",  # array of 2 with one item
        b"\x5a\xff\xff\xff\xff",  # bstr of 4 GiB announced, nothing there
        b"\x7b\xff\xff\xff\xff\xff\xff\xff\xff",  # tstr of 2**64-1 bytes announced
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # array of 2**64-1 items announced
        b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",  # map of 2**32 pairs announced
        b"\x62\xc3\x28",  # invalid UTF-8 in a text string
        b"\xc1\x61a",  # epoch datetime from text
        b"\x18",  # truncated argument
        b"\xfe",  # reserved simple/float encoding
        b"\x5f\x01\xff",  # indefinite bstr with a non-bstr chunk
        b"\x81" * 100_000 + b"\x00",  # nesting deeper than any stack
    ],
)
def test_decode_malformed(data: bytes) -> None:
    with pytest.raises(FormatError):
        dec(data, limit=10**6)


@pytest.mark.parametrize("data", [b"\xff", b"\x81\xff", b"\xa1\x01\xff"])
def test_decode_refuses_a_lone_break_stop_code(data: bytes) -> None:
    """0xff is only well-formed as the end of an indefinite-length item (RFC 8949 3.2.1)."""
    with pytest.raises(FormatError):
        dec(data)


def test_decoder_failure_is_chained() -> None:
    with pytest.raises(FormatError, match="not valid CBOR") as e:
        dec(b"\x62\xc3\x28")  # well-formed heads, invalid UTF-8: cbor2 refuses it
    assert e.value.__cause__ is not None


def test_expect_refuses_bool_as_int() -> None:
    assert cbor.expect(5, int, "x") == 5
    assert cbor.expect(True, bool, "x") is True
    with pytest.raises(FormatError):
        cbor.expect(True, int, "x")
    with pytest.raises(FormatError):
        cbor.expect("5", int, "x")
    assert cbor.expect(b"a", (bytes, str), "x") == b"a"


def test_expect_map() -> None:
    assert cbor.expect_map({"a": 1, "b": 2}, "m", {"a"}, {"b", "c"}) == {"a": 1, "b": 2}
    with pytest.raises(FormatError, match="missing"):
        cbor.expect_map({"b": 2}, "m", {"a"}, {"b"})
    with pytest.raises(FormatError, match="unknown"):
        cbor.expect_map({"a": 1, "z": 2}, "m", {"a"})
    with pytest.raises(FormatError, match="wrong type"):
        cbor.expect_map([("a", 1)], "m", {"a"})


def test_expect_uint() -> None:
    assert cbor.expect_uint(0, "u") == 0
    assert cbor.expect_uint(2**64 - 1, "u") == 2**64 - 1
    assert cbor.expect_uint(10, "u", 10) == 10
    for bad in (-1, 2**64, 11, True, 1.0, "1"):
        with pytest.raises(FormatError):
            cbor.expect_uint(bad, "u", 10 if bad == 11 else 2**64 - 1)


def test_expect_bstr() -> None:
    assert cbor.expect_bstr(b"abc", "b", 3) == b"abc"
    assert cbor.expect_bstr(b"abc", "b", max_len=3) == b"abc"
    with pytest.raises(FormatError, match="must be 4 bytes"):
        cbor.expect_bstr(b"abc", "b", 4)
    with pytest.raises(FormatError, match="longer than 2"):
        cbor.expect_bstr(b"abc", "b", max_len=2)
    with pytest.raises(FormatError):
        cbor.expect_bstr("abc", "b")


@pytest.mark.parametrize("bad", ["", "x" * 65, "tab\there", "new\nline", "\x00", 7, b"name"])
def test_expect_name_refuses(bad: Any) -> None:
    with pytest.raises(FormatError):
        cbor.expect_name(bad, "n", 64)


def test_expect_name_accepts() -> None:
    assert cbor.expect_name("x" * 64, "n", 64) == "x" * 64
    assert cbor.expect_name("clé 1", "n", 64) == "clé 1"


def test_expect_name_counts_utf8_bytes_not_characters() -> None:
    """16 four-byte characters fill 64 bytes; 17 (68 bytes, still under 64 characters) do not,
    nor 33 two-byte ones; a lone surrogate (no UTF-8 at all) is refused as a format error."""
    assert cbor.expect_name("\U0001d52f" * 16, "n", 64) == "\U0001d52f" * 16
    for bad in ("\U0001d52f" * 17, "é" * 33, "\ud800"):
        with pytest.raises(FormatError, match="bytes in UTF-8"):
            cbor.expect_name(bad, "n", 64)


def test_huge_bignum_key_is_a_format_error() -> None:
    """An unknown map key that is a bignum with more than 4300 decimal digits: refused as
    FormatError, never Python's int-to-str ValueError from building the error message."""
    big = cbor2.CBORTag(2, b"\x01" * 2000)
    with pytest.raises(FormatError):
        cbor.expect_map(dec(cbor2.dumps({"a": 1, big: 2}), limit=10**6), "m", {"a"})


@pytest.mark.parametrize(
    "key",
    [256**2000, -(256**2000), (256**2000,), "k" * 10_000],
    ids=["huge-int", "huge-negative", "tuple-of-huge", "long-text"],
)
def test_expect_map_error_message_survives_any_key(key: Any) -> None:
    with pytest.raises(FormatError, match="unknown"):
        cbor.expect_map({"a": 1, key: 2}, "m", {"a"})
    with pytest.raises(FormatError, match="missing"):
        cbor.expect_map({key: 2}, "m", {"a"}, {key})


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("f93c00"),  # 1.0 as a half float: Python says 1.0 == 1
        bytes.fromhex("fb4008000000000000"),  # 3.0 as a double
        bytes.fromhex("a1f94200f6"),  # a float map key
        bytes.fromhex("c249010000000000000000"),  # bignum 2**64: beyond CBOR's integers
        bytes.fromhex("c349010000000000000000"),  # -(2**64) - 1
        bytes.fromhex("f7"),  # undefined
        bytes.fromhex("e0"),  # simple value 0
        bytes.fromhex("d9010283010203"),  # tag 258: a set
        bytes.fromhex("c1186e"),  # tag 1: an epoch date
    ],
)
def test_decode_refuses_items_trustprov_never_uses(data: bytes) -> None:
    """The formats use only ints (64-bit), bstr, tstr, bool, null, arrays, maps and the COSE
    tags: anything else decoded from hostile input is refused, wherever it is nested."""
    with pytest.raises(FormatError):
        dec(data)
    with pytest.raises(FormatError):
        dec(b"\x82\x00\xa1\x61k" + data)  # [0, {"k": item}]


def _shared_dag(levels: int) -> bytes:
    """Tags 28/29 (shared references): level i = [level i-1, a reference to level i-1], so a
    walk that does not remember what it has seen visits 2**levels lists."""
    data = b"\xd8\x1c\x80"
    for i in range(1, levels + 1):
        data = b"\xd8\x1c\x82" + data + b"\xd8\x1d\x18" + bytes([levels - i + 1])
    return data


SHARED = {
    "list-containing-itself": bytes.fromhex("d81c81d81d00"),
    "map-containing-itself": bytes.fromhex("d81ca1616bd81d00"),
    "dag-of-40-levels": _shared_dag(40),
}
DECODE_IN_CHILD = """
import sys
from trustprov.errors import FormatError
from trustprov.formats import cbor
try:
    cbor.decode(bytes.fromhex(sys.argv[1]), limit=4096, what="x")
except FormatError:
    print("refused")
else:
    print("accepted")
"""


@pytest.mark.parametrize("name", SHARED)
def test_decode_of_shared_references_terminates_and_refuses(name: str) -> None:
    """trustprov's formats never use shared references (CBOR tags 28/29); a few hostile bytes
    of them must be refused at once, not make the decoder loop (cycles) or walk an
    exponential number of paths (a DAG). Run in a child process so a hang cannot stall the
    suite."""
    data = SHARED[name]
    assert len(data) < 300
    try:
        done = subprocess.run(
            [sys.executable, "-c", DECODE_IN_CHILD, data.hex()],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"cbor.decode of {len(data)} bytes ({name}) did not finish in 5 s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"


# -- the reused encoder and decoders ------------------------------------------------------------
REUSE_VALUES: list[Any] = [
    {},
    {"ok": {}},
    [1, -2, b"\x00" * 300, "text", None, True, False],
    {"bb": [{"a": b"x"}], 10: {1: 2}, -1: 2**64 - 1},
    b"\x01" * 200_000,
]


def test_encode_gives_cbor2s_canonical_bytes_call_after_call() -> None:
    for value in REUSE_VALUES * 2:  # the second round runs on the encoder the first one used
        assert cbor.encode(value) == cbor2.dumps(value, canonical=True)


def test_an_encode_that_fails_leaves_the_next_encode_whole() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for bad in ({1: [object()]}, {"a": cyclic}):
        with pytest.raises(Exception):  # noqa: B017, PT011 - cbor2's own error types
            cbor.encode(bad)
        for value in REUSE_VALUES:
            assert cbor.encode(value) == cbor2.dumps(value, canonical=True)


def test_a_decode_that_fails_leaves_the_next_decode_whole() -> None:
    good = [cbor.encode(v) for v in REUSE_VALUES[:4]]
    # well-formed heads around text that is no UTF-8: the walk passes them, and cbor2 stops
    # half-way through a map, once on a key (decoding keys, it builds immutable values)
    for bad in (b"\xa1\x61a\xa1\x61b\x61\xff", b"\xa1\x61a\xa1\x61\xff\x01", b"\x82\x01\x61\xff"):
        with pytest.raises(FormatError, match="not valid CBOR"):
            dec(bad)
        for data, value in zip(good, REUSE_VALUES, strict=False):
            assert dec(data) == value


def test_decoders_of_two_threads_do_not_mix() -> None:
    a, b = cbor.encode({"a": [1] * 50}), cbor.encode({"b": [b"x" * 100] * 50})
    wrong: list[Any] = []

    def run(data: bytes, want: Any) -> None:
        for _ in range(2000):
            got = cbor.decode(data, limit=10_000, what="t")
            if got != want:
                wrong.append(got)
            if cbor.encode(want) != data:
                wrong.append(want)

    threads = [
        threading.Thread(target=run, args=(a, {"a": [1] * 50})),
        threading.Thread(target=run, args=(b, {"b": [b"x" * 100] * 50})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_large_encoding_is_not_kept_by_the_encoder() -> None:
    big = cbor.encode(b"\x00" * (1 << 20))
    assert cbor._encoders.fp.getbuffer().nbytes < 1 << 16
    assert big == cbor2.dumps(b"\x00" * (1 << 20), canonical=True)
    small = cbor.encode({"ok": {}})
    assert cbor._encoders.fp.getbuffer().nbytes == len(small)
