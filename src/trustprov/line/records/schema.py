"""The records store's tables (docs/protocol.md section 9), its URLs and the rows it hands out.

Invariants: `FORMAT` names this layout, and a store of any other format is refused, never
migrated in place; every time is stored in UTC (SQLite keeps no zone: `as_utc` restores it).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

from trustprov.errors import InputError, TrustprovError

# 3: a final record keeps the chip's receipt; a store of format 2 is refused as not this format
# (its final records have no receipts to give: provision into a new store). 4: the result
# "bad-receipt" (its CHECK constraints would refuse it in a store of format 3)
FORMAT = "trustprov-records-4"
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
        "result IN ('provisioned', 'already-provisioned', 'failed', 'bad-receipt')",
        name="results_result",
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
        "result IN ('provisioned', 'already-provisioned', 'failed', 'bad-receipt', 'interrupted')",
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
        raise InputError(f"records URL {redacted(parsed)!r} is not sqlite:///PATH")
    return Path(parsed.database)


#: libpq connection parameters that carry a secret (``?password=`` works as well as USER:PASSWORD@)
_SECRET_PARAMS = frozenset({"password", "sslpassword"})
_HINT = "use sqlite:///PATH or postgresql://USER@HOST/DATABASE"


def parse_url(text: str | URL) -> URL:
    """``sqlite:///PATH`` or PostgreSQL through psycopg 3 (``postgresql://`` means psycopg)."""
    try:
        url = make_url(text)
    except (exc.ArgumentError, ValueError) as e:
        raise InputError(f"records URL is not a database URL; {_HINT}") from e
    shown = redacted(url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise InputError(f"records URL {shown!r} names no file; {_HINT}")
        if url.host or url.port or url.username or url.password:
            raise InputError(
                f"records URL {shown!r} names a host; SQLite is a local file: sqlite:///PATH "
                "(three slashes; four for an absolute path)"
            )
        return url.set(drivername="sqlite")
    raise InputError(f"records URL {shown!r}: unsupported database; {_HINT}")


def redacted(url: URL) -> str:
    """``url`` as it may be shown (errors, the summary, the dashboard): its password as ``***``,
    any secret parameter of its query as ``redacted``."""
    query = {k: ("redacted" if k in _SECRET_PARAMS else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)


def carries_secret(url: URL) -> bool:
    """Whether ``url`` holds a password (``USER:PASSWORD@`` or ``?password=``)."""
    return url.password is not None or bool(_SECRET_PARAMS & set(url.query))


def check_no_password(text: str) -> None:
    """Refuse a records URL that carries a password: given on a command line, it is readable by
    every user of the machine (``ps``, ``/proc/PID/cmdline``) for as long as the command runs,
    and stays in shell histories (docs/protocol.md section 9, "No password in the URL"). The
    password comes from PostgreSQL's own places instead, which libpq reads when the URL has
    none, or from a password file."""
    if carries_secret(parse_url(text)):
        raise InputError(
            "--records: the URL carries a password, which every user of this machine can read "
            "in 'ps' while the command runs; remove it and give the password with "
            "--records-password-file FILE, PGPASSWORD, ~/.pgpass (PGPASSFILE) or a service "
            "file (PGSERVICE)"
        )


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else "no message from the database driver"


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """A time read back from the store (SQLite keeps no zone: it is always UTC there)."""
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value


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


def _claimed_by(job: JobRef, station: str) -> sa.ColumnElement[bool]:
    """The chips of ``job`` that ``station`` holds claimed."""
    return sa.and_(
        lot_chips.c.job_id == job.id,
        lot_chips.c.state == "claimed",
        lot_chips.c.station == station,
    )
