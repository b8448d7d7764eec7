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
from trustprov.roles.files import PRIVATE, atomic_file, write_file


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
        write_file(tmp_path / "out", b"x" * size)
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
