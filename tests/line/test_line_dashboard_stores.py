"""The dashboard's reader on both stores (SQLite and PostgreSQL): the report's counts, the
chart's seconds as the database computes them, and a session that cannot write."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from trustprov.dashboard.model import BIN, LineView
from trustprov.line.records import RecordsError, RecordStore, meta
from trustprov.line.report import lot_report
from trustprov.roles.cm import Outcome


def test_the_dashboard_reads_either_store(records_url: str) -> None:
    now = time.time()
    with RecordStore(records_url) as w:
        job = w.open_job("LOT-D", "cd" * 16, [f"{i:032x}" for i in range(40)])
        claims = w.claim(job, "st-1", 30)
        at = (int(now) // BIN - 3) * BIN + 1.5  # in a whole bin, three bins ago
        w.settle(
            job,
            "st-1",
            [
                Outcome(
                    bytes.fromhex(c.uid),
                    "failed" if i < 2 else "provisioned",
                    "bad-chunk" if i < 2 else None,
                    None,
                    900,
                    at,
                )
                for i, c in enumerate(claims)
            ],
            "1",
        )
        w.claim(job, "st-2", 3)
        with RecordStore(records_url, create=False, read_only=True) as r:
            snap = LineView(r, clock=lambda: now).refresh()
            (lot,) = snap.lots
            expected = lot_report(r, "LOT-D").to_json()
            got = lot.report.to_json()
            for key in ("provisioned", "failed", "pending", "in_progress", "failures", "stations"):
                assert got[key] == expected[key], key
            assert (got["provisioned"], got["failed"], got["in_progress"]) == (28, 2, 3)
            series = snap.series["st-1"]
            assert sum(series) * BIN == 30
            assert series[-3] * BIN == 30  # the second the database computed is the right one
            with pytest.raises(RecordsError), r.transaction() as c:
                c.execute(sa.insert(meta).values(key="x", value="y"))
