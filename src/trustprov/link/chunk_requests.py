"""The cm.chunk requests of a bundle whose chunks stay in its file.

A bundle of a GiB sent to every chip of a lot must not cost the host a GiB: `ChunkRequests`
is the sequence of a lot's chunk requests, each read from the bundle file and encoded when it
is sent; only the chain links (32 bytes a chunk) are computed once and kept. `Requests` is
FIG. 3's whole sequence (begin, chunks, finish) over it, without holding the chunks.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from typing import Protocol, overload

from trustprov.crypto.digest import DIGEST_LEN
from trustprov.formats.bundle import Manifest, SignedManifest
from trustprov.link import messages


class ChunkSource(Protocol):
    """A bundle whose chunks stay in a file (`trustprov.roles.bundle_io.BundleFile`)."""

    size: int  # bytes of the bundle file

    @property
    def signed(self) -> SignedManifest: ...

    @property
    def manifest(self) -> Manifest: ...

    def chunk(self, asset: int, index: int) -> bytes: ...

    def chain_links(self, asset: int) -> bytes: ...


#: a bundle file up to this size has its chunk requests encoded once for the lot, as a bundle
#: in memory; a larger one is read a chunk at a time for each chip, so the host holds no copy
PREENCODE_MAX = 4 * 1024 * 1024


class ChunkRequests(Sequence[bytes]):
    """The cm.chunk requests of a bundle file, each encoded from the file when it is sent."""

    def __init__(self, source: ChunkSource) -> None:
        self._source = source
        m = source.manifest
        self._links = [source.chain_links(a) for a in range(len(m.assets))]
        self._starts = list(itertools.accumulate((e.chunks for e in m.assets), initial=0))

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, k: int) -> bytes: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[bytes]: ...

    def __getitem__(self, k: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        a = bisect.bisect_right(self._starts, k) - 1
        i = k - self._starts[a]
        nxt = self._links[a][DIGEST_LEN * i : DIGEST_LEN * (i + 1)]
        return messages.encode_request(
            "cm.chunk", {"asset": a, "index": i, "data": self._source.chunk(a, i), "next": nxt}
        )

    def __iter__(self) -> Iterator[bytes]:
        return (self[k] for k in range(len(self)))


class Requests(Sequence[bytes]):
    """begin, every chunk request, finish: without holding the chunks."""

    def __init__(self, begin: bytes, chunks: Sequence[bytes], finish: bytes) -> None:
        self._begin, self._chunks, self._finish = begin, chunks, finish

    def __len__(self) -> int:
        return len(self._chunks) + 2

    @overload
    def __getitem__(self, k: int) -> bytes: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[bytes]: ...

    def __getitem__(self, k: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        return self._begin if k == 0 else self._finish if k == n - 1 else self._chunks[k - 1]

    def __iter__(self) -> Iterator[bytes]:
        return itertools.chain((self._begin,), self._chunks, (self._finish,))
