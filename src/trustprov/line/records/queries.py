"""What the records say: the jobs, the chips by state, the final records, the receipts and the
attempts of a lot. Reading only: every query runs in a transaction of its own and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trustprov.line.records.schema import JobRef, jobs, lot_chips, records, results


class RecordQueries:
    """The reading half of `RecordStore`."""

    def transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError  # the store's own

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
        """(uid, lot, receipt) of every ``provisioned`` final record with a receipt (of ``lot``
        only, if given), by job and UID, ``batch`` rows at a time: a million of them stream in
        constant memory. A ``bad-receipt`` record keeps the receipt the station refused, as
        evidence; it is never given out as the chip's."""
        q = sa.select(results.c.job_id, results.c.uid, results.c.lot, results.c.receipt).where(
            results.c.receipt.is_not(None), results.c.result == "provisioned"
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
