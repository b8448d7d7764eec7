"""Connections to a records store: SQLite's pragmas and WAL switch, read-only opening.

Invariants: a writer takes SQLite's write lock when its transaction begins (BEGIN IMMEDIATE), so a
claim's read and its update see one state; every commit is durable (synchronous=FULL); a reader
(a report, the dashboard) opens the file read-only and can write nothing, not even by a bug.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

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


def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cur:
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.commit()


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
