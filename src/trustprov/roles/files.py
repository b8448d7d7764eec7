"""File I/O of the host tools: bounded reads, atomic writes, private files at 0600.

Invariant: a command either writes all of its outputs or none of them. Single files are written
to a temporary sibling and renamed into place; a directory of outputs is built beside its final
name and renamed into place only when complete.

Every output goes through `output_file` (or `new_directory` for a directory of outputs), which
never replaces an existing file unless the operator said ``--force``, and never replaces what is
not a regular file (a symlink, a device, a directory, a FIFO) even then: a mistyped path must not
destroy the ICM's secrets, nor turn /dev/stdout into a regular file. Even with ``--force`` an
output replaces only a file of its own kind (`trustprov.roles.kinds`): never another artifact,
never a secret, and the file it writes has its kind's mode. ``-`` is standard output for the
outputs that allow it. Files that hold anything secret are created 0600, never wider.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from trustprov.errors import InputError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

PRIVATE = 0o600
PUBLIC = 0o644
STDOUT = "-"  # an output path that means standard output, where the command allows it
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def read_bytes(path: Path, *, limit: int, what: str) -> bytes:
    """The whole file at ``path``, at most ``limit`` bytes. What is allocated is what the file
    holds, never the limit: a 1 GiB limit on a small file costs the small file. A file that
    grows past the limit while read (or a pipe, whose size is unknown) is refused all the same."""
    path = Path(path)
    try:
        with open_input(path, limit=limit, what=what) as (f, size):
            parts = [f.read(size)]
            total = len(parts[0])
            while total <= limit:  # past what stat said: a file still growing, or a pipe
                more = f.read(min(_BLOCK, limit + 1 - total))
                if not more:
                    break
                parts.append(more)
                total += len(more)
    except OSError as e:
        raise _read_error(path, what, e) from e
    if total > limit:
        raise InputError(f"{what} {path}: exceeds the limit of {limit} bytes")
    return parts[0] if len(parts) == 1 else b"".join(parts)


_BLOCK = 64 * 1024


@contextmanager
def open_input(path: Path, *, limit: int, what: str) -> Iterator[tuple[BinaryIO, int]]:
    """``path`` open for reading and its size, refused beyond ``limit`` bytes before a byte is
    read: for readers that take a large file piece by piece
    (`trustprov.formats.bundle.bundle_file`).
    OSErrors of opening are an `InputError` naming the file; those of the block pass through."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise _read_error(path, what, e) from e
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
        except OSError as e:
            raise _read_error(path, what, e) from e
        if size > limit:
            raise InputError(f"{what} {path}: {size} bytes exceeds the limit of {limit}")
        yield f, size


def _read_error(path: Path, what: str, e: OSError) -> InputError:
    if isinstance(e, FileNotFoundError):
        return InputError(f"{what} {path}: no such file")
    if isinstance(e, IsADirectoryError):
        return InputError(f"{what} {path}: is a directory")
    return InputError(f"{what} {path}: cannot read ({e.strerror})")


def write_file(
    path: Path, data: bytes, *, mode: int | None = None, force: bool = False, kind: str = "unknown"
) -> None:
    """Write ``data`` to ``path`` atomically, created with ``mode`` (never wider for a moment;
    default: the mode of ``kind``, an output kind of `kinds.OUTPUT_KINDS`)."""
    with output_file(path, mode=mode, force=force, kind=kind) as f:
        f.write(data)


def check_output(
    path: Path, *, force: bool, existing_ok: bool = False, kind: str = "unknown"
) -> None:
    """Refuse an output path that must not be replaced: anything but a regular file, always; an
    existing regular file unless ``force`` (or ``existing_ok``: an output that is added to, such
    as a chip farm), and even then a file that is not of the output's ``kind`` (one of
    `kinds.OUTPUT_KINDS`): another artifact, or a secret of any kind."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    for test, what in _KINDS:
        if test(st.st_mode):
            raise InputError(f"{path} is {what}; refusing to replace it")
    if existing_ok:
        return
    if not force:
        raise InputError(f"{path} exists; refusing to replace it without --force")
    from trustprov.roles.kinds import check_replace  # noqa: PLC0415 - lazy: start-up

    check_replace(path, kind)


@contextmanager
def output_file(
    path: Path,
    *,
    mode: int | None = None,
    force: bool = False,
    stdout: bool = False,
    kind: str = "unknown",
) -> Iterator[BinaryIO]:
    """The one way an output file is written: checked by `check_output`, then `atomic_file`.

    ``kind`` (one of `kinds.OUTPUT_KINDS`) is what the output is: with ``force`` it replaces a
    file of that kind only, and it is written with that kind's mode unless ``mode`` is given.
    With ``stdout``, the path ``-`` is standard output (written in place: it cannot be atomic).
    """
    if stdout and str(path) == STDOUT:
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    check_output(path, force=force, kind=kind)
    if mode is None:
        from trustprov.roles.kinds import output_mode  # noqa: PLC0415 - lazy: start-up

        mode = output_mode(kind)
    with atomic_file(path, mode=mode, force=force, kind=kind) as f:
        yield f


@contextmanager
def atomic_file(
    path: Path, *, mode: int = PUBLIC, force: bool = False, kind: str = "unknown"
) -> Iterator[BinaryIO]:
    """A file to write that appears at ``path`` whole, and only if the block succeeds.

    Without ``force`` it never replaces a file that appeared at ``path`` meanwhile (the file is
    placed by a hard link, which fails if the name exists); with ``force`` it replaces a regular
    file of the output's ``kind`` only (`check_output`). Use it through `output_file`, which
    checks the path before any work is done.

    An OSError in creating, writing, syncing or placing the file is an `InputError` that names
    ``path``. Any other exception of the block passes through as it is, an OSError of the
    block's own included: a block may do more than write (manufacturing writes a lot's manifest
    chip by chip), and a failing TRNG is not a failed write.
    """
    path = Path(path)
    with _cannot_write(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with _Output(fd, path) as f:
            with _cannot_write(path):
                os.fchmod(fd, mode)
            yield f
            f.flush()
            with _cannot_write(path):
                os.fsync(f.fileno())
        with _cannot_write(path):
            _place(tmp, path, force=force, kind=kind)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _place(tmp: str, path: Path, *, force: bool, kind: str) -> None:
    if force:
        check_output(path, force=True, kind=kind)  # again: a symlink (or a secret) may have
        # appeared since the check
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and fails if the name exists: never a silent replace
    except FileExistsError as e:
        raise InputError(f"{path} exists; refusing to replace it without --force") from e
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        check_output(path, force=False)  # a file system without hard links
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextmanager
def _cannot_write(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e


class _Output(io.BufferedWriter):
    """The file `atomic_file` yields: its own write errors name the file."""

    def __init__(self, fd: int, path: Path) -> None:
        super().__init__(io.FileIO(fd, "wb"))
        self._path = path

    def write(self, data: ReadableBuffer, /) -> int:
        try:  # not `with _cannot_write`: this runs once per chip of a lot
            return super().write(data)
        except OSError as e:
            raise InputError(f"cannot write {self._path}: {e.strerror or e}") from e

    def flush(self) -> None:  # close() flushes through this too
        with _cannot_write(self._path):
            super().flush()


@contextmanager
def new_directory(final: Path) -> Iterator[Path]:
    """Yield a staging directory that becomes ``final`` when the block succeeds.

    ``final`` must not exist or be an empty directory: the tools never overwrite a party's state
    (losing ENC(RND_SHARE) would lose the OEM's ability to regenerate).
    """
    final = Path(final)
    if final.is_symlink():
        raise InputError(f"{final} is a symbolic link; refusing to replace it")
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise InputError(f"{final} exists and is not empty; refusing to overwrite it")
    parent = final.resolve().parent
    if not parent.is_dir():
        raise InputError(f"cannot create {final}: {parent} does not exist")
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}.", suffix=".partial"))
    try:
        yield staging
        if final.exists():
            final.rmdir()
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
