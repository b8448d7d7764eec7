"""The harness itself: the seeds are valid, the encoder is faithful, the watchdog fires."""

from __future__ import annotations

import random
import time
import tomllib

import cbor2
import pytest

from trustprov.errors import FormatError

from . import mutate
from .engine import STRATEGIES, Fuzzer, Target, Unexpected, check, run_one, watchdog_installed


def test_every_target_parses_its_seeds(fuzzers: dict[str, Fuzzer]) -> None:
    """Mutations start from valid artifacts: each target accepts every one of its seeds."""
    # the 15 before, AUTH, a proof, a lot signature, a receipt, the index, an attestation token
    assert len(fuzzers) == 21
    for name, f in fuzzers.items():
        t = f.target
        assert t.seeds, name
        if t.scenarios:
            continue  # test_chip_port checks the chip's seeds in their scenarios
        expected = {"ok", "refused"} if name == "decode_response" else {"ok"}
        for seed in t.seeds:
            assert check(t, seed) in expected, name


def test_cbor_trees_re_encode_to_the_same_bytes(fuzzers: dict[str, Fuzzer]) -> None:
    for f in fuzzers.values():
        if f.target.flavor == "cbor":
            for seed, tree in zip(f.target.seeds, f.trees, strict=True):
                assert mutate.encode(tree) == seed


def test_nested_artifacts_are_opened(fuzzers: dict[str, Fuzzer]) -> None:
    tree = fuzzers["Bundle.from_bytes"].trees[0]
    assert isinstance(tree[2], mutate.Embedded)  # the COSE_Mac0 inside the bundle
    assert isinstance(tree[2].tree.value[0], mutate.Embedded)  # its protected header


def test_toml_writer_round_trips_the_asset_lists(fuzzers: dict[str, Fuzzer]) -> None:
    for tree in fuzzers["assets.load"].trees:
        assert tomllib.loads(mutate.toml_dumps(tree)) == tree


@pytest.mark.parametrize(
    ("node", "encoded"),
    [
        (mutate.Wide(1, 8), bytes.fromhex("1b0000000000000001")),
        (mutate.Indefinite([1, 2]), bytes.fromhex("9f0102ff")),
        (mutate.Indefinite(b"ab", (b"a", b"b")), bytes.fromhex("5f41614162ff")),
        (mutate.Pairs(((1, 2), (1, 3))), bytes.fromhex("a201020103")),
        (cbor2.CBORTag(28, [cbor2.CBORTag(29, 0)]), bytes.fromhex("d81c81d81d00")),
        (2**64, bytes.fromhex("c249010000000000000000")),
        ("\ud800", bytes.fromhex("63eda080")),
    ],
)
def test_encoder_writes_what_cbor2_does_not(node: object, encoded: bytes) -> None:
    assert mutate.encode(node) == encoded


@pytest.mark.parametrize("name", ["cbor.decode", "LotManifest.from_json", "assets.load"])
def test_generated_inputs_are_bounded(fuzzers: dict[str, Fuzzer], name: str) -> None:
    rng = random.Random(name)
    f = fuzzers[name]
    for i in range(300):
        data = f.generate(rng, STRATEGIES[i % len(STRATEGIES)])
        assert len(data) <= 1 << 20


def test_the_watchdog_stops_a_hang() -> None:
    def forever(_: bytes) -> None:
        while True:
            pass

    start = time.perf_counter()
    with watchdog_installed(), pytest.raises(Unexpected, match="hang"):
        run_one(Target("loop", forever, [b""]), b"\x00", time_limit=0.2)
    assert time.perf_counter() - start < 2


def test_only_allowed_errors_pass() -> None:
    def raises(exc: BaseException) -> Target:
        def parse(_: bytes) -> None:
            raise exc

        return Target("t", parse, [b""], allowed=(FormatError,))

    assert check(raises(FormatError("x")), b"") == "refused"
    for exc in (ValueError("x"), KeyError("k"), RecursionError(), AssertionError()):
        with pytest.raises(Unexpected):
            check(raises(exc), b"\x01")
