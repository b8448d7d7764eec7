"""The bundle file (docs/protocol.md 6.4) read and written a chunk at a time.

    ["trustprov-bundle", 1, manifest COSE_Mac0 bstr, [* [* chunk bstr]]]

`BundleIndex.read` walks the heads of the file and keeps, per chunk, only where it starts: a
1 GiB bundle costs its manifest, 12 bytes a chunk and, for the chain, 32 bytes a chunk, never its
ciphertext. The walk applies the bounds of `trustprov.formats.cbor`'s pre-scan to the whole file
(at most ``min(bundle_shape.items, size // MIN_CHUNK + 1024)`` items, definite lengths only, no
tags, no length beyond the end of the file, no trailing byte), then the checks of
`trustprov.formats.bundle.Bundle`: the magic and format, the manifest, the asset count, each
asset's chunk count and each chunk's length from the manifest (within its bounds if deflated).
Every failure is a `FormatError`.
The index is plain data; the holder of the file reads a chunk only when it is sent
(`trustprov.roles.bundle_io`).

`BundleWriter` writes the same layout into a file in any order of chunks (positioned writes; an
OSError of writing passes through to the caller, which names the file): every offset
follows from the manifest's length and the chunk lengths, known before the first chunk is sealed
(the OEM's chip seals last to first, docs/protocol.md 6.5). It refuses a chunk or a manifest of
another length than planned, and a finish with a chunk missing.
"""

from __future__ import annotations

import errno
import os
from array import array
from collections.abc import Callable, Sequence
from typing import BinaryIO

from trustprov.crypto.aead import TAG_LEN
from trustprov.crypto.digest import CHAIN_END, DIGEST_LEN, tag_link
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.bundle import (
    BUNDLE_MAGIC,
    FORMAT,
    MIN_CHUNK,
    AssetEntry,
    Manifest,
    SignedManifest,
    chunk_plain_len,
)
from trustprov.formats.limits import LIMITS

_MAGIC = cbor.encode(BUNDLE_MAGIC)
_FORMAT = cbor.encode(FORMAT)
_WHAT = "bundle"


def _head(major: int, n: int) -> bytes:
    """The canonical head of a CBOR item of ``major`` type with argument ``n`` (RFC 8949 3.1)."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError("CBOR argument beyond 64 bits")


def chunk_lengths(entry: AssetEntry, chunk_size: int) -> list[int]:
    """The ciphertext length of each chunk of ``entry``, which must not be deflated (a deflated
    chunk's length is its stream's, within `AssetEntry.sealed_plain_range`)."""
    if entry.deflate is not None:
        raise ValueError("a deflated asset's chunk lengths are not the manifest's to give")
    return [chunk_plain_len(entry.length, chunk_size, i) + TAG_LEN for i in range(entry.chunks)]


class _Heads:
    """CBOR heads read from a file, with `cbor._walk`'s bounds on the file as a whole."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size, self.pos = f, size, 0
        self.items = 0
        self.max_items = min(LIMITS.bundle_shape.items, size // MIN_CHUNK + 1024)

    def head(self, want: int, what: str) -> int:
        """The argument of the next item, which must be of major type ``want``; for a string
        its length, which must lie within the file."""
        first = self._read(1)[0]
        major, info = first >> 5, first & 31
        if info < 24:
            arg = info
        elif info < 28:
            arg = int.from_bytes(self._read(1 << (info - 24)), "big")
        elif info == 31:
            raise FormatError(f"{_WHAT}: indefinite-length CBOR item")
        else:
            raise FormatError(f"{_WHAT}: reserved CBOR additional information {info}")
        self.items += 1
        if self.items > self.max_items:
            raise FormatError(f"{_WHAT}: more than {self.max_items} CBOR items")
        if major == 6:
            raise FormatError(f"{_WHAT}: CBOR tag {arg} where trustprov uses none")
        if major != want:
            raise FormatError(f"{what}: wrong type")
        if major in (2, 3) and arg > self.size - self.pos:
            raise FormatError(f"{_WHAT}: a CBOR string claims {arg} bytes, more than remain")
        if major == 4:  # every item takes a byte: refuse a count the rest cannot hold, unread
            if arg > self.size - self.pos:
                raise FormatError(f"{_WHAT}: a CBOR array claims {arg} entries, more than remain")
            if arg > self.max_items - self.items:
                raise FormatError(f"{_WHAT}: more than {self.max_items} CBOR items")
        return arg

    def read(self, n: int) -> bytes:
        return self._read(n)

    def skip(self, n: int) -> None:
        self.pos += n
        self.f.seek(self.pos)

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError(f"{_WHAT}: truncated CBOR")
        self.pos += n
        return data


class BundleIndex:
    """A bundle file, checked: its manifest and where every chunk lies. Plain data (it pickles
    to a worker process); the chunks stay in the file, read by the holder of the file."""

    def __init__(
        self,
        signed: SignedManifest,
        manifest_bytes: bytes,
        offsets: tuple[array[int], ...],
        lengths: tuple[array[int], ...],
    ) -> None:
        self.signed = signed
        self.manifest_bytes = manifest_bytes
        self._offsets = offsets
        self._lengths = lengths  # of each chunk as read, within the manifest's bounds

    def __repr__(self) -> str:
        return f"BundleIndex(bundle_id={self.manifest.bundle_id.hex()})"

    @property
    def manifest(self) -> Manifest:
        return self.signed.manifest

    @classmethod
    def read(cls, f: BinaryIO, size: int) -> BundleIndex:
        """Index the bundle in ``f`` (``size`` bytes, read from its start)."""
        f.seek(0)
        h = _Heads(f, size)
        if h.head(4, _WHAT) != 4:
            raise FormatError(f"{_WHAT}: not a trustprov bundle (format {FORMAT})")
        magic_len = h.head(3, f"{_WHAT}: magic")
        if magic_len != len(BUNDLE_MAGIC) or h.read(magic_len) != BUNDLE_MAGIC.encode():
            raise FormatError(f"{_WHAT}: not a trustprov bundle (format {FORMAT})")
        if h.head(0, f"{_WHAT}: format") != FORMAT:
            raise FormatError(f"{_WHAT}: not a trustprov bundle (format {FORMAT})")
        manifest_len = h.head(2, f"{_WHAT}: manifest")
        if manifest_len > LIMITS.manifest:
            raise FormatError(f"manifest: {manifest_len} bytes exceeds the limit")
        manifest_bytes = h.read(manifest_len)
        signed = SignedManifest.from_bytes(manifest_bytes)
        m = signed.manifest
        n_assets = h.head(4, f"{_WHAT}: assets")
        if n_assets > LIMITS.assets_per_bundle:
            raise FormatError(f"{_WHAT}: too many assets")
        if n_assets != len(m.assets):
            raise FormatError(f"{_WHAT}: asset count does not match the manifest")
        offsets, lengths = [], []
        for entry in m.assets:
            n = h.head(4, f"{_WHAT}: asset chunks")
            if n != entry.chunks:
                raise FormatError(f"{_WHAT}: asset {entry.name!r} has the wrong number of chunks")
            starts, sizes = array("Q"), array("L")
            for i in range(n):
                least, most = entry.sealed_plain_range(m.chunk_size, i)
                got = h.head(2, f"{_WHAT}: chunk")
                if got > LIMITS.chunk + TAG_LEN:
                    raise FormatError(f"{_WHAT}: chunk: longer than {LIMITS.chunk + TAG_LEN} bytes")
                if not least + TAG_LEN <= got <= most + TAG_LEN:
                    raise FormatError(
                        f"{_WHAT}: asset {entry.name!r} chunk {i} has the wrong length"
                    )
                starts.append(h.pos)
                sizes.append(got)
                h.skip(got)
            offsets.append(starts)
            lengths.append(sizes)
        if h.pos != size:
            raise FormatError(f"{_WHAT}: trailing bytes after the CBOR item")
        return cls(signed, manifest_bytes, tuple(offsets), tuple(lengths))

    def locate(self, asset: int, index: int) -> tuple[int, int]:
        """(offset, length) of chunk ``index`` of asset ``asset`` in the file."""
        return self._offsets[asset][index], self._lengths[asset][index]

    def chunks(self, asset: int) -> int:
        return len(self._offsets[asset])

    def chain_links(self, asset: int, read_tag: Callable[[int, int], bytes]) -> bytes:
        """h_2..h_{n+1} of one asset's tag chain (`trustprov.crypto.digest`), 32 bytes each,
        from each chunk's AEAD tag alone (``read_tag(asset, index)``, its last 16 bytes): the
        ciphertext before the tags is never read for it. Link i is at ``32 * i``."""
        n = self.chunks(asset)
        links = bytearray(DIGEST_LEN * n)
        link = CHAIN_END
        for i in range(n - 1, 0, -1):
            link = tag_link(read_tag(asset, i), link)
            links[DIGEST_LEN * (i - 1) : DIGEST_LEN * i] = link
        return bytes(links)


#: the written bytes after which the kernel is asked to start writing them out (`_Writeback`)
WRITEBACK_STEP = 8 * 1024 * 1024


class _Writeback:
    """Starts the write-out of a bundle's chunks while the chip seals the next ones, so the
    fsync that makes the bundle durable (`trustprov.roles.files.atomic_file`) finds most of
    it on disk already. Only a hint: the fsync stays, and durability is exactly its own."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lo, self._hi = 0, 0

    def add(self, at: int, n: int) -> None:
        if self._hi == self._lo:
            self._lo, self._hi = at, at + n
        else:  # chunks come in any order; sealing writes each asset's last to first
            self._lo, self._hi = min(self._lo, at), max(self._hi, at + n)
        if self._hi - self._lo >= WRITEBACK_STEP:
            # DONTNEED on dirty pages starts their write-out without waiting for it
            # (WB_SYNC_NONE); it drops only pages already clean
            os.posix_fadvise(self._fd, self._lo, self._hi - self._lo, os.POSIX_FADV_DONTNEED)
            self._lo = self._hi = 0


class BundleWriter:
    """Writes a bundle file of a planned shape into ``f`` (seekable), chunks in any order."""

    def __init__(self, f: BinaryIO, manifest_len: int, lengths: Sequence[Sequence[int]]) -> None:
        self._f = f
        self._fd = f.fileno()
        self._manifest_len = manifest_len
        self._lengths = [list(a) for a in lengths]
        head = _head(4, 4) + _MAGIC + _FORMAT + _head(2, manifest_len)
        self._manifest_at = len(head)
        pos = self._manifest_at + manifest_len
        f.seek(0)
        f.write(head)
        f.seek(pos)
        top = _head(4, len(lengths))
        f.write(top)
        pos += len(top)
        self._offsets: list[array[int]] = []
        for asset in self._lengths:
            asset_head = _head(4, len(asset))
            f.seek(pos)
            f.write(asset_head)
            pos += len(asset_head)
            starts = array("Q")
            for n in asset:
                pos += len(_head(2, n))
                starts.append(pos)
                pos += n
            self._offsets.append(starts)
        self.size = pos
        # a flag a chunk (not a set of pairs): 1 GiB of chunks is 64 KiB of flags
        self._written = [bytearray(len(a)) for a in self._lengths]
        self._todo = sum(len(a) for a in self._lengths)
        self._unsynced = _Writeback(self._fd)
        self.finished = False

    def chunk(self, asset: int, index: int, data: bytes | memoryview) -> None:
        if (
            not 0 <= asset < len(self._lengths)
            or not 0 <= index < len(self._lengths[asset])
            or self._written[asset][index]
            or len(data) != self._lengths[asset][index]
        ):
            raise FormatError(f"{_WHAT}: chunk {index} of asset {asset} is not the one planned")
        at = self._offsets[asset][index]
        head = _head(2, len(data))
        # one positioned write of head and chunk: no seek, no copy through a buffer
        written = os.pwritev(self._fd, [head, data], at - len(head))
        if written != len(head) + len(data):
            raise OSError(errno.EIO, "short write")
        self._written[asset][index] = 1
        self._todo -= 1
        self._unsynced.add(at - len(head), written)

    def finish(self, manifest: bytes) -> None:
        if len(manifest) != self._manifest_len:
            raise FormatError(
                f"{_WHAT}: the manifest is {len(manifest)} bytes, not the planned "
                f"{self._manifest_len}"
            )
        if self._todo:
            raise FormatError(f"{_WHAT}: {self._todo} chunks were never written")
        self._f.flush()  # the heads written through the buffer, before the positioned writes
        os.pwrite(self._fd, manifest, self._manifest_at)
        self._f.seek(self.size)
        self.finished = True
