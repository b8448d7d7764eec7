"""trustprov.line.records: what a batch's settlement stores reads back as written (SQLite writes
a batch's rows straight through the driver)."""

from __future__ import annotations

import datetime
from pathlib import Path

import sqlalchemy as sa

from trustprov.line.records import RecordStore, as_utc, records, results
from trustprov.roles.cm import Outcome


def test_a_settled_batch_reads_back_as_written(tmp_path: Path) -> None:
    uids = [bytes([i]) * 16 for i in range(3)]
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC).timestamp()
    outcomes = [
        Outcome(uids[0], "provisioned", None, None, 1234, at, b"\x00receipt"),
        Outcome(uids[1], "failed", "bad-chunk", "chunk 0 of 'app' fails", 56, at + 1),
        Outcome(uids[2], "already-provisioned", None, None, 7, at + 2),
    ]
    with RecordStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        job = store.open_job("LOT", "ab" * 16, sorted(u.hex() for u in uids))
        with store.lease("s"):
            assert len(store.claim(job, "s", 3)) == 3
            store.settle(job, "s", outcomes, "1.2.3")
        assert store.results("LOT") == [
            (uids[0].hex(), "provisioned", None),
            (uids[1].hex(), "failed", "bad-chunk"),
            (uids[2].hex(), "already-provisioned", None),
        ]
        assert list(store.receipts("LOT")) == [(uids[0].hex(), "LOT", b"\x00receipt")]
        with store.transaction() as c:
            final = c.execute(
                sa.select(results.c.time, results.c.duration_us, results.c.error).order_by(
                    results.c.uid
                )
            ).all()
            logged = c.execute(
                sa.select(records.c.time, records.c.software_version, records.c.station).order_by(
                    records.c.uid
                )
            ).all()
    for (time, duration, error), o in zip(final, outcomes, strict=True):
        assert as_utc(time).timestamp() == o.finished_at
        assert (duration, error) == (o.duration_us, o.error)
    for (time, version, station), o in zip(logged, outcomes, strict=True):
        assert as_utc(time).timestamp() == o.finished_at
        assert (version, station) == ("1.2.3", "s")
