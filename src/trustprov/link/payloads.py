"""Encoded request fragments shared by the links of a station (docs/protocol.md 12.1): a lot sends
the same software image and bundle requests to every chip, so their stuffing and CRC are done
once, not per chip.

Invariant: the cache holds at most ``max_bytes`` of requests (least recently used out first) and
never changes what a fragment encodes: an entry is keyed by the request's bytes and the fragment
size. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from trustprov.formats.frame import EncodedPayload

__all__ = ["SHARED_CACHE", "PayloadCache"]


class PayloadCache:
    """Encoded fragments of large requests, shared by the links of a station: a lot sends the
    same software image and bundle requests to every chip, so their stuffing and CRC are done
    once, not per chip. Bounded in bytes, least recently used out first; thread-safe."""

    MIN_REQUEST = 1024  # below this, encoding is cheaper than keeping it

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max = max_bytes
        self._size = 0
        self._entries: OrderedDict[tuple[bytes, int], tuple[EncodedPayload, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PayloadCache({len(self._entries)} requests, {self._size} bytes)"

    def fragments(self, request: bytes, size: int) -> tuple[EncodedPayload, ...]:
        return self.fragments_of([request], size)[0]

    def fragments_of(
        self, requests: Sequence[bytes], size: int
    ) -> list[tuple[EncodedPayload, ...]]:
        """Each request's fragments, in order: one lock for a whole run of requests."""
        out: list[tuple[EncodedPayload, ...] | None] = []
        missing: list[int] = []
        entries = self._entries
        low, high = self.MIN_REQUEST, self._max
        with self._lock:
            for k, request in enumerate(requests):
                if not low <= len(request) <= high:
                    out.append(_encode(request, size))
                    continue
                key = (request, size)  # bytes cache their hash: the same object is found cheaply
                hit = entries.get(key)
                if hit is None:
                    missing.append(k)
                else:
                    entries.move_to_end(key)
                out.append(hit)
        for k in missing:  # encoded outside the lock: another link may use the cache meanwhile
            request = requests[k]
            made = out[k] = _encode(request, size)
            with self._lock:
                if (request, size) not in entries:
                    entries[(request, size)] = made
                    self._size += len(request)
                    while self._size > self._max:
                        (old, _), _ = entries.popitem(last=False)
                        self._size -= len(old)
        return [f for f in out if f is not None]


SHARED_CACHE = PayloadCache()


def _encode(request: bytes, size: int) -> tuple[EncodedPayload, ...]:
    count = max(1, -(-len(request) // size))
    return tuple(EncodedPayload.of(request[k * size : (k + 1) * size]) for k in range(count))
