"""The pages: every value from the records escaped; no inline script or style on the live page;
the report self-contained behind a CSP that allows its own style only."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from dashboard_support import BUNDLE, T0, Clock, settle, uid
from poison import CODE, STATION, raw_controls
from poison import LOT as POISONED_LOT

from trustprov.dashboard import charts
from trustprov.dashboard.model import LineView
from trustprov.dashboard.render import dashboard_page, report_page, static
from trustprov.dashboard.report import columns
from trustprov.line.records import RecordStore
from trustprov.line.report import find_job, lot_report


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def attributes(self) -> set[str]:
        return {a for _, attrs in self.tags for a in attrs}


HOSTILE = '<script>alert("x")</script>'
LOT = '"><img src=x onerror=alert(1)>'


def _hostile_store(url: str, clock: Clock) -> None:
    with RecordStore(url, clock=clock) as w:
        job = w.open_job(LOT, BUNDLE, [uid(i) for i in range(5)])
        settle(w, job, HOSTILE, 3, at=T0 - 1, failed=[HOSTILE])


def test_values_from_the_records_are_escaped(store_url: str, clock: Clock) -> None:
    _hostile_store(store_url, clock)
    with RecordStore(store_url, create=False, read_only=True) as r:
        snap = LineView(r, clock=clock).refresh()
        assert len(snap.failures) == 1
        page = dashboard_page(snap)
        report = report_page(lot_report(r), snap.failures, clock.now_dt())
    for html in (page, report):
        # error codes are shown, a chip's message never
        assert "chip&#x27;s message" not in html
        assert "chip's message" not in html
        assert HOSTILE not in html
        assert "&lt;script&gt;" in html
        tags = Tags(html)
        assert "img" not in {t for t, _ in tags.tags}
        assert not {a for a in tags.attributes() if a.startswith("on")}
        assert "style" not in tags.attributes()
    # the live page: scripts and styles only from /static
    tags = Tags(page)
    assert [a for t, a in tags.tags if t == "script"] == [
        {"src": "/static/dashboard.js", "defer": None}
    ]
    assert "style" not in {t for t, _ in tags.tags}


def test_the_report_is_self_contained(store_url: str, clock: Clock) -> None:
    _hostile_store(store_url, clock)
    with RecordStore(store_url, create=False, read_only=True) as r:
        html = report_page(lot_report(r), [], clock.now_dt())
    tags = Tags(html)
    assert {t for t, _ in tags.tags}.isdisjoint({"script", "link", "img", "iframe", "object"})
    assert not {"src", "href", "srcset", "action"} & tags.attributes()  # nothing to fetch
    assert "http://" not in html
    assert "https://" not in html
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert csp is not None
    assert csp.group(1).startswith("default-src 'none'; ")
    assert f"style-src 'sha256-{digest}'" in csp.group(1)
    assert style.group(1) == static("dashboard.css").decode()


def test_control_and_bidi_characters_from_the_records_are_shown_as_text(
    store_url: str, clock: Clock
) -> None:
    """A bidi override in a station name or error code would reorder what the supervisor
    reads; an escape sequence would reach a terminal that shows the file: both as text."""
    with RecordStore(store_url, clock=clock) as w:
        job = w.open_job(POISONED_LOT, BUNDLE, [uid(i) for i in range(5)])
        settle(w, job, STATION, 3, at=T0 - 1, failed=[CODE])
    with RecordStore(store_url, create=False, read_only=True) as r:
        snap = LineView(r, clock=clock).refresh()
        page = dashboard_page(snap)
        report = report_page(lot_report(r), snap.failures, clock.now_dt())
    for html in (page, report):
        assert not raw_controls(html)
        assert "LOT\\u202e\\x1b[2J" in html
        assert "st\\x1b[2J\\x1b[HFAKE-OK\\x0d\\x07" in html


def test_failed_chips_are_never_drawn_as_throughput(store_url: str, clock: Clock) -> None:
    """150 chips settled, all failed: the report's throughput chart stays at zero and the
    failures have a red chart of their own."""
    with RecordStore(store_url, clock=clock) as w:
        job = w.open_job("LOT-1", BUNDLE, [uid(i) for i in range(150)])
        settle(w, job, "st-1", 75, at=T0 - 30, failed=["bad-chunk"] * 75)
        settle(w, job, "st-1", 75, at=T0 - 10, failed=["bad-chunk"] * 75)
    with RecordStore(store_url, create=False, read_only=True) as r:
        report = lot_report(r)
        ref, _ = find_job(r, "LOT-1")
        cols = columns(r, ref)
        html = report_page(report, [], clock.now_dt(), cols)
    assert sum(c.good for c in cols) == 0
    assert sum(c.failed for c in cols) == 150
    good, failed = html.split("Good chips per second", 1)[1].split("Failed chips per second", 1)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)" fill="#', good)]
    assert heights
    assert max(heights) == 0.0
    assert f'fill="{charts.BAD}"' in failed
    assert "150 / 150" not in html
    assert "100.0 %" not in html
