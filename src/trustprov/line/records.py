"""The records store: which station owns which chip, and what became of every chip.

One interface on SQLAlchemy Core over a SQLite file (``sqlite:///PATH``, the default) or
PostgreSQL (``postgresql://...``, driven by psycopg 3), so stations on several machines can share
one lot. Tables (docs/protocol.md section 9):

- ``jobs``: one row per (lot, bundle id): a bundle applied to a lot. An update bundle is a new
  job of the same lot.
- ``lot_chips``: one row per chip of a job, filled from the farm's inventory on first run;
  ``state`` is ``pending``, ``claimed`` (by ``station``, at ``claimed_at``) or ``done``.
- ``results``: a chip's **final record**, primary key (job, uid): at most one per chip, ever;
  with the receipt the chip signed when it installed the bundle (none for ``already-provisioned``
  or ``failed``: no install, no receipt).
- ``records``: the attempt log, one row per attempt (and one ``interrupted`` row per claim that a
  dead station left behind); it is history, never consulted to decide anything.

Invariants, each kept by one transaction:

1. A chip is claimed by one station at a time: a claim moves ``pending -> claimed`` under a
   row lock (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``, one writer).
2. ``state = 'done'`` if and only if the chip has its final record: the record is written in the
   transaction that moves the chip from ``claimed`` (by this station) to ``done``.
3. A claim whose station is gone (its lease is free) is never guessed at: the chip goes back
   through FIG. 3, which reads the chip's own status first and settles a chip that already holds
   the bundle as ``already-provisioned`` without touching it (`roles.cm.provision_chip`).
4. A ``failed`` final record stands until a later run of the job retries the chip; that run
   deletes it and makes the chip ``pending`` in one transaction (the attempt log keeps it).

A station holds a *lease* on its name while it runs: a session advisory lock on PostgreSQL (the
server drops it when the station's connection dies), an ``flock`` on a file beside a SQLite
store (the kernel drops it when the process dies). A free lease is what makes a claim stale.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from trustprov.errors import InputError, TrustprovError
from trustprov.roles.cm import Outcome

log = logging.getLogger(__name__)

# 3: a final record keeps the chip's receipt; a store of format 2 is refused as not this format
# (its final records have no receipts to give: provision into a new store)
FORMAT = "trustprov-records-3"
STATION_MAX = 64
LOT_MAX = 200
FILL_CHUNK = 5000  # inventory rows per INSERT
_SCHEMA_LOCK = 0x7472757374707631  # "trustpv1": serializes schema creation on PostgreSQL

# -- schema -------------------------------------------------------------------------------------
metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: an alias of the rowid
_TIME = sa.DateTime(timezone=True)

meta = sa.Table(
    "records_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("lot", sa.String(LOT_MAX), nullable=False),
    sa.Column("bundle_id", sa.String(32), nullable=False),
    sa.Column("chips", sa.Integer, nullable=False),
    sa.Column("created", _TIME, nullable=False),
    sa.UniqueConstraint("lot", "bundle_id", name="jobs_lot_bundle"),
)
lot_chips = sa.Table(
    "lot_chips",
    metadata,
    sa.Column("job_id", _ID, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("uid", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("station", sa.String(STATION_MAX)),
    sa.Column("claimed_at", _TIME),
    sa.CheckConstraint("state IN ('pending', 'claimed', 'done')", name="lot_chips_state"),
    sa.CheckConstraint("state = 'pending' OR station IS NOT NULL", name="lot_chips_owner"),
    sa.Index("lot_chips_by_state", "job_id", "state", "uid"),
)


def _record_columns() -> list[sa.Column[Any]]:
    """What every record holds: UID (in the key), lot, station, bundle, result, error code,
    duration and time."""
    return [
        sa.Column("lot", sa.String(LOT_MAX), nullable=False),
        sa.Column("station", sa.String(STATION_MAX), nullable=False),
        sa.Column("bundle_id", sa.String(32), nullable=False),
        sa.Column("result", sa.String(24), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("duration_us", sa.BigInteger, nullable=False),
        sa.Column("time", _TIME, nullable=False),
    ]


results = sa.Table(
    "results",
    metadata,
    sa.Column("job_id", _ID, primary_key=True),
    sa.Column("uid", sa.String(32), primary_key=True),
    sa.Column("software_version", sa.String(64), nullable=False),
    *_record_columns(),
    sa.Column("receipt", sa.LargeBinary),  # as the chip sent it; the OEM verifies it
    sa.ForeignKeyConstraint(["job_id", "uid"], ["lot_chips.job_id", "lot_chips.uid"]),
    sa.CheckConstraint(
        "result IN ('provisioned', 'already-provisioned', 'failed')", name="results_result"
    ),
    # the report's and the dashboard's counts: an index-only range per job, not a table scan
    sa.Index("results_by_outcome", "job_id", "result", "station", "error_code"),
)
records = sa.Table(
    "records",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("job_id", _ID, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("uid", sa.String(32), nullable=False),
    sa.Column("software_version", sa.String(64)),  # unknown for an interrupted claim
    *_record_columns(),
    sa.CheckConstraint(
        "result IN ('provisioned', 'already-provisioned', 'failed', 'interrupted')",
        name="records_result",
    ),
    sa.Index("records_by_lot", "lot", "uid"),
    sa.Index("records_by_job", "job_id", "uid"),
)


class RecordsError(TrustprovError):
    """The records store failed while the line ran (connection lost, lease lost, a bug)."""

    code = "records"


# -- URLs ---------------------------------------------------------------------------------------
def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///PATH`` URL."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise InputError(f"records URL {url!r} is not sqlite:///PATH")
    return Path(parsed.database)


def parse_url(text: str) -> URL:
    """``sqlite:///PATH`` or PostgreSQL through psycopg 3 (``postgresql://`` means psycopg)."""
    hint = "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE"
    try:
        url = make_url(text)
    except (exc.ArgumentError, ValueError) as e:
        raise InputError(f"records URL is not a database URL; {hint}") from e
    shown = url.render_as_string(hide_password=True)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise InputError(f"records URL {shown!r} names no file; {hint}")
        return url.set(drivername="sqlite")
    raise InputError(f"records URL {shown!r}: unsupported database; {hint}")


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else "no message from the database driver"


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """A time read back from the store (SQLite keeps no zone: it is always UTC there)."""
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


def _lease_key(scope: str, station: str) -> int:
    digest = hashlib.blake2b(f"trustprov-station\0{scope}\0{station}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


# -- leases -------------------------------------------------------------------------------------
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
            self._conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))

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
        self._conn.close()  # the session ends: the server drops its locks


# -- the store ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRef:
    """One bundle applied to one lot."""

    id: int
    lot: str
    bundle_id: str  # hex
    chips: int


@dataclass(frozen=True)
class Claim:
    """A chip claimed by this station; ``recovered`` when a dead run had left it claimed."""

    uid: str  # hex
    recovered: bool = False


WAL_WAIT = 60.0  # seconds a station waits for the others to let go of a new store's journal


def _use_wal(driver: Any) -> None:
    """Put a SQLite store in WAL mode. The switch needs the file to itself, and SQLite answers
    "locked" at once, without its busy timeout, while another station holds it: as several
    stations open a new store together, each that finds it not yet in WAL tries again."""
    deadline = time.monotonic() + WAL_WAIT
    while True:
        try:
            if str(driver.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                driver.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class RecordStore:
    """The records store of a line. One per process; not shared between threads."""

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``read_only`` (a report): SQLite is opened with ``mode=ro``, and as ``immutable`` when
        the file or its directory cannot be written (read-only media, where SQLite could not make
        the WAL's shared-memory file); nothing is created or changed."""
        parsed = parse_url(url)
        self.url = parsed.render_as_string(hide_password=True)
        self._clock = clock
        self._leases: _Leases | None = None
        self._cursor: dict[int, str] = {}  # job id -> the last uid claimed
        self.dialect = parsed.get_backend_name()
        self._read_only = read_only
        if self.dialect == "sqlite":
            assert parsed.database is not None  # noqa: S101 - parse_url checked
            path = Path(parsed.database)
            if not path.parent.is_dir():
                raise InputError(f"records store {self.url}: {path.parent} does not exist")
            if not create and not path.is_file():
                raise InputError(f"no records store at {path}")
            self._path: Path | None = path
            self._engine = _sqlite_engine(parsed, _read_only_uri(path) if read_only else None)
        else:
            self._path = None
            query = dict(parsed.query)
            args: dict[str, Any] = {} if "connect_timeout" in query else {"connect_timeout": 10}
            self._engine = sa.create_engine(parsed, connect_args=args, pool_size=2)
            if read_only:
                # a reader (a report, the dashboard) cannot write even by a bug of its own: the
                # server refuses any write in a read-only transaction
                event.listen(self._engine, "connect", _read_only_session)
        try:
            self._conn = self._engine.connect()
        except exc.DBAPIError as e:
            self._engine.dispose()
            raise InputError(f"records store {self.url}: cannot connect: {_first_line(e)}") from e
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

    def find_jobs(self, lot: str | None = None) -> list[JobRef]:
        """Jobs, oldest first (of ``lot`` only if given)."""
        q = sa.select(jobs.c.id, jobs.c.lot, jobs.c.bundle_id, jobs.c.chips).order_by(jobs.c.id)
        if lot is not None:
            q = q.where(jobs.c.lot == lot)
        with self.transaction() as c:
            return [JobRef(*row) for row in c.execute(q)]

    def states(self, job: JobRef) -> dict[str, int]:
        """Chips of the job by state (pending, claimed, done)."""
        q = (
            sa.select(lot_chips.c.state, sa.func.count())
            .where(lot_chips.c.job_id == job.id)
            .group_by(lot_chips.c.state)
        )
        with self.transaction() as c:
            counts = {"pending": 0, "claimed": 0, "done": 0}
            for state, n in c.execute(q):
                counts[state] = n
            return counts

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

    # -- claims ------------------------------------------------------------------------------
    def retry_failed(self, job: JobRef) -> int:
        """Chips whose final record is ``failed`` go back to ``pending`` (invariant 4)."""
        failed = sa.select(results.c.uid).where(
            results.c.job_id == job.id, results.c.result == "failed"
        )
        with self.transaction() as c:
            n = c.execute(
                sa.update(lot_chips)
                .where(lot_chips.c.job_id == job.id, lot_chips.c.uid.in_(failed))
                .values(state="pending", station=None, claimed_at=None)
            ).rowcount
            c.execute(
                sa.delete(results).where(results.c.job_id == job.id, results.c.result == "failed")
            )
        return n

    def claim(self, job: JobRef, station: str, n: int) -> list[Claim]:
        """Claim up to ``n`` pending chips of the job for ``station`` (invariant 1)."""
        with self.transaction() as c:
            return self._claim(c, job, station, n)

    def _claim(self, c: Connection, job: JobRef, station: str, n: int) -> list[Claim]:
        # from just after the last chip this store claimed, then (nothing there) from the
        # start: chips given back or skipped while locked lie behind the cursor. Without it
        # every claim would walk from the lowest uid over the index entries that claimed chips
        # leave behind until VACUUM (PostgreSQL), a cost growing with the lot
        after = self._cursor.get(job.id, "")
        uids = self._claim_after(c, job, station, n, after)
        if not uids and after:
            uids = self._claim_after(c, job, station, n, "")
        if uids:
            self._cursor[job.id] = uids[-1]
        return [Claim(u) for u in uids]

    def _claim_after(
        self, c: Connection, job: JobRef, station: str, n: int, after: str
    ) -> list[str]:
        # a CTE, evaluated once: as an IN (subquery), PostgreSQL may run the locking subquery
        # again per row and claim more than n
        pending = (
            sa.select(lot_chips.c.uid)
            .where(
                lot_chips.c.job_id == job.id,
                lot_chips.c.state == "pending",
                lot_chips.c.uid > after,
            )
            .order_by(lot_chips.c.uid)
            .limit(n)
            .with_for_update(skip_locked=True)  # nothing on SQLite: one writer anyway
            .cte("claimable")
        )
        # no second "state = 'pending'" here: the CTE's rows are pending and locked (PostgreSQL
        # re-checks the condition when it locks), and the planner would drive the join from the
        # state index, scanning every pending chip of the lot per claim
        uids = c.execute(
            sa.update(lot_chips)
            .where(lot_chips.c.job_id == job.id, lot_chips.c.uid == pending.c.uid)
            .values(state="claimed", station=station, claimed_at=self._now())
            .returning(lot_chips.c.uid)
        ).scalars()
        return sorted(uids)

    def claim_chip(self, job: JobRef, station: str, uid: str) -> list[Claim]:
        """Claim the one chip ``uid`` if it is pending (a chip on a bare serial port)."""
        with self.transaction() as c:
            got = c.execute(
                sa.update(lot_chips)
                .where(
                    lot_chips.c.job_id == job.id,
                    lot_chips.c.uid == uid,
                    lot_chips.c.state == "pending",
                )
                .values(state="claimed", station=station, claimed_at=self._now())
                .returning(lot_chips.c.uid)
            ).scalars()
            return [Claim(u) for u in got]

    def recover(self, job: JobRef, station: str) -> list[Claim]:
        """Claims that ``station`` left behind when it died; the caller holds its lease. Each is
        logged as ``interrupted`` and handed back, still claimed, to be settled from the chip."""
        return self._reclaim(job, station, station)

    def take_over(self, job: JobRef, station: str) -> list[Claim]:
        """Claims of other stations that are no longer running (their lease is free)."""
        with self.transaction() as c:
            others = list(
                c.execute(
                    sa.select(lot_chips.c.station)
                    .where(
                        lot_chips.c.job_id == job.id,
                        lot_chips.c.state == "claimed",
                        lot_chips.c.station != station,
                    )
                    .distinct()
                ).scalars()
            )
        leases = self._lease_table()
        taken: list[Claim] = []
        for other in others:
            if other is None or not leases.acquire(other):
                continue  # alive: its claims are its own
            try:
                found = self._reclaim(job, other, station)
            finally:
                leases.release(other)
            if found:
                log.warning(
                    "took over %d chips claimed by station %r, which is not running",
                    len(found),
                    other,
                )
            taken.extend(found)
        return taken

    def _reclaim(self, job: JobRef, dead: str, station: str) -> list[Claim]:
        now = self._now()
        with self.transaction() as c:
            rows = list(
                c.execute(
                    sa.select(lot_chips.c.uid, lot_chips.c.claimed_at)
                    .where(_claimed_by(job, dead))
                    .order_by(lot_chips.c.uid)
                    .with_for_update()
                )
            )
            if not rows:
                return []
            c.execute(
                sa.insert(records),
                [
                    {
                        "job_id": job.id,
                        "uid": uid,
                        "lot": job.lot,
                        "station": dead,
                        "bundle_id": job.bundle_id,
                        "software_version": None,
                        "result": "interrupted",
                        "error_code": "interrupted",
                        "error": "claimed, no result recorded; settled from the chip's state",
                        "duration_us": max(0, int((now - as_utc(at)).total_seconds() * 1e6)),
                        "time": now,
                    }
                    for uid, at in rows
                ],
            )
            c.execute(
                sa.update(lot_chips)
                .where(_claimed_by(job, dead))
                .values(station=station, claimed_at=now)
            )
        return [Claim(uid, recovered=True) for uid, _ in rows]

    def release(self, job: JobRef, station: str, uids: Iterable[str]) -> None:
        """Claims given back unsettled (the line was stopped): the chips become ``pending``."""
        wanted = list(uids)
        if not wanted:
            return
        with self.transaction() as c:
            c.execute(
                sa.update(lot_chips)
                .where(_claimed_by(job, station), lot_chips.c.uid.in_(wanted))
                .values(state="pending", station=None, claimed_at=None)
            )

    def settle(
        self,
        job: JobRef,
        station: str,
        outcomes: Sequence[Outcome],
        software_version: str,
        *,
        claim: int = 0,
    ) -> list[Claim]:
        """Write the attempts and, for every chip this station still holds, its final record,
        in the transaction that marks it ``done`` (invariant 2); then claim up to ``claim``
        more chips in the same transaction (one commit per batch, not two)."""
        if not outcomes:
            return self.claim(job, station, claim) if claim else []
        uids = [o.uid.hex() for o in outcomes]
        with self.transaction() as c:
            held = set(
                c.execute(
                    sa.update(lot_chips)
                    .where(_claimed_by(job, station), lot_chips.c.uid.in_(uids))
                    .values(state="done")
                    .returning(lot_chips.c.uid)
                ).scalars()
            )
            rows = [
                {
                    "job_id": job.id,
                    "uid": o.uid.hex(),
                    "lot": job.lot,
                    "station": station,
                    "bundle_id": job.bundle_id,
                    "software_version": software_version,
                    "result": o.result,
                    "error_code": o.error_code,
                    "error": o.error,
                    "duration_us": o.duration_us,
                    "time": _utc(o.finished_at),
                }
                for o in outcomes
            ]
            c.execute(sa.insert(records), rows)
            if held:
                c.execute(
                    sa.insert(results),
                    [
                        {**r, "receipt": o.receipt}
                        for r, o in zip(rows, outcomes, strict=True)
                        if r["uid"] in held
                    ],
                )
            claimed = self._claim(c, job, station, claim) if claim else []
        if len(held) != len(uids):
            log.warning(
                "%d chips were no longer claimed by station %r: their attempts are logged, "
                "their final records are another station's",
                len(uids) - len(held),
                station,
            )
        return claimed

    # -- reading -----------------------------------------------------------------------------
    def results(self, lot: str) -> list[tuple[str, str, str | None]]:
        """(uid, result, error code) of every final record of ``lot``, by uid."""
        q = (
            sa.select(results.c.uid, results.c.result, results.c.error_code)
            .where(results.c.lot == lot)
            .order_by(results.c.job_id, results.c.uid)
        )
        with self.transaction() as c:
            return [(u, r, e) for u, r, e in c.execute(q)]

    def receipts(
        self, lot: str | None = None, *, batch: int = 10000
    ) -> Iterator[tuple[str, str, bytes]]:
        """(uid, lot, receipt) of every final record with a receipt (of ``lot`` only, if given),
        by job and UID, ``batch`` rows at a time: a million of them stream in constant memory."""
        q = sa.select(results.c.job_id, results.c.uid, results.c.lot, results.c.receipt).where(
            results.c.receipt.is_not(None)
        )
        if lot is not None:
            q = q.where(results.c.lot == lot)
        after: tuple[int, str] = (-1, "")
        while True:
            page = q.where(sa.tuple_(results.c.job_id, results.c.uid) > after)
            page = page.order_by(results.c.job_id, results.c.uid).limit(batch)
            with self.transaction() as c:
                rows = c.execute(page).all()
            for _, uid, lot_name, receipt in rows:
                yield uid, lot_name, bytes(receipt)
            if len(rows) < batch:
                return
            after = (rows[-1][0], rows[-1][1])

    def attempts(self, lot: str) -> list[tuple[str, str, str | None]]:
        """(uid, result, error code) of every attempt of ``lot``, oldest first."""
        q = (
            sa.select(records.c.uid, records.c.result, records.c.error_code)
            .where(records.c.lot == lot)
            .order_by(records.c.id)
        )
        with self.transaction() as c:
            return [(u, r, e) for u, r, e in c.execute(q)]


def _claimed_by(job: JobRef, station: str) -> sa.ColumnElement[bool]:
    """The chips of ``job`` that ``station`` holds claimed."""
    return sa.and_(
        lot_chips.c.job_id == job.id,
        lot_chips.c.state == "claimed",
        lot_chips.c.station == station,
    )


def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cur:
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.commit()


def _read_only_uri(path: Path) -> str:
    """``mode=ro``; and ``immutable`` where nothing can write (SQLite could not create the WAL's
    shared-memory file there) unless a WAL holds records not yet in the file: immutable would
    not read them, so SQLite is left to read the WAL (it can if its -shm file is there too)."""
    writable = os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)
    wal = path.with_name(path.name + "-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro" + (
        "" if writable or pending else "&immutable=1"
    )


def _sqlite_engine(url: URL, read_only_uri: str | None = None) -> Engine:
    if read_only_uri is None:
        engine = sa.create_engine(url, connect_args={"timeout": 60})
    else:
        uri = read_only_uri
        engine = sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False),
        )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy issues the BEGIN (below), not the driver; pragmas outside a transaction
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA synchronous=FULL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # take the write lock up front: a claim's SELECT and UPDATE see one state (a read-only
        # store takes none: it could not, and it only reads)
        conn.exec_driver_sql("BEGIN" if read_only_uri else "BEGIN IMMEDIATE")

    return engine
