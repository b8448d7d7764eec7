"""The corpus of valid artifacts and a `Fuzzer` per target, built once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .corpus import Corpus, build_corpus
from .engine import Fuzzer
from .targets import build_fuzzers


@pytest.fixture(scope="session")
def fuzz_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    corpus = build_corpus(tmp_path_factory.mktemp("fuzz-corpus"))
    yield corpus
    corpus.lab.close()


class Fuzzers(dict[str, Fuzzer]):
    """The fuzzers by target name (with a short repr: Hypothesis prints test arguments)."""

    def __repr__(self) -> str:
        return f"<{len(self)} fuzzers>"


@pytest.fixture(scope="session")
def fuzzers(fuzz_corpus: Corpus) -> dict[str, Fuzzer]:
    return Fuzzers(build_fuzzers(fuzz_corpus))
