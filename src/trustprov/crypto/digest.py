"""SHA-256 and the per-asset tag chain (docs/protocol.md 6.3).

A sealed asset is a list of AEAD outputs sealed_1..sealed_n, each ciphertext || 16-byte tag.
Its digest in the manifest is the head of a hash chain over the *tags*, built from the end::

    h_{n+1} = 32 zero bytes
    h_i     = SHA-256("tp-tagc" || tag_i || h_{i+1})       ; tag_i = the last 16 bytes of sealed_i
    digest  = h_1

A chip receives sealed_i together with h_{i+1}, checks the link against the value it expects
(h_1 from the CMAC-verified manifest, then each h_{i+1} it accepted; the last must be the end
marker), and only then opens sealed_i with the AEAD, which verifies that same tag over the
ciphertext, nonce and AAD before it gives back any plaintext. So every chunk is bound to the
manifest before it is decrypted, in order, with constant memory, at one SHA-256 compression per
chunk whatever its size: the 7-byte label, the tag and the next link are 55 bytes, one block.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes

from trustprov.crypto.aead import TAG_LEN

DIGEST_LEN = 32
CHAIN_END = bytes(DIGEST_LEN)
#: domain separation from the protocol's other SHA-256 inputs (CBOR encodings, content ids,
#: Merkle nodes): a link's input is always exactly 55 bytes and starts with this label
CHAIN_LABEL = b"tp-tagc"


#: a context that has hashed nothing: a copy of it starts a hash at half the cost of a new
#: `hashes.Hash`, whose constructor checks its algorithm's type (a chip hashes a few dozen
#: short inputs per provisioning: the chain links, content ids, the installed digest)
_FRESH = hashes.Hash(hashes.SHA256())


def sha256(*parts: bytes) -> bytes:
    h = _FRESH.copy()
    for p in parts:
        h.update(p)
    return h.finalize()


def sealed_tag(sealed: bytes) -> bytes:
    """The AEAD tag at the end of one sealed chunk; ValueError if it is too short to have one."""
    if len(sealed) < TAG_LEN:
        raise ValueError(f"a sealed chunk is at least its {TAG_LEN}-byte tag")
    return sealed[-TAG_LEN:]


def tag_link(tag: bytes, next_link: bytes) -> bytes:
    """h_i from tag_i and h_{i+1}. Both lengths are fixed, so the input is unambiguous."""
    if len(tag) != TAG_LEN or len(next_link) != DIGEST_LEN:
        raise ValueError(f"a chain link takes a {TAG_LEN}-byte tag and a {DIGEST_LEN}-byte link")
    return sha256(CHAIN_LABEL, tag, next_link)


def chain_links(sealed_chunks: Iterable[bytes]) -> list[bytes]:
    """h_1..h_{n+1} of one asset's sealed chunks: the head first, the end marker last."""
    tags = [sealed_tag(c) for c in sealed_chunks]
    links = [CHAIN_END]
    for t in reversed(tags):
        links.append(tag_link(t, links[-1]))
    return links[::-1]


def chain_head(sealed_chunks: Iterable[bytes]) -> bytes:
    """h_1, the manifest digest, of one asset's sealed chunks."""
    return chain_links(sealed_chunks)[0]
