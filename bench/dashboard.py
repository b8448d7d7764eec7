"""The dashboard's cost of one refresh against a synthetic lot of a million chips.

A SQLite records store is filled directly (no chips: the dashboard reads only the records) with
one lot of ``--chips`` chips settled by ``--stations`` stations over the last hour, 1 % failed,
``--pending`` chips not yet settled (some of them claimed), and one attempt per settled chip in
the log. Then, each the median of ``--runs``:

- ``first``: a new dashboard's first refresh (counts, and the window of the log it reads);
- ``idle``: a refresh when nothing was logged since (the tail query alone);
- ``moving``: a refresh after a station settled ``--batch`` more chips (the log's new range;
  the counts are re-read at most every 10 times their cost, so not every time at this size);
- ``counts``: the counts alone (`lot_counts` and the claims and latest failures);
- ``report``: `cm report --json`'s `lot_report`, for comparison (its throughput scans all).

    python bench/dashboard.py [--chips 1000000] [--stations 12] [--runs 5]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from trustprov.dashboard.model import LineView
from trustprov.line.records import RecordStore
from trustprov.line.report import lot_report

BUNDLE = "ab" * 16
COLS = (
    "job_id, uid, lot, station, bundle_id, software_version, result, error_code, duration_us, time"
)
VALS = f"1, ?, 'LOT-M', ?, '{BUNDLE}', '1', ?, ?, 1500, ?"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(path: Path, chips: int, stations: int, pending: int, now: float) -> None:
    RecordStore(f"sqlite:///{path}").close()  # the schema, indexes included
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "INSERT INTO jobs (id, lot, bundle_id, chips, created) VALUES (1, 'LOT-M', ?, ?, ?)",
        (BUNDLE, chips, _iso(now - 3600)),
    )
    settled = chips - pending
    step = 3600 / settled
    chip_rows, result_rows, record_rows = [], [], []
    for i in range(chips):
        uid = f"{i:032x}"
        station = f"station-{i % stations:02d}"
        if i >= settled:
            claimed = i < settled + 50
            chip_rows.append(
                (uid, "claimed" if claimed else "pending", station if claimed else None)
            )
            continue
        chip_rows.append((uid, "done", station))
        failed = i % 100 == 0
        at = _iso(now - 3600 + i * step)
        row = (
            uid,
            station,
            "failed" if failed else "provisioned",
            f"cause-{i % 7}" if failed else None,
            at,
        )
        result_rows.append(row)
        record_rows.append(row)
    db.executemany(
        "INSERT INTO lot_chips (job_id, uid, state, station) VALUES (1, ?, ?, ?)", chip_rows
    )
    db.executemany(f"INSERT INTO results ({COLS}) VALUES ({VALS})", result_rows)  # noqa: S608 - constants
    db.executemany(f"INSERT INTO records ({COLS}) VALUES ({VALS})", record_rows)  # noqa: S608 - constants
    db.commit()
    db.execute("ANALYZE")
    db.close()


def settle_more(path: Path, start: int, n: int, now: float) -> None:
    """``n`` more chips settled now, as a station writes them (final record and attempt)."""
    db = sqlite3.connect(path)
    rows = [
        (f"{i:032x}", "station-00", "provisioned", None, _iso(now)) for i in range(start, start + n)
    ]
    db.executemany(
        "UPDATE lot_chips SET state = 'done', station = 'station-00' WHERE job_id = 1 AND uid = ?",
        [(r[0],) for r in rows],
    )
    db.executemany(f"INSERT INTO results ({COLS}) VALUES ({VALS})", rows)  # noqa: S608 - constants
    db.executemany(f"INSERT INTO records ({COLS}) VALUES ({VALS})", rows)  # noqa: S608 - constants
    db.commit()
    db.close()


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--chips", type=int, default=1_000_000)
    p.add_argument("--stations", type=int, default=12)
    p.add_argument("--pending", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.sqlite"
        now = time.time()
        t = time.perf_counter()
        fill(path, a.chips, a.stations, a.pending, now)
        print(f"filled {a.chips} chips in {time.perf_counter() - t:.1f} s")
        url = f"sqlite:///{path}"
        out: dict[str, float] = {}
        with RecordStore(url, create=False, read_only=True) as store:
            firsts, idles, movings, counts, reports = [], [], [], [], []
            next_uid = a.chips - a.pending + 50  # past the claimed ones
            for _ in range(a.runs):
                view = LineView(store)
                firsts.append(timed(view.refresh))
                idles.append(timed(view.refresh))
                settle_more(path, next_uid, a.batch, time.time())
                next_uid += a.batch
                movings.append(timed(view.refresh))
                counts.append(timed(view._count))  # the counts alone
                reports.append(timed(lambda: lot_report(store)))
            lot = LineView(store).refresh().lots[0].report
            assert lot.chips == a.chips
            assert lot.total.chips == a.chips - a.pending + a.batch * a.runs
        for name, values in (
            ("first", firsts),
            ("idle", idles),
            ("moving", movings),
            ("counts", counts),
            ("report", reports),
        ):
            out[f"{name}_ms"] = round(statistics.median(values), 1)
            print(f"{name:>7}: {out[f'{name}_ms']:8.1f} ms")
        print(json.dumps({"chips": a.chips, "stations": a.stations, **out}))


if __name__ == "__main__":
    main()
