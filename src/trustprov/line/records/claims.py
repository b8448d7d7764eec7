"""The claim and settle path of the records store: invariants 1-4 of `line.records`, each
kept by one transaction. A chip is claimed by one station at a time; it is ``done`` exactly when
its final record is written, in that same transaction; a dead station's claims are settled from
the chips, never guessed at; a failed chip is retried by a later run of its job.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trustprov.line.records.leases import _Leases
from trustprov.line.records.schema import (
    Claim,
    JobRef,
    _claimed_by,
    _utc,
    as_utc,
    lot_chips,
    records,
    results,
)

if TYPE_CHECKING:  # annotations only: reading records needs no CM role (start-up)
    from trustprov.roles.cm import Outcome

log = logging.getLogger("trustprov.line.records")
RETRIED = ("failed", "bad-receipt")  # final results a rerun tries again


class RecordClaims:
    """The claiming half of `RecordStore`."""

    _cursor: dict[int, str]  # job id -> the last uid claimed
    dialect: str  # "sqlite" or "postgresql"
    # (table, columns) -> the INSERT of such rows on SQLite, and each column's bind processor
    _row_inserts: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[Any, ...]]]
    _statements: dict[tuple[object, ...], Any]  # see `_statement`

    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError  # the store's own

    def _now(self) -> datetime.datetime:
        raise NotImplementedError  # the store's own

    def _lease_table(self) -> _Leases:
        raise NotImplementedError  # the store's own

    def retry_failed(self, job: JobRef) -> int:
        """Chips whose final record is ``failed`` or ``bad-receipt`` go back to ``pending``
        (invariant 4; the attempt log keeps their records)."""
        again = results.c.result.in_(RETRIED)
        failed = sa.select(results.c.uid).where(results.c.job_id == job.id, again)
        with self.transaction() as c:
            n = c.execute(
                sa.update(lot_chips)
                .where(lot_chips.c.job_id == job.id, lot_chips.c.uid.in_(failed))
                .values(state="pending", station=None, claimed_at=None)
            ).rowcount
            c.execute(sa.delete(results).where(results.c.job_id == job.id, again))
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
        uids = c.execute(
            self._statement(("claim", job.id, station, n), lambda: _claim(job, station, n)),
            {"after": after, "now": self._now()},
        ).scalars()
        return sorted(uids)

    def _statement(self, key: tuple[object, ...], build: Callable[[], Any]) -> Any:
        """The statement of ``key``, built once: building one costs a batch more than
        running it (SQLAlchemy caches the compiled SQL, not the Python expression)."""
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = self._statements[key] = build()
        return stmt

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
            done = self._statement(("done", job.id, station), lambda: _mark_done(job, station))
            held = set(c.execute(done, {"uids": uids}).scalars())
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
            self._insert_rows(c, records, rows)
            if held:
                self._insert_rows(
                    c,
                    results,
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

    def _insert_rows(self, c: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """INSERT ``rows`` (each with the same keys) into ``table``. On SQLite they go to the
        driver in one executemany: SQLAlchemy's per-row parameter processing is most of a
        batch's cost there. Each value a column type converts (a time) is converted by that
        type's own bind processor, so the stored values are the ones SQLAlchemy would store."""
        if self.dialect != "sqlite":
            c.execute(sa.insert(table), rows)
            return
        names = tuple(rows[0])
        key = (table.name, names)
        if key not in self._row_inserts:
            processors = tuple(
                table.c[n].type.dialect_impl(c.dialect).bind_processor(c.dialect) for n in names
            )
            columns, marks = ", ".join(names), ", ".join("?" * len(names))
            sql = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"  # noqa: S608 - our own names
            self._row_inserts[key] = (sql, processors)
        sql, processors = self._row_inserts[key]
        convert = [(i, p) for i, p in enumerate(processors) if p is not None]
        params = []
        for r in rows:
            values = [r[n] for n in names]
            for i, p in convert:
                values[i] = p(values[i])
            params.append(tuple(values))
        c.exec_driver_sql(sql, params)


def _claim(job: JobRef, station: str, n: int) -> Any:
    """UPDATE claiming up to ``n`` pending chips of ``job`` for ``station``, from the uid after
    :after on, at time :now; RETURNING their uids."""
    # a CTE, evaluated once: as an IN (subquery), PostgreSQL may run the locking subquery
    # again per row and claim more than n
    pending = (
        sa.select(lot_chips.c.uid)
        .where(
            lot_chips.c.job_id == job.id,
            lot_chips.c.state == "pending",
            lot_chips.c.uid > sa.bindparam("after", type_=lot_chips.c.uid.type),
        )
        .order_by(lot_chips.c.uid)
        .limit(n)
        .with_for_update(skip_locked=True)  # nothing on SQLite: one writer anyway
        .cte("claimable")
    )
    # no second "state = 'pending'" here: the CTE's rows are pending and locked (PostgreSQL
    # re-checks the condition when it locks), and the planner would drive the join from the
    # state index, scanning every pending chip of the lot per claim
    return (
        sa.update(lot_chips)
        .where(lot_chips.c.job_id == job.id, lot_chips.c.uid == pending.c.uid)
        .values(
            state="claimed",
            station=station,
            claimed_at=sa.bindparam("now", type_=lot_chips.c.claimed_at.type),
        )
        .returning(lot_chips.c.uid)
    )


def _mark_done(job: JobRef, station: str) -> Any:
    """UPDATE marking ``done`` the chips of :uids that ``station`` holds; RETURNING them."""
    return (
        sa.update(lot_chips)
        .where(
            _claimed_by(job, station),
            lot_chips.c.uid.in_(sa.bindparam("uids", expanding=True)),
        )
        .values(state="done")
        .returning(lot_chips.c.uid)
    )
