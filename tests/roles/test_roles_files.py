"""trustprov.roles.files: a file appears whole or not at all, and its own errors name it."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from trustprov.errors import InputError
from trustprov.roles.files import PRIVATE, atomic_file, new_directory, output_file, write_file


class DiskFull(io.FileIO):
    def write(self, _data: Any, /) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_file_appears_whole_with_its_mode(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "out", mode=PRIVATE) as f:
        f.write(b"one ")
        assert list(tmp_path.iterdir()) != [tmp_path / "out"]  # not yet in place
        f.write(b"two")
    assert (tmp_path / "out").read_bytes() == b"one two"
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == PRIVATE
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("size", [10, 100_000])  # failing at the final flush, or in a write
def test_a_failed_write_names_the_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    (tmp_path / "out").write_bytes(b"the old contents")
    monkeypatch.setattr(io, "FileIO", DiskFull)
    with pytest.raises(InputError, match=f"cannot write {tmp_path / 'out'}: No space left"):
        write_file(tmp_path / "out", b"x" * size, force=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out").read_bytes() == b"the old contents"


def test_an_error_of_the_block_passes_through_as_it_is(tmp_path: Path) -> None:
    """A block that does more than write (manufacturing a lot) may fail for its own reasons: a
    failing random number generator is not a failed write, even though both are OSErrors."""

    def write_then_fail(error: Exception) -> None:
        with atomic_file(tmp_path / "out") as f:
            f.write(b"half")
            raise error

    with pytest.raises(OSError, match="the TRNG failed") as e:
        write_then_fail(OSError(errno.EIO, "the TRNG failed"))
    assert not isinstance(e.value, InputError)
    with pytest.raises(KeyError):
        write_then_fail(KeyError("x"))
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write"):
        write_file(tmp_path / "no" / "out", b"x")
    assert list(tmp_path.iterdir()) == []


# -- output_file: the one way an output is written (issue 11, item 5) ---------------------------
def test_an_output_replaces_a_file_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"precious")
    with pytest.raises(InputError, match="without --force"):
        write_file(out, b"new")
    assert out.read_bytes() == b"precious"
    write_file(out, b"new", force=True, mode=PRIVATE)
    assert out.read_bytes() == b"new"
    assert stat.S_IMODE(out.stat().st_mode) == PRIVATE
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("force", [False, True])
def test_an_output_never_replaces_what_is_not_a_regular_file(tmp_path: Path, force: bool) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for name, kind in (("link", "symbolic link"), ("dir", "directory"), ("fifo", "FIFO")):
        with pytest.raises(InputError, match=kind):
            write_file(tmp_path / name, b"new", force=force)
    assert target.read_bytes() == b"precious"
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "fifo", "link", "target"]


def test_a_file_that_appears_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    """The check before the work and the placing after it are apart in time: the placing itself
    must refuse a name that appeared meanwhile (it links, it does not rename over)."""
    out = tmp_path / "out"

    def write_while_another_writes() -> None:
        with output_file(out) as f:
            f.write(b"new")
            out.write_bytes(b"appeared meanwhile")

    with pytest.raises(InputError, match="without --force"):
        write_while_another_writes()
    assert out.read_bytes() == b"appeared meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_dash_is_standard_output_only_where_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.chdir(tmp_path)
    with output_file(Path("-"), stdout=True) as f:
        f.write(b"to stdout")
    assert capfdbinary.readouterr().out == b"to stdout"
    assert list(tmp_path.iterdir()) == []
    write_file(Path("-"), b"a file named -")  # where stdout is not allowed, - is a name
    assert (tmp_path / "-").read_bytes() == b"a file named -"


def test_a_new_directory_never_goes_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(InputError, match="symbolic link"), new_directory(tmp_path / "link"):
        pass
    assert list((tmp_path / "target").iterdir()) == []
