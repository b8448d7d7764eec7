"""A bundle file as the host tools hold it: its index in memory, its chunks on disk.

`BundleFile` opens a bundle (at most ``LIMITS.bundle`` bytes, refused before a byte is read),
checks it whole with `trustprov.formats.bundle.bundle_file.BundleIndex` and then reads a chunk only
when it is asked for: the host's memory is the manifest and a few bytes a chunk, whatever the
firmware's size. It pickles as its path and index: a worker process reopens the file, and
refuses it if its size changed meanwhile. A file changed in place is not detected here (the CM
is not trusted anyway): every chip checks every chunk against the CMAC-verified manifest.

`bundle_output` writes a bundle the same way, a chunk at a time, into `files.atomic_file`: the
file appears whole at its path, or not at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trustprov.crypto.aead import TAG_LEN
from trustprov.errors import FormatError, InputError
from trustprov.formats.bundle import Manifest, SignedManifest
from trustprov.formats.bundle.bundle_file import BundleIndex, BundleWriter
from trustprov.formats.limits import LIMITS
from trustprov.roles.files import PUBLIC, atomic_file, open_input


class BundleFile:
    """A checked bundle file; chunks are read from it on demand (``os.pread``: threads may
    read at once)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._pid = -1
        self._lock = threading.Lock()
        with open_input(self.path, limit=LIMITS.bundle, what="bundle") as (f, size):
            try:
                self.index = BundleIndex.read(f, size)
            except OSError as e:
                raise InputError(f"bundle {self.path}: cannot read ({e.strerror})") from e
        self.size = size

    def __repr__(self) -> str:
        return f"BundleFile({str(self.path)!r})"

    @property
    def signed(self) -> SignedManifest:
        return self.index.signed

    @property
    def manifest(self) -> Manifest:
        return self.index.manifest

    def chunk(self, asset: int, index: int) -> bytes:
        """The ciphertext of chunk ``index`` of asset ``asset``."""
        offset, length = self.index.locate(asset, index)
        return self._read(offset, length)

    def tag(self, asset: int, index: int) -> bytes:
        """The AEAD tag of chunk ``index`` of asset ``asset``: its last 16 bytes."""
        offset, length = self.index.locate(asset, index)
        if length < TAG_LEN:
            raise InputError(f"bundle {self.path}: a chunk shorter than its tag")
        return self._read(offset + length - TAG_LEN, TAG_LEN)

    def _read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` of the bundle file, or an `InputError`."""
        try:
            data = os.pread(self._file(), length, offset)
        except OSError as e:
            raise InputError(f"bundle {self.path}: cannot read ({e.strerror})") from e
        if len(data) != length:
            raise InputError(f"bundle {self.path}: the file changed while it was read")
        return data

    def chain_links(self, asset: int) -> bytes:
        """The chain links beside each chunk of ``asset``, 32 bytes each (`BundleIndex`)."""
        return self.index.chain_links(asset, self.tag)

    def _file(self) -> int:
        # opened once per process: a descriptor does not cross into a spawned worker
        if self._fd is None or self._pid != os.getpid():
            with self._lock:
                if self._fd is None or self._pid != os.getpid():
                    self._fd = self._reopen()
                    self._pid = os.getpid()
        return self._fd

    def _reopen(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise InputError(f"bundle {self.path}: cannot read ({e.strerror})") from e
        if os.fstat(fd).st_size != self.size:
            os.close(fd)
            raise InputError(f"bundle {self.path}: the file changed since it was checked")
        return fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "index": self.index, "size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.index, self.size = state["path"], state["index"], state["size"]
        self._fd, self._pid, self._lock = None, -1, threading.Lock()


@contextmanager
def bundle_output(
    path: Path, manifest_len: int, lengths: Sequence[Sequence[int]], *, mode: int = PUBLIC
) -> Iterator[BundleWriter]:
    """A `BundleWriter` over a new file at ``path``, placed only when the block succeeds and
    the writer's `finish` was called."""
    with atomic_file(path, mode=mode) as f:
        try:
            writer = BundleWriter(f, manifest_len, lengths)
            f.flush()  # the heads, before the chunks' positioned writes
            yield writer
        except OSError as e:  # of the writer's own writes (the file's, atomic_file names)
            raise InputError(f"cannot write {path}: {e.strerror or e}") from e
        if not writer.finished:
            raise FormatError("bundle: written without its manifest")
