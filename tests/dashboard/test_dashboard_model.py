"""The dashboard's reader: the report's counts, read incrementally; stations; ETA; the window."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from dashboard_support import BUNDLE, T0, Clock, settle, uid

from trustprov.dashboard.model import BIN, STALL, LineView, _first_id_since
from trustprov.dashboard.render import dashboard_page
from trustprov.line.records import RecordStore, records
from trustprov.line.report import lot_report


def _counts(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "throughput"}


def _store(url: str, clock: Clock) -> RecordStore:
    return RecordStore(url, clock=clock)


def test_the_counts_are_the_reports(store_url: str, clock: Clock) -> None:
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(50)])
        settle(w, job, "st-1", 20, at=T0 - 5, failed=["bad-chunk", "bad-chunk", "stale-epoch"])
        settle(w, job, "st-2", 10, at=T0 - 3)
        w.claim(job, "st-2", 4)  # in progress
        other = w.open_job("LOT-2", BUNDLE, [uid(1000 + i) for i in range(7)])
        settle(w, other, "st-3", 7, at=T0 - 1, failed=["no-space"])
    with RecordStore(store_url, create=False, read_only=True) as r:
        snap = LineView(r, clock=clock).refresh()
        assert [v.report.lot for v in snap.lots] == ["LOT-1", "LOT-2"]
        for view in snap.lots:
            assert _counts(view.report.to_json()) == _counts(
                lot_report(r, view.report.lot).to_json()
            )
        lot1 = snap.lots[0].report
        assert (lot1.total.provisioned, lot1.total.failed, lot1.pending, lot1.in_progress) == (
            27,
            3,
            20,
            4,
        )
        assert lot1.failures == {"bad-chunk": 2, "stale-epoch": 1}
        assert [f.code for f in snap.failures].count("bad-chunk") == 2
        assert {f.lot for f in snap.failures} == {"LOT-1", "LOT-2"}
        assert {s.name: s.in_progress for s in snap.stations} == {"st-1": 0, "st-2": 4, "st-3": 0}


def test_a_refresh_reads_only_the_log_past_its_cursor(store_url: str, clock: Clock) -> None:
    """Nothing new: one primary-key range of the attempt log and no count; something new: the
    range starts after the last id read, and the counts follow."""
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(30)])
        settle(w, job, "st-1", 10, at=T0 - 2)
        with RecordStore(store_url, create=False, read_only=True) as r:
            seen: list[tuple[str, Any]] = []
            sa.event.listen(
                r._engine,
                "before_cursor_execute",
                lambda _c, _cur, sql, params, _ctx, _many: seen.append((sql, params)),
            )
            view = LineView(r, clock=clock)
            assert view.refresh().lots[0].report.total.provisioned == 10
            seen.clear()
            clock.now += 1
            view.refresh()
            # one statement: the newest id of the log (the end of its primary key)
            assert [s for s, _ in seen if "BEGIN" not in s] == [
                "SELECT max(records.id) AS max_1 \nFROM records"
            ]
            settle(w, job, "st-1", 5, at=T0)
            seen.clear()
            clock.now += 1
            assert view.refresh().lots[0].report.total.provisioned == 15
            ranges = [p for s, p in seen if "WHERE records.id >" in s]
            assert len(ranges) == 1
            assert tuple(ranges[0])[1:3] == (10, 15)  # (10, 15]: the five new attempts only
            assert any("lot_chips" in s for s, _ in seen)


def test_rate_eta_and_a_station_that_stopped_reporting(store_url: str, clock: Clock) -> None:
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(100)])
        settle(w, job, "st-1", 30, at=T0 - 50)
        settle(w, job, "st-2", 30, at=T0 - 5)
        w.claim(job, "st-1", 2)
        with RecordStore(store_url, create=False, read_only=True) as r:
            snap = LineView(r, clock=clock, stale=30).refresh()
            lot = snap.lots[0]
            # 60 chips since the lot's first chip in the window, 50 s ago
            assert lot.rate == pytest.approx(60 / 50)
            assert lot.eta_s == pytest.approx(40 / (60 / 50))  # 40 chips left
            status = {s.name: s.status for s in snap.stations}
            assert status == {"st-1": "stopped", "st-2": "active"}
            # both go quiet with the lot finished: idle, not stopped
            w.release(job, "st-1", [uid(i) for i in range(100)])
            settle(w, job, "st-2", 40, at=T0)
            settle(w, job, "st-2", 40, at=T0)  # the two given back lie behind the cursor
            clock.now += 120
            snap = LineView(r, clock=clock, stale=30).refresh()
            assert {s.name: s.status for s in snap.stations} == {"st-1": "idle", "st-2": "idle"}
            assert snap.lots[0].eta_s is None
            assert snap.lots[0].report.pending == 0


def test_the_chart_covers_the_window_only(store_url: str, clock: Clock) -> None:
    """A dashboard started beside a long log reads only its window of it (a binary search on
    the ids), and its memory holds the window only."""
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(200)])
        for k in range(10):  # ten batches, an hour apart: the first nine before the window
            settle(w, job, "st-1", 20, at=T0 - (9 - k) * 3600 - 30)
        with RecordStore(store_url, create=False, read_only=True) as r:
            with r.transaction() as c:
                assert _first_id_since(c, _dt(T0 - 900)) == 181
                assert _first_id_since(c, _dt(T0 + 10)) == 201
                assert _first_id_since(c, _dt(0)) == 1
                n = c.execute(sa.select(sa.func.count()).select_from(records)).scalar_one()
            assert n == 200
            view = LineView(r, clock=clock, window=900)
            snap = view.refresh()
            assert sum(snap.series["st-1"]) * BIN == 20
            assert snap.lots[0].report.total.provisioned == 200  # the counts are the lot's
            clock.now += 2000  # past the window: nothing left in memory
            view.refresh()
            assert all(not v for v in view._per_station.values())


def _dt(ts: float) -> Any:
    import datetime  # noqa: PLC0415 - local to the helper

    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


# -- never flattering (issue 24, item 5) -------------------------------------------------------
def test_a_lot_whose_chips_all_failed_is_no_progress(store_url: str, clock: Clock) -> None:
    """150 chips, all failed: not a full bar, not "150 / 150 (100.0 %)", not "ETA done"."""
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(150)])
        settle(w, job, "st-1", 150, at=T0 - 2, failed=["bad-chunk"] * 150)
    with RecordStore(store_url, create=False, read_only=True) as r:
        snap = LineView(r, clock=clock).refresh()
    lot = snap.lots[0]
    assert lot.report.good == 0
    assert lot.alarms == ["150 of 150 chips failed"]
    assert snap.alarms == [("LOT-1", ["150 of 150 chips failed"])]
    page = dashboard_page(snap)
    assert '<strong data-headline="good">0</strong> of 150 chips good (0.0 %)' in page
    assert '<span class="failed" data-headline="failed">150 failed</span>' in page
    assert "finished, 150 chips failed" in page
    assert "150 / 150" not in page
    assert "100.0 %" not in page
    assert ">done<" not in page
    # the alarm comes before the lot
    assert page.index('class="alarms"') < page.index('data-lot="LOT-1"')


def test_the_rate_of_a_lot_that_just_started(store_url: str, clock: Clock) -> None:
    """A station at 27 chips/s for 7 s shows 27 chips/s, not 27 * 7 / 60 = 3.2."""
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(1000)])
        for k in range(7):
            settle(w, job, "st-1", 27, at=T0 - 7 + k)
    with RecordStore(store_url, create=False, read_only=True) as r:
        lot = LineView(r, clock=clock).refresh().lots[0]
    assert lot.rate == pytest.approx(27.0)
    assert lot.eta_s == pytest.approx((1000 - 189) / 27.0)
    assert lot.alarms == []


def test_a_stalled_lot_and_a_stopped_station_raise_a_lot_alarm(
    store_url: str, clock: Clock
) -> None:
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(50)])
        settle(w, job, "st-1", 10, at=T0 - STALL - 40)
        w.claim(job, "st-1", 3)  # and then nothing: the station died holding them
    with RecordStore(store_url, create=False, read_only=True) as r:
        view = LineView(r, clock=clock)
        lot = view.refresh().lots[0]
        assert lot.alarms == [
            "station st-1 stopped reporting",
            "no chip settled for 1 min 40 s, 40 pending",
        ]
        assert lot.eta_s is None  # no progress in the recent window: no promise either
        assert lot.rate == 0.0


def test_a_healthy_lot_has_no_alarm(store_url: str, clock: Clock) -> None:
    with _store(store_url, clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(50)])
        settle(w, job, "st-1", 10, at=T0 - 3)
    with RecordStore(store_url, create=False, read_only=True) as r:
        snap = LineView(r, clock=clock).refresh()
    assert snap.lots[0].alarms == []
    assert snap.alarms == []
    assert 'data-alarms="0"' in dashboard_page(snap)


def test_active_lots_come_first(store_url: str, clock: Clock) -> None:
    with _store(store_url, clock) as w:
        done = w.open_job("LOT-A", BUNDLE, [uid(i) for i in range(5)])
        settle(w, done, "st-1", 5, at=T0 - 1)
        slow = w.open_job("LOT-B", BUNDLE, [uid(100 + i) for i in range(50)])
        settle(w, slow, "st-2", 5, at=T0 - 30)
        busy = w.open_job("LOT-C", BUNDLE, [uid(200 + i) for i in range(50)])
        settle(w, busy, "st-3", 5, at=T0 - 2)
    with RecordStore(store_url, create=False, read_only=True) as r:
        snap = LineView(r, clock=clock).refresh()
    # active ones first, the latest to move first; the finished lot last
    assert [v.report.lot for v in snap.lots] == ["LOT-C", "LOT-B", "LOT-A"]
    assert [v.active for v in snap.lots] == [True, True, False]
