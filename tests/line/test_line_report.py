"""The yield of a lot report: of the chips done, never of the lot, with the pending share beside
it, the same in `cm report`, its JSON and the dashboard."""

from __future__ import annotations

from trustprov.dashboard.render import lot_section
from trustprov.line.report import LotReport, StationCounts


def _report(provisioned: int, failed: int, pending: int) -> LotReport:
    chips = provisioned + failed + pending
    return LotReport(
        "LOT", "ab" * 16, chips, pending=pending, total=StationCounts(provisioned, 0, failed)
    )


def test_a_lot_mostly_pending_has_no_unqualified_100_percent() -> None:
    r = _report(provisioned=100, failed=0, pending=900)
    assert (
        r.yield_line()
        == "yield 100.0 % of the 100 chips done (100 good); 90.0 % of the lot pending"
    )
    doc = r.to_json()
    assert (doc["yield_percent"], doc["done"], doc["pending_percent"]) == (100.0, 100, 90.0)


def test_yield_counts_failures_of_the_chips_done() -> None:
    r = _report(provisioned=3, failed=1, pending=0)
    assert r.yield_line() == "yield 75.0 % of the 4 chips done (3 good)"
    assert r.pending_percent == 0.0


def test_no_chip_done_has_no_yield() -> None:
    r = _report(provisioned=0, failed=0, pending=10)
    assert r.yield_percent is None
    assert r.yield_line() == "yield -: no chip done yet, 10 of 10 pending"


def test_the_dashboard_shows_the_same_figures() -> None:
    html = lot_section(_report(provisioned=100, failed=0, pending=900))
    assert "yield of the chips done" in html
    assert '<td data-count="yield_percent">100.0 %</td>' in html
    assert '<td data-share="pending">90.0 %</td>' in html
