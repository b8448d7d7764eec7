"""The records store: one row per chip per attempt, in SQLite (``sqlite:///PATH``)."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from trustprov.errors import InputError
from trustprov.roles.cm import Outcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    lot TEXT NOT NULL,
    station TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    software_version TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('provisioned', 'already-provisioned', 'failed')),
    error_code TEXT,
    error TEXT,
    duration_us INTEGER NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_lot ON records (lot, uid);
"""


def sqlite_path(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise InputError(f"records URL {url!r}: only sqlite:///PATH is supported")
    return Path(url[len(prefix) :])


class RecordStore:
    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if not path.parent.is_dir():
            raise InputError(f"records URL {url!r}: directory {path.parent} does not exist")
        try:
            self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise InputError(f"records store {path}: {e}") from e
        self.url = url

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        outcomes: Iterable[Outcome],
        *,
        lot: str,
        station: str,
        bundle_id: bytes,
        software_version: str,
    ) -> None:
        rows = [
            (
                o.uid.hex(),
                lot,
                station,
                bundle_id.hex(),
                software_version,
                o.result,
                o.error_code,
                o.error,
                o.duration_us,
                datetime.datetime.fromtimestamp(o.finished_at, datetime.UTC).isoformat(),
            )
            for o in outcomes
        ]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO records (uid, lot, station, bundle_id, software_version, result, "
                "error_code, error, duration_us, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def results(self, lot: str) -> list[tuple[str, str, str | None]]:
        """(uid, result, error code) of every record of ``lot``, oldest first."""
        return list(
            self._db.execute(
                "SELECT uid, result, error_code FROM records WHERE lot = ? ORDER BY id", (lot,)
            )
        )
