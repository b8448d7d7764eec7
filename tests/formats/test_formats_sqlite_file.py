"""The read-only SQLite URI shared by the chip farm and the records store."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustprov.formats import sqlite_file
from trustprov.formats.sqlite_file import read_only_uri


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "a b.sqlite"  # a space: the URI quotes the path
    path.write_bytes(b"")
    return path


def _unwritable(monkeypatch: pytest.MonkeyPatch) -> None:
    # read-only media, as os.access reports them (root may write any mode bits)
    monkeypatch.setattr(sqlite_file.os, "access", lambda _p, _m: False)


def test_writable_media_are_read_only_but_never_immutable(tmp_path: Path) -> None:
    path = _db(tmp_path)
    uri = read_only_uri(path)
    assert uri == f"file:{str(path.resolve()).replace(' ', '%20')}?mode=ro"


def test_read_only_media_are_immutable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _db(tmp_path)
    _unwritable(monkeypatch)
    assert read_only_uri(path).endswith("?mode=ro&immutable=1")


@pytest.mark.parametrize("wal", [b"", b"frames"])
def test_a_wal_with_writes_not_in_the_file_keeps_immutable_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wal: bytes
) -> None:
    path = _db(tmp_path)
    (tmp_path / (path.name + "-wal")).write_bytes(wal)
    _unwritable(monkeypatch)
    assert read_only_uri(path).endswith("?mode=ro" if wal else "&immutable=1")
