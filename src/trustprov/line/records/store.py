"""The records store itself: opening it, the jobs and their inventory, leases, and the claim
and settle path that keeps invariants 1-4 of `line.records`, each in one transaction.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from trustprov.errors import InputError
from trustprov.formats.sqlite_file import read_only_uri
from trustprov.line.records.claims import RecordClaims
from trustprov.line.records.engine import (
    _read_only_session,
    _sqlite_engine,
    _use_wal,
)
from trustprov.line.records.leases import _FileLeases, _Leases, _PgLeases
from trustprov.line.records.queries import RecordQueries
from trustprov.line.records.schema import (
    _SCHEMA_LOCK,
    FILL_CHUNK,
    FORMAT,
    JobRef,
    RecordsError,
    _first_line,
    _utc,
    jobs,
    lot_chips,
    meta,
    metadata,
    parse_url,
    redacted,
)

log = logging.getLogger("trustprov.line.records")


class RecordStore(RecordClaims, RecordQueries):
    """The records store of a line. One per process; not shared between threads."""

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        password: str | None = None,
    ) -> None:
        """``read_only`` (a report): SQLite is opened with ``mode=ro``, and as ``immutable`` when
        the file or its directory cannot be written (read-only media, where SQLite could not make
        the WAL's shared-memory file); nothing is created or changed.

        ``password`` (PostgreSQL; from a password file): given to the driver alone, never put in
        the URL, so nothing that shows the URL (``self.url``, errors) can show it. Without it
        libpq looks where PostgreSQL always does (PGPASSWORD, ~/.pgpass or PGPASSFILE, a
        service file)."""
        parsed = parse_url(url)
        self.url = redacted(parsed)
        self._clock = clock
        self._leases: _Leases | None = None
        self._cursor: dict[int, str] = {}  # job id -> the last uid claimed
        self._row_inserts = {}
        self._statements = {}
        self.dialect = parsed.get_backend_name()
        self._read_only = read_only
        if password is not None and self.dialect == "sqlite":
            raise InputError("a records password is for PostgreSQL: an SQLite store takes none")
        if self.dialect == "sqlite":
            assert parsed.database is not None  # noqa: S101 - parse_url checked
            path = Path(parsed.database)
            if not path.parent.is_dir():
                raise InputError(f"records store {self.url}: {path.parent} does not exist")
            if not create and not path.is_file():
                raise InputError(f"no records store at {path}")
            self._path: Path | None = path
            self._engine = _sqlite_engine(parsed, read_only_uri(path) if read_only else None)
        else:
            self._path = None
            query = dict(parsed.query)
            args: dict[str, Any] = {} if "connect_timeout" in query else {"connect_timeout": 10}
            if password is not None:
                args["password"] = password
            self._engine = sa.create_engine(parsed, connect_args=args, pool_size=2)
            if read_only:
                # a reader (a report, the dashboard) cannot write even by a bug of its own: the
                # server refuses any write in a read-only transaction
                event.listen(self._engine, "connect", _read_only_session)
        try:
            self._conn = self._engine.connect()
        except exc.DBAPIError as e:
            self._engine.dispose()
            why = _first_line(e)
            if password:  # no driver is known to echo it; should one ever do, it is not shown
                why = why.replace(password, "***")
            raise InputError(f"records store {self.url}: cannot connect: {why}") from e
        try:
            self._prepare(create=create)
        except RecordsError as e:  # e.g. not a database at all, or no right to create tables
            self.close()
            raise InputError(f"cannot use {e.message}") from e
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._leases is not None:
            self._leases.close()
            self._leases = None
        self._conn.close()
        self._engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _now(self) -> datetime.datetime:
        return _utc(self._clock())

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction (IMMEDIATE on SQLite); database errors become `RecordsError`."""
        try:
            with self._conn.begin():
                yield self._conn
        except exc.SQLAlchemyError as e:
            if isinstance(e, exc.DBAPIError) and e.connection_invalidated:
                raise RecordsError(
                    f"lost the connection to the records store {self.url} ({_first_line(e)}); "
                    "stopping. Rerun the same command to resume"
                ) from e
            raise RecordsError(f"records store {self.url}: {_first_line(e)}") from e

    def _prepare(self, *, create: bool) -> None:
        """Check that the database is a records store of this format; create it if empty."""
        with self.transaction() as c:
            if self.dialect == "postgresql":
                c.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            names = set(sa.inspect(c).get_table_names())
            if meta.name in names:
                row = c.execute(sa.select(meta.c.value).where(meta.c.key == "format")).first()
                if row is None or row[0] != FORMAT:
                    found = row[0] if row else "none"
                    raise InputError(
                        f"{self.url} holds records of format {found!r}, not {FORMAT!r}; "
                        "give a new records store"
                    )
            elif names & set(metadata.tables) or (self.dialect == "sqlite" and names):
                raise InputError(f"{self.url} is not a trustprov records store")
            elif not create:
                raise InputError(f"no trustprov records in {self.url}")
            else:
                metadata.create_all(c)
                c.execute(sa.insert(meta).values(key="format", value=FORMAT))
                log.info("created the records store in %s", self.url)
        if self.dialect == "sqlite" and not self._read_only:
            # only now, on a file known to be a records store, change its journal mode; outside
            # any transaction, so on the driver's connection (which is in autocommit mode)
            driver = self._conn.connection.driver_connection
            assert driver is not None  # noqa: S101 - a live connection has its driver's
            _use_wal(driver)

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with the dialect's ON CONFLICT support."""
        if self.dialect == "postgresql":
            # only on PostgreSQL: its dialect costs an SQLite store's command start-up
            from sqlalchemy.dialects import postgresql  # noqa: PLC0415

            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- jobs and inventory ------------------------------------------------------------------
    def open_job(self, lot: str, bundle_id: str, uids: Sequence[str]) -> JobRef:
        """The job (lot, bundle), created with every chip ``pending`` on first run; chips new to
        the farm's inventory since are added as ``pending``."""
        with self.transaction() as c:
            c.execute(
                self._insert(jobs)
                .values(lot=lot, bundle_id=bundle_id, chips=0, created=self._now())
                .on_conflict_do_nothing(index_elements=["lot", "bundle_id"])
            )
            job_id = c.execute(
                sa.select(jobs.c.id).where(jobs.c.lot == lot, jobs.c.bundle_id == bundle_id)
            ).scalar_one()
            count = sa.select(sa.func.count()).where(lot_chips.c.job_id == job_id)
            have = c.execute(count.select_from(lot_chips)).scalar_one()
            if have != len(uids):
                stmt = self._insert(lot_chips).on_conflict_do_nothing(
                    index_elements=["job_id", "uid"]
                )
                for i in range(0, len(uids), FILL_CHUNK):
                    rows = [
                        {"job_id": job_id, "uid": u, "state": "pending"}
                        for u in uids[i : i + FILL_CHUNK]
                    ]
                    c.execute(stmt, rows)
                have = c.execute(count.select_from(lot_chips)).scalar_one()
                c.exec_driver_sql("ANALYZE lot_chips")  # statistics for the claim's plan
                log.info("lot %s: %d chips in the records of bundle %s", lot, have, bundle_id)
            c.execute(sa.update(jobs).where(jobs.c.id == job_id).values(chips=have))
        return JobRef(job_id, lot, bundle_id, have)

    # -- leases ------------------------------------------------------------------------------
    def _lease_table(self) -> _Leases:
        if self._leases is None:
            if self._path is not None:
                self._leases = _FileLeases(self._path.with_name(self._path.name + "-stations"))
            else:
                scope = self._conn.execute(sa.select(sa.func.current_schema())).scalar_one()
                self._conn.rollback()
                self._leases = _PgLeases(self._engine, str(scope))
        return self._leases

    @contextmanager
    def lease(self, station: str, *, wait: float = 0.0) -> Iterator[None]:
        """Hold ``station``'s lease for the block; refuse if a live process holds it. ``wait``
        seconds lets a just-killed run's lease go (its server session may outlive it briefly)."""
        leases = self._lease_table()
        deadline = time.monotonic() + wait
        while not (got := leases.acquire(station)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not got:
            raise InputError(
                f"station {station!r} is already running on {self.url}; give each station "
                "its own --station name"
            )
        try:
            yield
        finally:
            leases.release(station)

    def check_lease(self) -> None:
        self._lease_table().check()
