"""SHA-256 and the per-asset hash chain.

A sealed asset is a list of ciphertext chunks c_1..c_n. Its digest in the manifest is the head
of a hash chain built from the end::

    h_{n+1} = 32 zero bytes
    h_i     = SHA-256(c_i || h_{i+1})
    digest  = h_1

A chip receives c_i together with h_{i+1} and checks SHA-256(c_i || h_{i+1}) against the value it
expects (h_1 from the CMAC-verified manifest, then each h_{i+1} it accepted). So every chunk is
authenticated by the manifest *before* it is decrypted, with constant memory, in one pass.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

DIGEST_LEN = 32
CHAIN_END = bytes(DIGEST_LEN)


def sha256(*parts: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    for p in parts:
        h.update(p)
    return h.finalize()


def chain_link(chunk: bytes, next_link: bytes) -> bytes:
    return sha256(chunk, next_link)


def chain_head(chunks: list[bytes]) -> bytes:
    """h_1 of a whole list of chunks (for tests and tools that hold the ciphertext)."""
    link = CHAIN_END
    for c in reversed(chunks):
        link = chain_link(c, link)
    return link
