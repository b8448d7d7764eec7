"""The seal.chunk request and answer of a sealing run, without a Python map per chunk.

A firmware of 64 MiB is thousands of seal.chunk exchanges; building a dict, encoding it
canonically and decoding the answer through the generic decoder was most of the host's share
of the sealing time. Invariants:
- `chunk_request(i, data)` is byte for byte `messages.encode_request("seal.chunk", {"index": i,
  "data": data})`: the canonical CBOR of protocol.md 1 (map keys sorted by their encoding: "op"
  before "args", "data" before "index"; shortest heads). tests/link/test_link_seal_wire.py
  compares the two over every head length.
- `chunk_answer(answer, n)` returns the sealed chunk only when ``answer`` is exactly the
  canonical `{"ok": {"chunk": h'..'}}` holding ``n`` bytes: the bytes are fully checked
  (prefix, head, length to the last byte), so nothing is accepted that the generic decoder
  would read differently. Any other answer (a refusal, a malformed reply) goes through
  `messages.decode_response`, which raises as it always did.
"""

from __future__ import annotations

from trustprov.errors import TransportError
from trustprov.formats import cbor
from trustprov.link import messages

# the canonical request with empty data and index 0, split where the data and index go
_EMPTY = cbor.encode({"op": "seal.chunk", "args": {"data": b"", "index": 0}})
_INDEX_KEY = cbor.encode("index")
_REQUEST_HEAD = _EMPTY[: -(1 + len(_INDEX_KEY) + 1)]  # up to the data's head
_ANSWER_HEAD = cbor.encode({"ok": {"chunk": b""}})[:-1]  # up to the chunk's head


def _head(major: int, n: int) -> bytes:
    """The shortest CBOR head of major type ``major`` carrying ``n`` (RFC 8949 4.2.1)."""
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 2**8:
        return bytes((m | 24, n))
    if n < 2**16:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    if n < 2**32:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    return bytes((m | 27,)) + n.to_bytes(8, "big")


def chunk_request(index: int, data: bytes) -> bytes:
    """The seal.chunk request for chunk ``index`` of plaintext ``data``."""
    if index < 0:
        raise ValueError("a chunk index is never negative")
    return b"".join((_REQUEST_HEAD, _head(2, len(data)), data, _INDEX_KEY, _head(0, index)))


def chunk_answer(answer: bytes, n: int) -> memoryview:
    """The ``n`` sealed bytes of a seal.chunk answer, as a view of ``answer`` (no copy).

    Raises `ChipRefused` for a refusal and `TransportError` for an answer without a chunk."""
    head = _head(2, n)
    start = len(_ANSWER_HEAD) + len(head)
    if len(answer) == start + n and answer.startswith(_ANSWER_HEAD + head):
        return memoryview(answer)[start:]
    result = messages.decode_response(answer)  # raises on a refusal or a malformed answer
    chunk = result.get("chunk")
    if not isinstance(chunk, bytes):
        raise TransportError("chip answered without 'chunk'")
    return memoryview(chunk)  # of another length: the bundle writer refuses it, as before
