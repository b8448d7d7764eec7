"""One chip's whole persistent state in one file: the virtual chip's NVM (docs/protocol.md 13.4).

Layout (all integers big-endian)::

    file  = "TPNVM001" || len [4] || record (canonical CBOR, len bytes) || contents || sha256 [32]
    record = {"uid": bstr .size 16, "lot": tstr, "lifecycle": uint, "security-counter": uint,
              "prov-counter": uint, "immutable": bstr / null, "identity-key": bstr / null,
              "certificate": bstr / null, "installed": bstr / null,
              "contents": [* [content id: bstr .size 32, length: uint]]}

``contents`` are the flash regions' contents, one after the other in the record's order; the
last 32 bytes are the SHA-256 of everything before them. A missing or empty file is a blank chip
whose UID and lot the fab gives (`NvmFile(path, uid=..., lot=...)`).

Invariants:
- Every `save` is one atomic, power-cut safe commit: the whole new state is written to
  ``FILE.new`` (mode 0600: the file holds the chip's secrets, as its flash does), fsynced, renamed
  over FILE, and the directory fsynced. A cut before the rename leaves the old state; after it,
  the new one; never a mix. A stale ``FILE.new`` is ignored and overwritten.
- The lifecycle, the security counter and the provisioning counter only advance; a save whose
  provisioning counter is not the one its writer started from is refused (as the farm's).
- A file is parsed within `MAX_RECORD` bytes of record and `MAX_CONTENTS` contents, and checked
  whole against its digest before anything of it is used; one that fails is `InputError`.
- Only the contents the installed state names are kept: an update drops what it replaces.
- One process runs a chip: `hold` takes an exclusive lock on ``FILE.lock`` for the process's
  life (a second program on the same file is refused), so no two writers ever start from one
  committed state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import hashes

from trustprov.chip.model import ChipState, Installed, Lifecycle
from trustprov.chip.staging import PIECE, StagedContent
from trustprov.errors import ChipRefused, FormatError, InputError
from trustprov.formats import cbor
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.lot import UID_LEN

MAGIC = b"TPNVM001"
MAX_RECORD = 64 * 1024  # the record: immutable image, certificate, installed state, content list
MAX_CONTENTS = 64  # flash regions a chip holds (protocol.md 6.6)
DIGEST_LEN = 32
_FIELDS = frozenset(
    {
        "uid",
        "lot",
        "lifecycle",
        "security-counter",
        "prov-counter",
        "immutable",
        "identity-key",
        "certificate",
        "installed",
        "contents",
    }
)


class NvmFile:
    """One chip's NVM file. One process at a time uses a file (the board starts one program
    per chip); `load` reads what is committed, `save` commits."""

    def __init__(self, path: Path, *, uid: bytes, lot: str) -> None:
        if len(uid) != UID_LEN:
            raise InputError(f"a chip UID is {UID_LEN} bytes")
        self.path = Path(path)
        self._uid = uid
        self._lot = lot
        self._offsets: dict[bytes, tuple[int, int]] = {}  # content id -> (offset, length)
        self._state: ChipState | None = None
        #: test-only fault injection: called before the rename; raising there is a power cut
        self.before_commit: Any = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"NvmFile({str(self.path)!r}, uid={self._uid.hex()})"

    def hold(self) -> None:
        """Lock the chip for this process (released when it ends); `InputError` if another
        process holds it."""
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as e:
            raise InputError(f"cannot lock {lock}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise InputError(f"another program runs the chip of {self.path}") from e
        self._lock_fd = fd  # kept open: the lock lives until `release` or the process's end

    def release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    # -- reading --------------------------------------------------------------------------------
    def load(self) -> ChipState:
        """The committed state; a blank chip (the fab's UID and lot) if nothing is committed."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if self.path.is_dir():
            raise InputError(f"{self.path} is a directory, not a chip's NVM file")
        if size == 0:
            self._offsets = {}
            self._state = ChipState(uid=self._uid, lot=self._lot)
            return ChipState(uid=self._uid, lot=self._lot)
        try:
            with self.path.open("rb") as f:
                state, offsets = _parse(f, size)
        except OSError as e:
            raise InputError(f"cannot read {self.path}: {e.strerror}") from e
        except FormatError as e:
            raise InputError(f"{self.path} is not a chip's NVM file: {e.message}") from e
        if state.uid != self._uid:
            raise InputError(f"{self.path} holds chip {state.uid.hex()}, not {self._uid.hex()}")
        self._offsets = offsets
        self._state = state
        return state.copy()

    def holds_blob(self, blob_id: bytes) -> bool:
        return blob_id in self._offsets

    def blob_digest(self, blob_id: bytes) -> bytes:
        h = hashes.Hash(hashes.SHA256())
        for piece in self._pieces(blob_id):
            h.update(piece)
        return h.finalize()

    def blob(self, blob_id: bytes) -> bytes:
        return b"".join(self._pieces(blob_id))

    def _pieces(self, blob_id: bytes) -> Iterator[bytes]:
        if blob_id not in self._offsets:
            raise InputError("flash content missing from the NVM file")
        offset, length = self._offsets[blob_id]
        with self.path.open("rb") as f:
            f.seek(offset)
            while length:
                piece = f.read(min(PIECE, length))
                if not piece:
                    raise InputError(f"{self.path} was cut short")
                length -= len(piece)
                yield piece

    # -- the commit -----------------------------------------------------------------------------
    def save(
        self,
        state: ChipState,
        blobs: Mapping[bytes, bytes | StagedContent] | None = None,
        *,
        installed_bytes: bytes | None = None,
        seen_prov_counter: int | None = None,
    ) -> None:
        old = self._state if self._state is not None else self.load()
        if (
            state.uid != old.uid
            or state.lifecycle < old.lifecycle
            or state.security_counter < old.security_counter
            or state.prov_counter < old.prov_counter
            or (seen_prov_counter is not None and seen_prov_counter != old.prov_counter)
        ):
            raise ChipRefused("the lifecycle and the counters only advance", code="lifecycle")
        installed = None
        if state.installed is not None:
            installed = installed_bytes or state.installed.to_bytes()
        contents: list[tuple[bytes, int]] = []
        if state.installed is not None:
            for _asset, length, content_id in state.installed.regions.values():
                if all(c != content_id for c, _ in contents):
                    contents.append((content_id, length))
        record = cbor.encode(
            {
                "uid": state.uid,
                "lot": state.lot,
                "lifecycle": int(state.lifecycle),
                "security-counter": state.security_counter,
                "prov-counter": state.prov_counter,
                "immutable": state.immutable.to_bytes() if state.immutable else None,
                "identity-key": state.identity_key,
                "certificate": state.certificate,
                "installed": installed,
                "contents": [[c, n] for c, n in contents],
            }
        )
        if len(record) > MAX_RECORD:
            raise ChipRefused("the chip's state does not fit its NVM", code="capacity")
        new = self.path.with_name(self.path.name + ".new")
        offsets: dict[bytes, tuple[int, int]] = {}
        fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                h = hashes.Hash(hashes.SHA256())
                pos = _write(out, h, MAGIC + len(record).to_bytes(4, "big") + record)
                for content_id, length in contents:
                    offsets[content_id] = (pos, length)
                    written = 0
                    for piece in self._content(content_id, (blobs or {}).get(content_id)):
                        written += len(piece)
                        pos += _write(out, h, piece)
                    if written != length:
                        raise ChipRefused("flash content of the wrong length", code="internal")
                out.write(h.finalize())
                out.flush()
                os.fsync(out.fileno())
            if self.before_commit is not None:
                self.before_commit()
            os.replace(new, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                new.unlink()
            raise
        _fsync_dir(self.path.parent)
        self._offsets = offsets
        self._state = state.copy()

    def _content(self, content_id: bytes, given: bytes | StagedContent | None) -> Iterator[bytes]:
        if isinstance(given, bytes):
            yield given
        elif isinstance(given, StagedContent) and not given.held:
            yield from given.pieces()
        else:  # held: the file being replaced has it
            yield from self._pieces(content_id)


def _write(out: IO[bytes], h: hashes.Hash, data: bytes) -> int:
    out.write(data)
    h.update(data)
    return len(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parse(f: IO[bytes], size: int) -> tuple[ChipState, dict[bytes, tuple[int, int]]]:
    head = f.read(len(MAGIC) + 4)
    if len(head) != len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
        raise FormatError("no NVM header")
    n = int.from_bytes(head[len(MAGIC) :])
    if n > MAX_RECORD or len(head) + n + DIGEST_LEN > size:
        raise FormatError("record length out of range")
    data = f.read(n)
    h = hashes.Hash(hashes.SHA256())
    h.update(head + data)
    m = cbor.expect_map(cbor.decode(data, limit=MAX_RECORD, what="NVM record"), "NVM", _FIELDS)
    raw_contents = cbor.expect(m["contents"], list, "NVM contents")
    if len(raw_contents) > MAX_CONTENTS:
        raise FormatError("too many flash contents")
    offsets: dict[bytes, tuple[int, int]] = {}
    pos = len(head) + n
    for item in raw_contents:
        entry = cbor.expect(item, list, "NVM content")
        if len(entry) != 2:
            raise FormatError("malformed content entry")
        content_id = cbor.expect_bstr(entry[0], "content id", DIGEST_LEN)
        length = cbor.expect_uint(entry[1], "content length", size)
        offsets[content_id] = (pos, length)
        pos += length
    if pos + DIGEST_LEN != size:
        raise FormatError("file length does not match its record")
    left = pos - len(head) - n
    while left:  # the contents, hashed a piece at a time
        piece = f.read(min(PIECE, left))
        if not piece:
            raise FormatError("cut short")
        h.update(piece)
        left -= len(piece)
    if f.read(DIGEST_LEN) != h.finalize():
        raise FormatError("digest mismatch (damaged)")
    installed = _opt_bstr(m, "installed", 32 * 1024)
    immutable = _opt_bstr(m, "immutable", 4096)
    state = ChipState(
        uid=cbor.expect_bstr(m["uid"], "uid", UID_LEN),
        lot=cbor.expect_name(m["lot"], "lot", 64),
        lifecycle=Lifecycle(cbor.expect_uint(m["lifecycle"], "lifecycle", Lifecycle.LOCKED)),
        security_counter=cbor.expect_uint(m["security-counter"], "security counter"),
        prov_counter=cbor.expect_uint(m["prov-counter"], "provisioning counter"),
        immutable=ImmutableMemory.from_bytes(immutable) if immutable is not None else None,
        identity_key=_opt_bstr(m, "identity-key", 32),
        certificate=_opt_bstr(m, "certificate", 4096),
        installed=Installed.from_bytes(installed) if installed is not None else None,
    )
    return state, offsets


def _opt_bstr(m: dict[str, Any], key: str, max_len: int) -> bytes | None:
    value = m[key]
    return None if value is None else cbor.expect_bstr(value, key, max_len=max_len)
