"""Station leases: exclusive, crash-released ownership of a station's name.

A free lease is what makes a dead station's claims stale (`line.records`, invariant 3): on
SQLite an ``flock`` on a file beside the store, which the kernel drops when the process dies;
on PostgreSQL a session advisory lock, which the server drops when the connection dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from trustprov.line.records.schema import RecordsError, _first_line


def _lease_key(scope: str, station: str) -> int:
    digest = hashlib.blake2b(f"trustprov-station\0{scope}\0{station}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class _Leases:
    """Exclusive, crash-released ownership of station names."""

    def acquire(self, station: str) -> bool:
        raise NotImplementedError

    def release(self, station: str) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise if the leases this process holds may have been lost."""

    def close(self) -> None:
        raise NotImplementedError


class _FileLeases(_Leases):
    """``flock`` on one file per station beside the SQLite store; the kernel drops it on exit."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._held: dict[str, int] = {}

    def acquire(self, station: str) -> bool:
        if station in self._held:
            return False
        self._dir.mkdir(mode=0o700, exist_ok=True)
        name = hashlib.sha256(station.encode()).hexdigest()[:32] + ".lock"
        fd = os.open(self._dir / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._held[station] = fd
        return True

    def release(self, station: str) -> None:
        fd = self._held.pop(station, None)
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    def close(self) -> None:
        for station in list(self._held):
            self.release(station)


class _PgLeases(_Leases):
    """Session advisory locks on a connection of their own; the server drops them when the
    connection dies. Server-side keepalives make a vanished machine's lease expire in ~30 s."""

    def __init__(self, engine: Engine, scope: str) -> None:
        self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn.exec_driver_sql("SET tcp_keepalives_idle = 10")
        self._conn.exec_driver_sql("SET tcp_keepalives_interval = 5")
        self._conn.exec_driver_sql("SET tcp_keepalives_count = 4")
        self._scope = scope
        self._held: set[str] = set()

    def acquire(self, station: str) -> bool:
        if station in self._held:
            return False
        key = _lease_key(self._scope, station)
        got = self._conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
        if got:
            self._held.add(station)
        return bool(got)

    def release(self, station: str) -> None:
        if station in self._held:
            self._held.discard(station)
            key = _lease_key(self._scope, station)
            try:
                self._conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            except exc.SQLAlchemyError:  # a DBAPIError, or the pending rollback of one
                # the connection is gone, and with its session the lock: nothing is left to
                # release, and the error that stopped the line (`check`) must reach the operator
                # unmasked, with how to resume
                self._conn.invalidate()

    def check(self) -> None:
        try:
            self._conn.exec_driver_sql("SELECT 1")
        except exc.DBAPIError as e:
            raise RecordsError(
                f"lost the connection that holds the station lease ({_first_line(e)}); "
                "stopping. Rerun the same command to resume"
            ) from e

    def close(self) -> None:
        self._held.clear()
        try:
            self._conn.close()  # the session ends: the server drops its locks
        except exc.SQLAlchemyError:
            self._conn.invalidate()  # already ended: the server dropped them then
