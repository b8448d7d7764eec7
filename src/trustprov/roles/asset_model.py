"""The asset list as the OEM's tools hold it: each asset's spec and where its bytes come from.

Invariants: a spec's value is never in its repr; a deflated spec (``deflate`` set) carries the
length of each of its compressed chunks, planned before sealing, and its sealing recompresses
each chunk to exactly that length (zlib is deterministic) or refuses; a file asset is read a
piece at a time, its file opened once for all the pieces, and a file that changes while it is
read is an `InputError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from trustprov.crypto.aead import Aead
from trustprov.errors import InputError

#: a chip holds a chunk's ciphertext and plaintext at once, beside the manifest and its keys,
#: so no chunk of 32 KiB fits its 64 KiB of RAM (the format itself allows 64 KiB); whether a
#: smaller one fits is `check_fits`'s question, asked with the chip's own numbers
MAX_CHUNK = 32 * 1024
#: without [bundle] chunk-size, the largest multiple of this that fits the family's RAM
CHUNK_STEP = 1024


@dataclass(frozen=True)
class AssetSpec:
    name: str
    kind: str
    key_type: str | None = None
    slot: int | None = None
    region: str | None = None
    value: bytes | None = field(default=None, repr=False)
    path: Path | None = None
    #: firmware, config: "auto" (deflate when it saves >= 5 %), "deflate" or "none"
    compress: str = "none"
    #: W of a deflated asset, once `roles.asset_compress` decided it; None: not deflated
    deflate: int | None = None
    #: the compressed length of each chunk of a deflated asset, for the bundle's layout
    deflated_lengths: tuple[int, ...] = field(default=(), repr=False)

    @property
    def may_deflate(self) -> bool:
        """Whether the bundle may hold this asset deflated (its chips then reserve the
        inflater's RAM): so until `roles.asset_compress` decided an "auto" asset."""
        return self.deflate is not None or self.compress in ("auto", "deflate")

    @property
    def length(self) -> int:
        if self.value is not None:
            return len(self.value)
        assert self.path is not None  # noqa: S101 - every non-generated asset has one source
        return self.path.stat().st_size

    def read(self, offset: int, size: int) -> bytes:
        with self.reader() as read:
            return read(offset, size)

    @contextmanager
    def reader(self) -> Iterator[Callable[[int, int], bytes]]:
        """``read(offset, size)`` of the asset's bytes, its file opened once for all of them:
        the sealing tool reads a large file a chunk at a time, in any order."""
        if self.value is not None:
            value = self.value
            yield lambda offset, size: value[offset : offset + size]
            return
        assert self.path is not None  # noqa: S101 - every non-generated asset has one source
        path, name = self.path, self.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise InputError(f"asset {name!r}: cannot read {path} ({e.strerror})") from e

        def read(offset: int, size: int) -> bytes:
            try:
                data = os.pread(fd, size, offset)
            except OSError as e:
                raise InputError(f"asset {name!r}: cannot read {path} ({e.strerror})") from e
            if len(data) != size:
                raise InputError(f"asset {name!r}: {path} changed while being read")
            return data

        try:
            yield read
        finally:
            os.close(fd)


@dataclass(frozen=True)
class AssetList:
    epoch: int
    aead: Aead
    chunk_size: int
    min_security_version: int | None
    assets: tuple[AssetSpec, ...]
