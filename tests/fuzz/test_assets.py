"""The OEM's asset list: ``assets.load(path)`` (bytes, TOML, then ``assets.parse``) and
``assets.parse(doc, base)`` on documents TOML can express. Both raise only `InputError` or
`FormatError`."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustprov.errors import FormatError, InputError
from trustprov.roles.oem import assets

from . import properties
from .corpus import Corpus
from .engine import Fuzzer, Target, check, fuzz_settings

NAME = "assets.load"
KEYS = st.sampled_from(
    [
        "bundle",
        "asset",
        "epoch",
        "aead",
        "chunk-size",
        "min-security-version",
        "name",
        "kind",
        "key-type",
        "slot",
        "hex",
        "file",
        "value",
        "region",
    ]
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
WORDS = st.sampled_from(
    [
        *["key", "certificate", "firmware", "config", "generate", "aes-256", "ec-p256"],
        *["ec-p384", "ed25519", "raw", "AES-GCM", "AES-CCM", "A256GCM", "key2.bin", "fw.bin"],
        *["ca.pem", "zz", "..", "/", "/dev/null"],
        *("00" * 16, "00" * 32, "ff" * 48, "01" * 32, ""),
    ]
)
SCALARS = st.one_of(
    TEXT,
    WORDS,
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, 255, 256, 24576, 24577, 2**32 - 1, 2**32, -1]),
    st.floats(),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(KEYS | TEXT, c, max_size=5),
    max_leaves=12,
)
ASSET = st.dictionaries(KEYS, st.one_of(WORDS, SCALARS, VALUES), max_size=7)
DOCS = st.one_of(
    st.dictionaries(KEYS | TEXT, VALUES, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "bundle": st.dictionaries(KEYS, st.one_of(WORDS, SCALARS), max_size=5),
            "asset": st.lists(ASSET, max_size=5),
        },
    ),
)


@fuzz_settings()
@given(doc=DOCS)
def test_parse_random_documents(fuzz_corpus: Corpus, doc: dict[str, Any]) -> None:
    """Documents of the right shape and the wrong one, with the parser's own words."""
    target = Target(
        "assets.parse",
        lambda _: assets.parse(doc, fuzz_corpus.assets_dir),
        seeds=[],
        allowed=(InputError, FormatError),
        result_type=assets.AssetList,
    )
    check(target, repr(doc).encode("utf-8", "backslashreplace"))


@fuzz_settings()
@given(data=st.binary(max_size=properties.MAX_RANDOM))
def test_random_bytes(fuzzers: dict[str, Fuzzer], data: bytes) -> None:
    properties.random_bytes(fuzzers[NAME], data)


@pytest.mark.parametrize("strategy", properties.STRATEGIES)
@fuzz_settings()
@given(rng=st.randoms(use_true_random=False))
def test_generated(fuzzers: dict[str, Fuzzer], strategy: str, rng: random.Random) -> None:
    properties.generated(fuzzers[NAME], rng, strategy)
