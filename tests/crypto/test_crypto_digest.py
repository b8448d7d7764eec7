"""trustprov.crypto.digest: SHA-256 and the per-asset chain over the chunks' AEAD tags."""

from __future__ import annotations

import hashlib

import pytest

from trustprov.crypto.digest import (
    CHAIN_END,
    CHAIN_LABEL,
    DIGEST_LEN,
    chain_head,
    chain_links,
    sealed_tag,
    sha256,
    tag_link,
)

# sealed chunks: any ciphertext, then a 16-byte tag (the shortest is 1 byte and its tag)
CHUNKS = [b"first chunk" + b"T1" * 8, b"second" + b"T2" * 8, b"x" + b"T3" * 8, b"l" * 400]


def test_sha256_of_parts_is_sha256_of_concatenation() -> None:
    assert sha256(b"ab", b"", b"cd") == hashlib.sha256(b"abcd").digest()
    assert sha256() == hashlib.sha256(b"").digest()
    assert len(sha256(b"x")) == DIGEST_LEN


def test_chain_end_is_32_zero_bytes() -> None:
    assert bytes(32) == CHAIN_END


def test_a_link_is_one_sha256_block() -> None:
    """Label, tag and next link fit one SHA-256 block (55 bytes + padding): one compression per
    chunk, whatever the chunk's size."""
    assert len(CHAIN_LABEL) + 16 + DIGEST_LEN == 55
    assert CHAIN_LABEL == b"tp-tagc"


def test_one_chunk_by_hand() -> None:
    c = CHUNKS[0]
    assert chain_head([c]) == hashlib.sha256(b"tp-tagc" + c[-16:] + bytes(32)).digest()
    assert tag_link(sealed_tag(c), CHAIN_END) == chain_head([c])


def test_chain_built_from_the_end_by_hand() -> None:
    def link(c: bytes, nxt: bytes) -> bytes:
        return hashlib.sha256(b"tp-tagc" + c[-16:] + nxt).digest()

    h4 = link(CHUNKS[3], bytes(32))
    h3 = link(CHUNKS[2], h4)
    h2 = link(CHUNKS[1], h3)
    h1 = link(CHUNKS[0], h2)
    assert chain_head(CHUNKS) == h1
    assert chain_links(CHUNKS) == [h1, h2, h3, h4, CHAIN_END]


def test_each_link_checks_its_tag_against_the_next_link() -> None:
    """What a chip does: h_i = SHA-256(label || tag_i || h_{i+1}), starting from the head."""
    links = chain_links(CHUNKS)
    assert links[-1] == CHAIN_END
    for i, c in enumerate(CHUNKS):
        assert tag_link(sealed_tag(c), links[i + 1]) == links[i]


@pytest.mark.parametrize("index", range(len(CHUNKS)))
def test_changing_any_tag_changes_the_head(index: int) -> None:
    changed = list(CHUNKS)
    changed[index] = changed[index][:-1] + bytes([changed[index][-1] ^ 1])
    assert chain_head(changed) != chain_head(CHUNKS)


def test_only_the_tag_enters_the_chain() -> None:
    """The ciphertext before the tag is the AEAD's to authenticate (protocol.md 6.3)."""
    changed = [b"?" * (len(c) - 16) + c[-16:] for c in CHUNKS]
    assert chain_head(changed) == chain_head(CHUNKS)


def test_order_dropping_and_adding_chunks_change_the_head() -> None:
    head = chain_head(CHUNKS)
    assert chain_head(CHUNKS[::-1]) != head
    assert chain_head(CHUNKS[:-1]) != head
    assert chain_head(CHUNKS[1:]) != head
    assert chain_head([*CHUNKS, CHUNKS[-1]]) != head


def test_a_chunk_shorter_than_a_tag_has_no_link() -> None:
    with pytest.raises(ValueError, match="16-byte tag"):
        sealed_tag(b"x" * 15)
    with pytest.raises(ValueError, match="16-byte tag"):
        chain_head([b""])


@pytest.mark.parametrize(("tag", "nxt"), [(bytes(15), CHAIN_END), (bytes(16), bytes(31))])
def test_a_link_takes_exact_lengths(tag: bytes, nxt: bytes) -> None:
    with pytest.raises(ValueError, match="chain link takes"):
        tag_link(tag, nxt)


def test_the_label_separates_the_chain_from_plain_sha256() -> None:
    tag = CHUNKS[0][-16:]
    assert tag_link(tag, CHAIN_END) != sha256(tag, CHAIN_END)
