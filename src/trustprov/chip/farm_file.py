"""The chip farm's SQLite file: its schema and format, how it is opened, and its write lock.

Invariants:
- Only a file that is empty or already a farm of format `FARM_FORMAT` is used: another database
  is never turned into a farm, and one of another format is refused, with an `InputError`.
- A file that cannot be read or written (permissions, read-only media, locks) is reported as
  such, never as "not a chip farm"; a writer is refused at once on a farm it cannot write, and a
  reader opens it ``mode=ro`` (``immutable`` unless a WAL holds writes not in the file yet).
- The journal mode is changed only on a file known to be a farm; a reader writes nothing.
- A write takes the lock with BEGIN IMMEDIATE, waiting for other processes of the farm in steps
  of tens of microseconds up to `LOCK_WAIT` seconds, never in SQLite's busy handler.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from trustprov.errors import InputError
from trustprov.formats.sqlite_file import read_only_uri, writable

SCHEMA = """
CREATE TABLE IF NOT EXISTS farm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS families (family_id BLOB PRIMARY KEY, immutable BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (blob_id BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS installed_states (state_id BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chips (
    uid BLOB PRIMARY KEY,
    lot TEXT NOT NULL,
    family_id BLOB REFERENCES families(family_id),
    lifecycle INTEGER NOT NULL,
    security_counter INTEGER NOT NULL,
    identity_key BLOB,
    certificate BLOB,
    installed_id BLOB REFERENCES installed_states(state_id),
    prov_counter INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chips_by_lot ON chips (lot, uid);
"""
# 3: each key slot keeps its asset's manifest digest; 4: each chip's provisioning counter (OTP)
FARM_FORMAT = "trustprov-farm-4"
LOCK_WAIT = 60.0  # seconds a write waits for another process's
LOCK_PAUSE, LOCK_PAUSE_MAX = 20e-6, 5e-3  # its first pause, doubling up to the longest


_ACCESS_ERRORS = (
    "SQLITE_CANTOPEN",
    "SQLITE_READONLY",
    "SQLITE_PERM",
    "SQLITE_IOERR",
    "SQLITE_BUSY",
)


def cannot_access(e: sqlite3.Error) -> bool:
    """An error of access (permissions, read-only media, locks), not of the file's contents."""
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith(_ACCESS_ERRORS)


def open_farm_file(path: Path, *, create: bool, read_only: bool) -> sqlite3.Connection:
    """The farm at ``path`` (made there if ``create`` and the file is empty or missing), in
    autocommit mode: every write is an explicit transaction (`begin_immediate`)."""
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a chip farm")
    if not create and not path.is_file():
        raise InputError(f"no chip farm at {path}")
    new_file = not path.exists() or path.stat().st_size == 0
    try:
        can_write = not path.exists() or writable(path)
        if not can_write and not read_only:
            # a writer would meet it at its first write, deep in a command: say it here
            raise InputError(
                f"cannot use chip farm {path}: it or its directory cannot be written "
                "(read-only media?)"
            )
        if not can_write:
            # only unwritable media reach here: the URI is immutable unless a WAL holds writes
            db = sqlite3.connect(read_only_uri(path), uri=True, timeout=60, isolation_level=None)
        else:
            db = sqlite3.connect(path, timeout=60, isolation_level=None)
    except sqlite3.Error as e:  # e.g. a directory that cannot be written
        raise InputError(f"cannot open chip farm {path}: {e}") from e
    try:
        if create and new_file:  # never turn another database into a farm
            db.executescript(SCHEMA)
            db.execute("INSERT INTO farm_meta VALUES ('format', ?)", (FARM_FORMAT,))
        row = db.execute("SELECT value FROM farm_meta WHERE key='format'").fetchone()
    except sqlite3.DatabaseError as e:
        db.close()
        if cannot_access(e):  # could not read or write it: no verdict on what it is
            raise InputError(f"cannot use chip farm {path}: {e}") from e
        raise InputError(f"{path} is not a chip farm") from e
    if row is None or row[0] != FARM_FORMAT:
        db.close()
        raise InputError(f"{path} is not a chip farm of format {FARM_FORMAT}")
    try:  # only now, on a file known to be a farm, change its journal mode
        if not read_only:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # from now on a write waits for another process's write in `begin_immediate`, in steps
        # of tens of microseconds, not in SQLite's busy handler, which sleeps 1 ms at least
        # (a chip's write holds the lock some 50 us): readers never wait under WAL
        db.execute("PRAGMA busy_timeout=0")
    except sqlite3.OperationalError as e:  # read-only media: a farm, but not usable here
        db.close()
        raise InputError(f"cannot use chip farm {path}: {e}") from e
    return db


def begin_immediate(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE: take the write lock, waiting up to `LOCK_WAIT` seconds for other
    processes of the farm (a station's workers) to let go of it."""
    deadline, pause = 0.0, LOCK_PAUSE
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not getattr(e, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
                raise
            now = time.monotonic()
            if not deadline:
                deadline = now + LOCK_WAIT
            elif now > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, LOCK_PAUSE_MAX)
