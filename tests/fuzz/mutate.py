"""The mutation engine: random inputs and mutations of valid artifacts, driven by one `Random`.

Everything here takes a `random.Random`. The long run (`fuzz/run.py`) passes a seeded
`random.Random`; the property tests pass Hypothesis's `st.randoms(use_true_random=False)`, whose
every call is a Hypothesis choice, so a failing input shrinks like any other.

Three flavours of input, each with its own tree form and serialiser:

- ``cbor``: the tree is what ``cbor2.loads`` returns, with every byte string that holds a whole
  CBOR container (protected headers, the manifest inside a bundle, a sealed value inside a link
  request...) opened into an `Embedded` node, so mutations reach nested artifacts. The encoder is
  our own (`encode`), so it can also write what ``cbor2.dumps`` never does: non-shortest heads
  (`Wide`), indefinite lengths (`Indefinite`), duplicate map keys (`Pairs`), shared-reference tags
  (28/29), invalid UTF-8 and arbitrary raw items (`Raw`).
- ``json``: ``json.loads`` trees, written back with ``json.dumps`` (the lot manifest).
- ``toml``: ``tomllib`` trees, written back by a small TOML writer (`toml_dumps`) (the asset list).

Sizes stay bounded: generated values have a bounded number of leaves, strings repeat a short
random pattern instead of drawing long random ones, and every mutation adds at most a few KiB.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import math
import random
import struct
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cbor2

Rng = random.Random
Path_ = tuple[tuple[str, Any], ...]

#: the largest random byte string a generator makes in one piece (long values repeat it)
MAX_RANDOM_PIECE = 96
#: how long a "long" value gets: past every field limit of the formats (chunk 64 KiB + tag)
LONG_SIZES = (65, 257, 1025, 4097, 65_553, 70_000)
FIELD_SIZES = (0, 1, 2, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 256)
INTERESTING_INTS = (
    0,
    1,
    -1,
    2,
    3,
    5,
    -7,
    -8,
    -35,
    16,
    17,
    18,
    23,
    24,
    31,
    -24,
    -25,
    255,
    256,
    -256,
    -257,
    1023,
    1024,
    65535,
    65536,
    65537,
    -65537,
    -65536,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**40,
    2**40 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    -(2**63),
    -(2**64),
    2**64,  # one past CBOR's 64-bit range: a bignum
    -(2**64) - 1,
    2**70,
)
HUGE_INTS = (256**2000, -(256**2000))  # 4817 digits: over Python's int-to-str limit
INTERESTING_FLOATS = (0.0, -0.0, 1.0, 3.0, 1.5, 65504.0, 1e300, math.inf, -math.inf, math.nan)
#: semantic tags cbor2 decodes into objects, the COSE tags, bignums, shared references...
TAGS = (
    0,
    1,
    2,
    3,
    4,
    5,
    16,
    17,
    18,
    21,
    24,
    25,
    28,
    29,
    30,
    32,
    35,
    36,
    37,
    96,
    97,
    98,
    100,
    256,
    258,
    260,
    261,
    1004,
    55799,
    65536,
    2**32,
    2**64 - 1,
)
CBOR_TOKENS = (
    b"\x00",
    b"\x17",
    b"\x18",
    b"\x19",
    b"\x1a",
    b"\x1b",
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x1f",
    b"\x20",
    b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x40",
    b"\x58\xff",
    b"\x5a\x7f\xff\xff\xff",
    b"\x5f",
    b"\x60",
    b"\x7f",
    b"\x80",
    b"\x9f",
    b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00",
    b"\xa0",
    b"\xbf",
    b"\xbb\x7f\xff\xff\xff\xff\xff\xff\xff",
    b"\xc0",
    b"\xc2\x58\x40",
    b"\xd0",
    b"\xd1",
    b"\xd2",
    b"\xd8\x18",
    b"\xd8\x1c",
    b"\xd8\x1d\x00",
    b"\xd9\xd9\xf7",
    b"\xdb\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xe0",
    b"\xf4",
    b"\xf5",
    b"\xf6",
    b"\xf7",
    b"\xf8\x20",
    b"\xf9\x7e\x00",
    b"\xfa\x7f\x80\x00\x00",
    b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"\xfc",
    b"\xff",
)
TEXT_TOKENS = (
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"'",
    b",",
    b":",
    b"=",
    b"\n",
    b"\r\n",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\U0010ffff",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"NaN",
    b"Infinity",
    b"nan",
    b"inf",
    b"0x7f",
    b"1_000",
    b"[[asset]]",
    b"[bundle]",
    b'"""',
    b"'''",
    b"#",
    b"1979-05-27T07:32:00Z",
    b"\x00",
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----END CERTIFICATE-----\n",
    b"9" * 4400,  # an integer over Python's int-from-str limit
)
STRING_SAMPLES = (
    "",
    " ",
    "\x00",
    "\x7f",
    "\u200b",
    "\ufeff",
    "\U0001f600",
    "é",
    "\n",
    "../../x",
    "/",
    "a" * 65,
    "0" * 16,
    "0" * 32,
    "zz" * 8,
)


# -- CBOR tree nodes beyond what cbor2 builds --------------------------------------------------
@dataclass(frozen=True, eq=False)
class Embedded:
    """A byte string that holds a whole CBOR container. ``raw`` is its original encoding while
    the tree under it is unchanged (so untouched nested artifacts keep their exact bytes)."""

    tree: Any
    raw: bytes | None = None


@dataclass(frozen=True, eq=False)
class Indefinite:
    """A list, map, byte or text string written with an indefinite length (RFC 8949 3.2.2);
    strings are written as their ``chunks``."""

    value: Any
    chunks: tuple[Any, ...] = ()


@dataclass(frozen=True, eq=False)
class Pairs:
    """A map written from its pairs: keys may repeat or be unhashable (arrays, maps)."""

    pairs: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True, eq=False)
class Wide:
    """An integer whose head uses ``width`` bytes (1, 2, 4 or 8) even if fewer would do."""

    value: int
    width: int


@dataclass(frozen=True, eq=False)
class Raw:
    """Bytes written verbatim where an item belongs."""

    data: bytes


# -- the CBOR encoder -----------------------------------------------------------------------------
_WIDTH_CODE = {1: 24, 2: 25, 4: 26, 8: 27}


def _head(out: list[bytes], major: int, n: int, width: int | None = None) -> None:
    if width is None and n < 24:
        out.append(bytes([major << 5 | n]))
        return
    least = 1 if n < 2**8 else 2 if n < 2**16 else 4 if n < 2**32 else 8
    width = max(width or 1, least)
    out.append(bytes([major << 5 | _WIDTH_CODE[width]]) + n.to_bytes(width, "big"))


def _int(out: list[bytes], v: int, width: int | None = None) -> None:
    if 0 <= v < 2**64:
        _head(out, 0, v, width)
    elif -(2**64) <= v < 0:
        _head(out, 1, -1 - v, width)
    else:  # a bignum (tags 2 and 3)
        n = v if v >= 0 else -1 - v
        _head(out, 6, 2 if v >= 0 else 3)
        data = n.to_bytes((n.bit_length() + 7) // 8, "big")
        _head(out, 2, len(data))
        out.append(data)


def _float(out: list[bytes], v: float) -> None:
    for code, fmt in ((0xF9, ">e"), (0xFA, ">f")):
        try:
            packed = struct.pack(fmt, v)
        except (OverflowError, struct.error):
            continue
        if math.isnan(v) or struct.unpack(fmt, packed)[0] == v:
            out.append(bytes([code]) + packed)
            return
    out.append(b"\xfb" + struct.pack(">d", v))


def _pairs(out: list[bytes], pairs: Any, depth: int) -> None:
    for k, x in pairs:
        _encode(k, out, depth + 1)
        _encode(x, out, depth + 1)


def _items(out: list[bytes], items: Any, depth: int) -> None:
    for x in items:
        _encode(x, out, depth + 1)


def _string(out: list[bytes], major: int, data: bytes) -> None:
    _head(out, major, len(data))
    out.append(data)


def _indefinite(out: list[bytes], v: Indefinite, depth: int) -> None:
    inner = v.value
    if isinstance(inner, list | tuple):
        out.append(b"\x9f")
        _items(out, inner, depth)
    elif isinstance(inner, dict):
        out.append(b"\xbf")
        _pairs(out, inner.items(), depth)
    else:  # a string in chunks (a chunk of the wrong type is a hostile input too)
        out.append(b"\x5f" if isinstance(inner, bytes) else b"\x7f")
        _items(out, v.chunks, depth)
    out.append(b"\xff")


def _simple(out: list[bytes], n: int) -> None:
    out.append(bytes([0xE0 | n]) if n < 24 else bytes([0xF8, n]))


_Encoder = Callable[[list[bytes], Any, int], None]
_ENCODERS: dict[type, _Encoder] = {
    type(None): lambda out, _v, _d: out.append(b"\xf6"),
    bool: lambda out, v, _d: out.append(b"\xf5" if v else b"\xf4"),
    int: lambda out, v, _d: _int(out, v),
    float: lambda out, v, _d: _float(out, v),
    bytes: lambda out, v, _d: _string(out, 2, v),
    # lone surrogates become invalid UTF-8, on purpose
    str: lambda out, v, _d: _string(out, 3, v.encode("utf-8", "surrogatepass")),
    list: lambda out, v, d: (_head(out, 4, len(v)), _items(out, v, d)),
    tuple: lambda out, v, d: (_head(out, 4, len(v)), _items(out, v, d)),
    dict: lambda out, v, d: (_head(out, 5, len(v)), _pairs(out, v.items(), d)),
    cbor2.CBORTag: lambda out, v, d: (_head(out, 6, v.tag), _encode(v.value, out, d + 1)),
    Embedded: lambda out, v, _d: _string(out, 2, v.raw if v.raw is not None else encode(v.tree)),
    Wide: lambda out, v, _d: _int(out, v.value, v.width),
    Raw: lambda out, v, _d: out.append(v.data),
    Pairs: lambda out, v, d: (_head(out, 5, len(v.pairs)), _pairs(out, v.pairs, d)),
    Indefinite: _indefinite,
    cbor2.CBORSimpleValue: lambda out, v, _d: _simple(out, v.value),
    type(cbor2.undefined): lambda out, _v, _d: out.append(b"\xf7"),
}


def _encode(v: Any, out: list[bytes], depth: int) -> None:
    if depth > 2000:
        raise RecursionError("tree too deep to encode")
    _ENCODERS[type(v)](out, v, depth)


def encode(tree: Any) -> bytes:
    out: list[bytes] = []
    _encode(tree, out, 0)
    return b"".join(out)


# -- CBOR trees from valid artifacts -------------------------------------------------------------
def _decode_whole(data: bytes) -> Any:
    """The CBOR item that is exactly ``data``, or raise ValueError."""
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except Exception as e:
        raise ValueError("not CBOR") from e
    if fp.tell() != len(data):
        raise ValueError("trailing bytes")
    return value


def _open_bytes(v: bytes, depth: int) -> Any:
    """An `Embedded` node if ``v`` is exactly one CBOR container, else ``v``."""
    if depth >= 6 or not v or v[0] >> 5 not in (4, 5, 6):
        return v
    try:
        inner = _decode_whole(v)
    except ValueError:
        return v
    if not isinstance(inner, list | dict | cbor2.CBORTag):
        return v
    return Embedded(_open_nested(inner, depth + 1), v)


def _open_nested(v: Any, depth: int) -> Any:
    t = type(v)
    if t is bytes:
        v = _open_bytes(v, depth)
    elif t is list:
        v = [_open_nested(x, depth) for x in v]
    elif t is dict:
        v = {k: _open_nested(x, depth) for k, x in v.items()}
    elif t is cbor2.CBORTag:
        v = cbor2.CBORTag(v.tag, _open_nested(v.value, depth))
    return v


def cbor_tree(data: bytes) -> Any:
    """The tree of a valid CBOR artifact, nested CBOR byte strings opened (`Embedded`)."""
    return _open_nested(_decode_whole(data), 0)


# -- walking and rebuilding trees ------------------------------------------------------------------
def _children(node: Any) -> list[tuple[tuple[str, Any], Any]]:
    t = type(node)
    if t is list:
        return [(("i", i), x) for i, x in enumerate(node)]
    if t is dict:
        kids: list[tuple[tuple[str, Any], Any]] = []
        for k, x in node.items():
            kids.append((("v", k), x))
            kids.append((("k", k), k))
        return kids
    if t is cbor2.CBORTag:
        return [(("t", None), node.value)]
    if t is Embedded:
        return [(("e", None), node.tree)]
    return []


def pick_path(rng: Rng, tree: Any, stop: int = 4) -> Path_:
    """A random path from the root: at each node stop with chance 1/``stop``, else descend into a
    random child. Deep nodes are reachable, shallow ones are favoured."""
    path: list[tuple[str, Any]] = []
    node = tree
    for _ in range(64):
        kids = _children(node)
        if not kids or rng.randint(0, stop - 1) == 0:
            break
        step, node = kids[rng.randint(0, len(kids) - 1)]
        path.append(step)
        if step[0] == "k":
            break
    return tuple(path)


def _replace_key(tree: dict[Any, Any], key: Any, new_key: Any) -> Any:
    pairs = [(new_key if k == key and type(k) is type(key) else k, x) for k, x in tree.items()]
    try:
        rebuilt = dict(pairs)
    except (TypeError, RuntimeError):  # an unhashable key: write the map from its pairs
        return Pairs(tuple(pairs))
    return rebuilt if len(rebuilt) == len(pairs) else Pairs(tuple(pairs))


def _replace_item(tree: Any, key: Any, rest: Path_, fn: Callable[[Any], Any]) -> Any:
    new = list(tree) if type(tree) is list else dict(tree)
    new[key] = replace_at(tree[key], rest, fn)
    return new


_REPLACERS: dict[str, Callable[[Any, Any, Path_, Callable[[Any], Any]], Any]] = {
    "i": _replace_item,
    "v": _replace_item,
    "k": lambda tree, key, _rest, fn: _replace_key(tree, key, fn(key)),
    "t": lambda tree, _key, rest, fn: cbor2.CBORTag(tree.tag, replace_at(tree.value, rest, fn)),
    "e": lambda tree, _key, rest, fn: Embedded(replace_at(tree.tree, rest, fn)),
}


def replace_at(tree: Any, path: Path_, fn: Callable[[Any], Any]) -> Any:
    """A copy of ``tree`` with the node at ``path`` replaced by ``fn(node)``; only the nodes on
    the path are copied (an `Embedded` node on it loses its original bytes)."""
    if not path:
        return fn(tree)
    (kind, key), rest = path[0], path[1:]
    return _REPLACERS[kind](tree, key, rest, fn)


def all_nodes(tree: Any, limit: int = 4000) -> list[Any]:
    """Up to ``limit`` nodes of ``tree``, breadth first (the splice pool of an artifact)."""
    found = [tree]
    i = 0
    while i < len(found) and len(found) < limit:
        found.extend(x for _, x in _children(found[i]))
        i += 1
    return found[:limit]


# -- random values --------------------------------------------------------------------------------
def random_bytes(rng: Rng, size: int) -> bytes:
    """``size`` bytes: random ones for short sizes, a repeated random pattern for long ones."""
    if size <= MAX_RANDOM_PIECE:
        return rng.randbytes(size)
    pattern = rng.randbytes(rng.randint(1, 16))
    return (pattern * (size // len(pattern) + 1))[:size]


def random_text(rng: Rng, flavor: str, max_len: int = 24) -> str:
    pick = rng.randint(0, 5)
    if pick == 0:
        return rng.choice(STRING_SAMPLES)
    if pick == 1:
        return "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, max_len)))
    top = 0xD7FF if flavor == "toml" else 0x10FFFF  # TOML text never holds a surrogate
    return "".join(chr(rng.randint(0, top)) for _ in range(rng.randint(0, max_len)))


def random_int(rng: Rng, huge: bool = True) -> int:
    pick = rng.randint(0, 9 if huge else 8)
    if pick < 6:
        return rng.choice(INTERESTING_INTS)
    if pick < 8:
        return rng.randint(-300, 70_000)
    if pick == 8:
        return rng.randint(-(2**64), 2**64 - 1)
    return rng.choice(HUGE_INTS)


@dataclass
class Vocabulary:
    """Strings, integers and byte strings seen in the valid artifacts, reused by the generators
    (the parsers' own field names, enum values and sizes reach them far sooner)."""

    texts: list[str]
    ints: list[int]
    blobs: list[bytes]

    @classmethod
    def of(cls, trees: Sequence[Any]) -> Vocabulary:
        texts: set[str] = set()
        ints: set[int] = set()
        blobs: set[bytes] = set()
        for tree in trees:
            for node in all_nodes(tree, limit=20_000):
                t = type(node)
                if t is str and len(node) <= 64:
                    texts.add(node)
                elif t is int:
                    ints.add(node)
                elif t is bytes and len(node) <= 64:
                    blobs.add(node)
        return cls(sorted(texts), sorted(ints), sorted(blobs))


TOML_TIMES = (
    datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.UTC),
    datetime.datetime(2024, 1, 1),  # a TOML local date-time
    datetime.date(1979, 5, 27),
    datetime.time(7, 32, 0, 999_999),
)


class Generator:
    """Random values of one flavour (``cbor``, ``json`` or ``toml``), with a vocabulary."""

    def __init__(self, flavor: str, vocab: Vocabulary) -> None:
        self.flavor = flavor
        self.vocab = vocab
        leaves: list[Callable[[Rng], Any]] = [self.text, self.text, self.int, self.int]
        leaves += [lambda rng: rng.choice([True, False]), self.float]
        if flavor == "cbor":
            leaves += [self.blob, self.blob, lambda _rng: None, self.odd]
        elif flavor == "json":
            leaves += [lambda _rng: None, self.text]
        else:
            leaves += [lambda rng: rng.choice(TOML_TIMES), self.text]
        self._leaves = leaves

    def text(self, rng: Rng) -> str:
        if self.vocab.texts and rng.randint(0, 2) == 0:
            return rng.choice(self.vocab.texts)
        return random_text(rng, self.flavor)

    def int(self, rng: Rng) -> int:
        if self.vocab.ints and rng.randint(0, 1):
            return rng.choice(self.vocab.ints)
        return random_int(rng, huge=self.flavor == "cbor")  # JSON, TOML writers refuse huge ints

    def float(self, rng: Rng) -> float:
        v = rng.choice(INTERESTING_FLOATS)
        return v if self.flavor != "json" or math.isfinite(v) or rng.randint(0, 3) == 0 else 0.5

    def blob(self, rng: Rng) -> bytes:
        if self.vocab.blobs and rng.randint(0, 2) == 0:
            return rng.choice(self.vocab.blobs)
        return random_bytes(rng, rng.choice(FIELD_SIZES))

    def odd(self, rng: Rng) -> Any:
        """CBOR items no trustprov format uses: undefined, simple values, raw tokens."""
        pick = rng.randint(0, 2)
        if pick == 0:
            return cbor2.undefined
        if pick == 1:
            return cbor2.CBORSimpleValue(rng.choice([0, 19, 32, 255]))
        return Raw(rng.choice(CBOR_TOKENS))

    def key(self, rng: Rng) -> Any:
        if self.flavor != "cbor" or rng.randint(0, 3):
            return self.text(rng)
        return rng.choice([self.int, self.int, self.blob, self.odd_key])(rng)

    def odd_key(self, rng: Rng) -> Any:
        return rng.choice([None, True, False, 1.0, 3.0, cbor2.CBORTag(1, 0)])

    def leaf(self, rng: Rng) -> Any:
        return self._leaves[rng.randint(0, len(self._leaves) - 1)](rng)

    def value(self, rng: Rng, budget: int = 24, depth: int = 0) -> Any:
        """A random value of at most ``budget`` leaves (shared across the whole value)."""
        pick = rng.randint(0, 9)
        if budget <= 1 or depth > 6 or pick < 5:
            return self.leaf(rng)
        n = rng.randint(0, min(6, budget))
        share = max(1, (budget - 1) // max(1, n))
        if pick < 7:
            return [self.value(rng, share, depth + 1) for _ in range(n)]
        if pick < 9 or self.flavor != "cbor":
            pairs = [(self.key(rng), self.value(rng, share, depth + 1)) for _ in range(n)]
            try:
                return dict(pairs)
            except (TypeError, RuntimeError):  # a key cbor2 cannot hash
                return Pairs(tuple(pairs))
        tag = rng.choice(TAGS) if rng.randint(0, 3) else rng.randint(0, 2**16)
        return cbor2.CBORTag(tag, self.value(rng, share, depth + 1))

    def of_type_other_than(self, rng: Rng, node: Any) -> Any:
        """A value whose type differs from ``node``'s (type confusion)."""
        for _ in range(8):
            v = self.value(rng, budget=4)
            if type(v) is not type(node):
                return v
        return self.leaf(rng)


# -- mutations of one node -----------------------------------------------------------------------
# Each operation returns the changed value, or None where it does not apply (an empty list...).
Op = Callable[[Rng, Any, Generator], Any]


def _apply(rng: Rng, ops: Sequence[Op], v: Any, gen: Generator) -> Any:
    for _ in range(4):
        new = ops[rng.randint(0, len(ops) - 1)](rng, v, gen)
        if new is not None:
            return new
    return gen.of_type_other_than(rng, v)


def _cut(rng: Rng, v: Any) -> Any:
    return v[: rng.randint(0, len(v) - 1)] if v else None


def _drop_one(rng: Rng, v: Any) -> Any:
    if not v:
        return None
    i = rng.randint(0, len(v) - 1)
    return v[:i] + v[i + 1 :]


BYTES_OPS: tuple[Op, ...] = (
    lambda rng, v, _gen: _cut(rng, v),
    lambda rng, v, _gen: v + random_bytes(rng, rng.randint(1, 16)),
    lambda rng, _v, _gen: random_bytes(rng, rng.choice(FIELD_SIZES)),
    lambda rng, _v, _gen: random_bytes(rng, rng.choice(LONG_SIZES)),
    lambda _rng, _v, _gen: b"",
    lambda rng, v, _gen: byte_mutation(rng, v) if v else None,
)


def _insert_text(rng: Rng, v: str, gen: Generator) -> str:
    i = rng.randint(0, len(v))
    return v[:i] + random_text(rng, gen.flavor, 3) + v[i:]


def _flip_char(rng: Rng, v: str, gen: Generator) -> str | None:
    if not v:
        return None
    i = rng.randint(0, len(v) - 1)
    c = ord(v[i]) ^ (1 << rng.randint(0, 7))
    if gen.flavor == "toml" and 0xD800 <= c <= 0xDFFF:
        c = 0x41
    return v[:i] + chr(c) + v[i + 1 :]


def _pem_mutation(rng: Rng, v: str, gen: Generator) -> str | None:
    """A PEM block whose DER inside is mutated (so the X.509 parser, not base64, sees it)."""
    lines = v.strip().splitlines()
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN"):
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        return None
    body = base64.b64encode(byte_mutation(rng, der)).decode()
    wrapped = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([lines[0], *wrapped, lines[-1], ""])


TEXT_OPS: tuple[Op, ...] = (
    _pem_mutation,
    _pem_mutation,
    lambda rng, v, _gen: _drop_one(rng, v),
    lambda rng, v, _gen: _cut(rng, v),
    _insert_text,
    _flip_char,
    lambda rng, v, _gen: v * rng.choice([2, 8, 64]),
    lambda rng, _v, gen: gen.text(rng),
    lambda _rng, v, _gen: v.upper() if v != v.upper() else v.lower(),
    lambda rng, _v, gen: random_text(rng, gen.flavor),
)
INT_OPS: tuple[Op, ...] = (
    lambda rng, v, _gen: v + rng.choice([1, -1]),
    lambda _rng, v, _gen: -v,
    lambda rng, v, _gen: v ^ (1 << rng.randint(0, 70)),
    lambda rng, _v, gen: gen.int(rng),
    lambda rng, _v, gen: random_int(rng, huge=gen.flavor == "cbor"),
)


def _insert_item(rng: Rng, v: list[Any], gen: Generator) -> list[Any]:
    i = rng.randint(0, len(v))
    return [*v[:i], gen.value(rng, budget=6), *v[i:]]


def _duplicate_item(rng: Rng, v: list[Any], gen: Generator) -> list[Any] | None:
    if not v:
        return None
    i = rng.randint(0, len(v) - 1)
    return [*v[: i + 1], v[i], *v[i + 1 :]]


def _swap_items(rng: Rng, v: list[Any], gen: Generator) -> list[Any] | None:
    if len(v) < 2:
        return None
    i, j = rng.randint(0, len(v) - 1), rng.randint(0, len(v) - 1)
    new = list(v)
    new[i], new[j] = new[j], new[i]
    return new


LIST_OPS: tuple[Op, ...] = (
    lambda rng, v, _gen: _drop_one(rng, v),
    _insert_item,
    _duplicate_item,
    _swap_items,
    lambda _rng, _v, _gen: [],
    # many copies: past the "at most N" limits (64 assets...)
    lambda rng, v, _gen: v * rng.choice([2, 33, 65]) if v else None,
    lambda _rng, v, _gen: v[:-1] if v else None,
    lambda _rng, v, _gen: list(reversed(v)),
)


def _with_pair(v: dict[Any, Any], key: Any, value: Any) -> Any:
    """``v`` and one more pair (a CBOR key may be unhashable: then the map is `Pairs`)."""
    try:
        return {**v, key: value}
    except (TypeError, RuntimeError):
        return Pairs((*v.items(), (key, value)))


def _drop_key(rng: Rng, v: dict[Any, Any], gen: Generator) -> Any:
    if not v:
        return None
    k = rng.choice(list(v))
    return {a: b for a, b in v.items() if a is not k}


def _repeat_key(rng: Rng, v: dict[Any, Any], gen: Generator) -> Any:
    """The same key twice (CBOR only: JSON and TOML trees are dicts)."""
    if not v or gen.flavor != "cbor":
        return None
    return Pairs((*v.items(), (rng.choice(list(v)), gen.value(rng, budget=4))))


def _retype_key(rng: Rng, v: dict[Any, Any], gen: Generator) -> Any:
    """A key of another type with the same "meaning": 1 for "1", b"kind" for "kind"..."""
    if not v:
        return None
    k = rng.choice(list(v))
    try:
        other: Any = str(k)
    except ValueError:  # an integer too long for str()
        other = b"\x00"
    if isinstance(k, str):
        digits = k.isascii() and k.isdigit() and len(k) < 100
        other = int(k) if digits else k.encode("utf-8", "surrogatepass")
    if gen.flavor != "cbor":
        other = str(other) + rng.choice(["", " ", "\x00"])
    return _with_pair({a: b for a, b in v.items() if a is not k}, other, v[k])


def _move_values(rng: Rng, v: dict[Any, Any], gen: Generator) -> Any:
    if len(v) < 2:
        return None
    values = list(v.values())
    rng.shuffle(values)
    return dict(zip(list(v), values, strict=True))


MAP_OPS: tuple[Op, ...] = (
    _drop_key,
    lambda rng, v, gen: _with_pair(v, gen.key(rng), gen.value(rng, budget=6)),
    _repeat_key,
    lambda _rng, _v, _gen: {},
    _retype_key,
    _move_values,
    lambda rng, v, gen: _with_pair(v, gen.key(rng), gen.value(rng, budget=2)),
)
OPS_BY_TYPE: dict[type, tuple[Op, ...]] = {
    bytes: BYTES_OPS,
    str: TEXT_OPS,
    int: INT_OPS,
    list: LIST_OPS,
    dict: MAP_OPS,
}


def _retag(rng: Rng, node: Any, gen: Generator) -> Any:
    """Wrap ``node`` in a tag, or change or drop its tag."""
    if gen.flavor != "cbor":
        return None
    if isinstance(node, cbor2.CBORTag) and rng.randint(0, 1):
        return node.value if rng.randint(0, 1) else cbor2.CBORTag(rng.choice(TAGS), node.value)
    return cbor2.CBORTag(rng.choice(TAGS), node)


def _shared(rng: Rng, node: Any, gen: Generator) -> Any:
    """Shared references (tags 28/29): a value that contains itself, or a dangling reference."""
    if gen.flavor != "cbor":
        return None
    if isinstance(node, list):
        return cbor2.CBORTag(28, [*node, cbor2.CBORTag(29, 0)])
    if isinstance(node, dict):
        return cbor2.CBORTag(28, Pairs((*node.items(), ("self", cbor2.CBORTag(29, 0)))))
    return cbor2.CBORTag(29, rng.choice([0, 1, 2**32]))


def _string_in_chunks(rng: Rng, node: bytes | str) -> Indefinite:
    cut = rng.randint(0, len(node))
    chunks: tuple[Any, ...] = (node[:cut], node[cut:])
    if rng.randint(0, 3) == 0:  # a chunk of the other string type
        rest = node[cut:]
        other = (
            rest.decode("latin-1")
            if isinstance(rest, bytes)
            else rest.encode("utf-8", "surrogatepass")
        )
        chunks = (node[:cut], other)
    return Indefinite(node, chunks)


def _re_encoded(rng: Rng, node: Any, gen: Generator) -> Any:
    """The same value encoded another legal or illegal way: a non-shortest integer head, an
    indefinite length, a nested artifact as plain bytes, a reserved simple value."""
    t = type(node)
    new: Any = None
    if gen.flavor != "cbor":
        pass
    elif t is int and -(2**64) <= node < 2**64:
        new = Wide(node, rng.choice([1, 2, 4, 8]))
    elif t is list or t is dict:
        new = Indefinite(node)
    elif t is bytes or t is str:
        new = _string_in_chunks(rng, node)
    elif t is Embedded:
        new = encode(node)
    elif t is bool or node is None:
        new = Raw(rng.choice([b"\xf8\x14", b"\xf8\x15", b"\xf8\x16", b"\xf7"]))
    return new


def _same_type(rng: Rng, node: Any, gen: Generator) -> Any:
    """A value of the node's own type, changed: at a boundary, cut, extended, emptied..."""
    if type(node) is Embedded:
        return Embedded(_same_type(rng, node.tree, gen))
    ops = OPS_BY_TYPE.get(type(node))
    return _apply(rng, ops, node, gen) if ops else None


NODE_OPS: tuple[Op, ...] = (
    lambda rng, node, gen: gen.of_type_other_than(rng, node),  # type confusion
    lambda rng, node, gen: gen.of_type_other_than(rng, node),
    lambda rng, _node, gen: gen.value(rng),
    _retag,
    _shared,
    _re_encoded,
    # a nested artifact's bytes, mutated
    lambda rng, node, _gen: byte_mutation(rng, encode(node)) if type(node) is Embedded else None,
    _same_type,
    _same_type,
    _same_type,
    _same_type,
)


def mutate_node(rng: Rng, node: Any, gen: Generator, pool: Sequence[Any]) -> Any:
    """One change to ``node``: type confusion, a value of its type at a boundary, a splice from
    another artifact, a wrapping tag or non-canonical encoding, or a shared-reference cycle."""
    if pool and rng.randint(0, 9) == 0:
        return rng.choice(pool)
    return _apply(rng, NODE_OPS, node, gen)


# -- byte-level mutations ------------------------------------------------------------------------
TOKENS = CBOR_TOKENS + TEXT_TOKENS
ByteOp = Callable[[Rng, bytearray, int, bytes | None], bytearray]


def _flip_bits(rng: Rng, b: bytearray, i: int, other: bytes | None) -> bytearray:
    for _ in range(rng.randint(1, 8)):
        j = rng.randint(0, len(b) - 1)
        b[j] ^= 1 << rng.randint(0, 7)
    return b


def _set(b: bytearray, i: int, j: int, value: bytes) -> bytearray:
    b[i:j] = value
    return b


def _splice(rng: Rng, b: bytearray, i: int, other: bytes | None) -> bytearray:
    """A prefix of one artifact and the rest of another, or a piece of it inserted."""
    if not other:
        return b[:i] + b[i:] * 2
    j = rng.randint(0, len(other))
    if rng.randint(0, 1):
        return b[:i] + bytearray(other[j:])
    return _set(b, i, i, other[j : j + rng.randint(1, 512)])


def splice_bytes(rng: Rng, data: bytes, other: bytes) -> bytes:
    """Two artifacts spliced: a prefix of ``data`` and a suffix of ``other``, or a piece of
    ``other`` inserted into ``data``."""
    if not data:
        return other
    return bytes(_splice(rng, bytearray(data), rng.randint(0, len(data) - 1), other))


BYTE_OPS: tuple[ByteOp, ...] = (
    _flip_bits,
    _flip_bits,
    lambda rng, b, i, _o: _set(b, i, i + 1, bytes([rng.choice(b"\x00\x01\x17\x18\x1f\x40\xff")])),
    lambda _rng, b, i, _o: b[:i],  # truncation
    lambda rng, b, i, _o: _set(b, i, i + rng.randint(1, 64), b""),
    lambda rng, b, i, _o: _set(b, i, i, rng.randbytes(rng.randint(1, 32))),
    lambda rng, b, i, _o: _set(b, i, i, rng.choice(TOKENS)),
    lambda rng, b, i, _o: _set(b, i, i, b[i : i + rng.randint(1, 256)]),  # duplication
    lambda rng, b, i, _o: _set(b, i, i + 16, rng.randbytes(16)),
    # a length or a head off by a little
    lambda rng, b, i, _o: _set(b, i, i + 1, bytes([(b[i] + rng.choice([1, -1, 2, 24])) % 256])),
    _splice,
    _splice,
)


def byte_mutation(rng: Rng, data: bytes, other: bytes | None = None) -> bytes:
    """One byte-level change: bit flips, an interesting byte, truncation, deletion, insertion of
    random bytes or a format token, duplication or overwrite of a slice, or a splice with
    ``other`` (another valid artifact)."""
    if not data:
        return rng.choice(TOKENS) + rng.randbytes(rng.randint(0, 8))
    b = bytearray(data)
    i = rng.randint(0, len(b) - 1)
    return bytes(BYTE_OPS[rng.randint(0, len(BYTE_OPS) - 1)](rng, b, i, other))


# -- serialising trees ---------------------------------------------------------------------------
def _toml_string(s: str) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _toml_float(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        text = "true" if v else "false"
    elif isinstance(v, int):
        text = str(v)
    elif isinstance(v, float):
        text = _toml_float(v)
    elif isinstance(v, datetime.date | datetime.time):
        text = v.isoformat()
    elif isinstance(v, list | tuple):
        text = "[" + ", ".join(_toml_value(x) for x in v) + "]"
    elif isinstance(v, dict):
        text = "{" + ", ".join(f"{_toml_string(str(k))} = {_toml_value(x)}" for k, x in v.items())
        text += "}"
    else:
        text = _toml_string(str(v))
    return text


def toml_dumps(doc: Any) -> str:
    """TOML text for a tree: top-level tables as ``[t]``, lists of tables as ``[[t]]``,
    everything else inline. A tree that is not a table is written as one key."""
    if not isinstance(doc, dict):
        doc = {"value": doc}
    lines: list[str] = []
    later: list[tuple[str, Any]] = []
    for k, v in doc.items():
        if isinstance(v, dict) or (
            isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
        ):
            later.append((str(k), v))
        else:
            lines.append(f"{_toml_string(str(k))} = {_toml_value(v)}")
    for k, v in later:
        tables = [v] if isinstance(v, dict) else v
        header = f"[{_toml_string(k)}]" if isinstance(v, dict) else f"[[{_toml_string(k)}]]"
        for table in tables:
            lines.append("")
            lines.append(header)
            lines.extend(f"{_toml_string(str(a))} = {_toml_value(x)}" for a, x in table.items())
    return "\n".join(lines) + "\n"


def serialise(rng: Rng, tree: Any, flavor: str) -> bytes:
    if flavor == "cbor":
        return encode(tree)
    if flavor == "json":
        text = json.dumps(
            tree,
            indent=rng.choice([None, 1]),
            ensure_ascii=bool(rng.randint(0, 1)),
            default=str,
        )
        return text.encode("utf-8", "surrogatepass")
    return toml_dumps(tree).encode("utf-8", "surrogatepass")


def parse_tree(data: bytes, flavor: str) -> Any:
    """The tree of a valid artifact of ``flavor``."""
    if flavor == "cbor":
        return cbor_tree(data)
    if flavor == "json":
        return json.loads(data)
    return tomllib.loads(data.decode("utf-8"))
