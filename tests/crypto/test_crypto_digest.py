"""trustprov.crypto.digest: SHA-256 and the per-asset hash chain."""

from __future__ import annotations

import hashlib

import pytest

from trustprov.crypto.digest import CHAIN_END, DIGEST_LEN, chain_head, chain_link, sha256

CHUNKS = [b"first chunk", b"second", b"", b"last" * 100]


def test_sha256_of_parts_is_sha256_of_concatenation() -> None:
    assert sha256(b"ab", b"", b"cd") == hashlib.sha256(b"abcd").digest()
    assert sha256() == hashlib.sha256(b"").digest()
    assert len(sha256(b"x")) == DIGEST_LEN


def test_chain_end_is_32_zero_bytes() -> None:
    assert bytes(32) == CHAIN_END


def test_empty_chain_is_the_end_marker() -> None:
    assert chain_head([]) == CHAIN_END


def test_one_chunk() -> None:
    assert chain_head([b"c"]) == hashlib.sha256(b"c" + bytes(32)).digest()
    assert chain_link(b"c", CHAIN_END) == chain_head([b"c"])


def test_chain_built_from_the_end_by_hand() -> None:
    h4 = hashlib.sha256(CHUNKS[3] + bytes(32)).digest()
    h3 = hashlib.sha256(CHUNKS[2] + h4).digest()
    h2 = hashlib.sha256(CHUNKS[1] + h3).digest()
    h1 = hashlib.sha256(CHUNKS[0] + h2).digest()
    assert chain_head(CHUNKS) == h1


def test_each_link_checks_its_chunk_against_the_next_link() -> None:
    """What a chip does: h_i = SHA-256(c_i || h_{i+1}), starting from the head."""
    links = [chain_head(CHUNKS[i:]) for i in range(len(CHUNKS) + 1)]
    assert links[-1] == CHAIN_END
    for i, c in enumerate(CHUNKS):
        assert chain_link(c, links[i + 1]) == links[i]


@pytest.mark.parametrize("index", range(len(CHUNKS)))
def test_changing_any_chunk_changes_the_head(index: int) -> None:
    changed = list(CHUNKS)
    changed[index] = changed[index] + b"!"
    assert chain_head(changed) != chain_head(CHUNKS)


def test_order_dropping_and_adding_chunks_change_the_head() -> None:
    head = chain_head(CHUNKS)
    assert chain_head(CHUNKS[::-1]) != head
    assert chain_head(CHUNKS[:-1]) != head
    assert chain_head(CHUNKS[1:]) != head
    assert chain_head([*CHUNKS, b""]) != head


def test_chunk_boundaries_matter() -> None:
    assert chain_head([b"ab", b"c"]) != chain_head([b"a", b"bc"])
