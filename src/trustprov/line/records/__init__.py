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
  or ``failed``: no install, no receipt; for ``bad-receipt``, the receipt the station refused).
- ``records``: the attempt log, one row per attempt (and one ``interrupted`` row per claim that a
  dead station left behind); it is history, never consulted to decide anything.

Invariants, each kept by one transaction:

1. A chip is claimed by one station at a time: a claim moves ``pending -> claimed`` under a
   row lock (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``, one writer).
2. ``state = 'done'`` if and only if the chip has its final record: the record is written in the
   transaction that moves the chip from ``claimed`` (by this station) to ``done``.
3. A claim whose station is gone (its lease is free) is never guessed at: the chip goes back
   through FIG. 3, which asks the chip to attest first and settles a chip whose signed token
   shows the bundle as ``already-provisioned`` without touching it (`roles.cm.provision_chip`,
   verified by `roles.trust`).
4. A ``failed`` or ``bad-receipt`` final record stands until a later run of the job retries the
   chip; that run deletes it and makes the chip ``pending`` in one transaction (the attempt log
   keeps it).

A station holds a *lease* on its name while it runs: a session advisory lock on PostgreSQL (the
server drops it when the station's connection dies), an ``flock`` on a file beside a SQLite
store (the kernel drops it when the process dies). A free lease is what makes a claim stale.

One concern a module: `schema` (tables, URLs, the rows handed out), `engine` (connections and
SQLite's pragmas), `leases`, `store` (opening a store, jobs and their inventory), `claims` (the
claim and settle path, invariants 1-4) and `queries` (reading). Everything is imported from
here.
"""

from trustprov.line.records.engine import WAL_WAIT, _use_wal
from trustprov.line.records.schema import (
    FORMAT,
    LOT_MAX,
    STATION_MAX,
    Claim,
    JobRef,
    RecordsError,
    as_utc,
    check_no_password,
    jobs,
    lot_chips,
    meta,
    metadata,
    parse_url,
    records,
    redacted,
    results,
    sqlite_path,
)
from trustprov.line.records.store import RecordStore

__all__ = [
    "FORMAT",
    "LOT_MAX",
    "STATION_MAX",
    "WAL_WAIT",
    "Claim",
    "JobRef",
    "RecordStore",
    "RecordsError",
    "_use_wal",
    "as_utc",
    "check_no_password",
    "jobs",
    "lot_chips",
    "meta",
    "metadata",
    "parse_url",
    "records",
    "redacted",
    "results",
    "sqlite_path",
]
