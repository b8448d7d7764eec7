"""`GET /metrics` and `GET /api/lots`: the page's numbers for a factory's monitoring.

The exposition text is read back by a parser written from the format's description (Prometheus
text format 0.0.4), so a label value that would break the format (a station named with a quote,
a backslash, a line feed) is caught by the test, not by a scraper on the line.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from dashboard_support import BUNDLE, T0, Clock, settle, uid
from hypothesis import given
from hypothesis import strategies as st

from trustprov.dashboard.metrics import escape_label, lots_json, prometheus
from trustprov.dashboard.model import LineView, Snapshot
from trustprov.line.records import RecordStore
from trustprov.line.report import StationCounts, lot_report

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"\s*(,|$)')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name; fails on any line the format does not allow."""
    assert text.endswith("\n")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    helped: set[str] = set()
    typed: set[str] = set()
    for line in text[:-1].split("\n"):  # the format ends lines with \n alone
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"two HELP lines for {name}"
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind == "gauge"
            assert name not in typed
            typed.add(name)
            continue
        m = re.fullmatch(rf"({_NAME})(?:\{{(.*)\}})? (\S+)", line)
        assert m is not None, f"not a sample: {line!r}"
        name, inner, value = m.groups()
        assert name in typed, f"{name} sampled before its TYPE"
        labels: dict[str, str] = {}
        rest = inner or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm is not None, f"bad labels: {inner!r}"
            labels[lm.group(1)] = _unescape(lm.group(2))
            rest = rest[lm.end() :]
        samples.setdefault(name, []).append((labels, float(value)))
    assert helped == typed
    return samples


def _value(samples: dict[str, Any], name: str, **labels: str) -> float:
    found = [v for got, v in samples[name] if got == labels]
    assert len(found) == 1, (name, labels, samples.get(name))
    return float(found[0])


def _snapshot(url: str, clock: Clock, lot: str = "LOT-1", station: str = "st-1") -> Snapshot:
    with RecordStore(url, clock=clock) as w:
        job = w.open_job(lot, BUNDLE, [uid(i) for i in range(20)])
        settle(w, job, station, 8, at=T0 - 2, failed=["bad-chunk", "no-space"])
        w.claim(job, station, 3)
    with RecordStore(url, create=False, read_only=True) as r:
        return LineView(r, clock=clock).refresh()


def test_the_metrics_are_the_page_s_counts(store_url: str, clock: Clock) -> None:
    snap = _snapshot(store_url, clock)
    s = parse(prometheus(snap))
    lot = {"lot": "LOT-1"}
    assert _value(s, "trustprov_lot_chips", **lot) == 20
    assert _value(s, "trustprov_lot_good_chips", **lot) == 6
    assert _value(s, "trustprov_lot_failed_chips", **lot) == 2
    assert _value(s, "trustprov_lot_pending_chips", **lot) == 12
    assert _value(s, "trustprov_lot_in_progress_chips", **lot) == 3
    assert _value(s, "trustprov_lot_alarm", **lot) == 1
    assert _value(s, "trustprov_dashboard_alarms") == 1
    by = {**lot, "station": "st-1"}
    assert _value(s, "trustprov_lot_chips_by_outcome", **by, outcome="provisioned") == 6
    assert _value(s, "trustprov_lot_chips_by_outcome", **by, outcome="failed") == 2
    assert _value(s, "trustprov_lot_rate_chips_per_second", **lot) == pytest.approx(8 / 2)
    assert _value(s, "trustprov_lot_last_progress_timestamp_seconds", **lot) == T0 - 2
    assert _value(s, "trustprov_station_state", station="st-1", state="active") == 1
    assert _value(s, "trustprov_station_state", station="st-1", state="stopped") == 0
    assert _value(s, "trustprov_station_last_attempt_timestamp_seconds", station="st-1") == T0 - 2


def test_api_lots_is_the_page_s_counts(store_url: str, clock: Clock) -> None:
    snap = _snapshot(store_url, clock)
    doc = json.loads(json.dumps(lots_json(snap)))
    (lot,) = doc["lots"]
    with RecordStore(store_url, create=False, read_only=True) as r:
        report = lot_report(r, "LOT-1").to_json()
    for key in ("chips", "provisioned", "already_provisioned", "failed", "pending", "failures"):
        assert lot[key] == report[key], key
    assert (lot["good"], lot["active"]) == (6, True)
    assert lot["alarms"] == ["2 of 20 chips failed"]
    assert lot["outcomes"] == {"st-1": {"failed": 2, "provisioned": 6}}
    assert doc["alarms"] == [{"lot": "LOT-1", "why": ["2 of 20 chips failed"]}]
    assert doc["stations"][0]["status"] == "active"


HOSTILE = 'st"1\\n} 9\nfake_metric{a="b"} 1'


def test_a_hostile_name_cannot_forge_a_sample(store_url: str, clock: Clock) -> None:
    snap = _snapshot(store_url, clock, lot=HOSTILE, station=HOSTILE)
    text = prometheus(snap)
    s = parse(text)
    assert "fake_metric" not in s
    assert _value(s, "trustprov_lot_chips", lot=HOSTILE) == 20
    by = {"lot": HOSTILE, "station": HOSTILE, "outcome": "provisioned"}
    assert _value(s, "trustprov_lot_chips_by_outcome", **by) == 6


@given(st.text(max_size=40))
def test_escaped_label_values_read_back(value: str) -> None:
    line = f'm{{l="{escape_label(value)}"}} 1\n'
    assert "\n" not in line[:-1]
    samples = parse(f"# HELP m x\n# TYPE m gauge\n{line}")
    assert samples["m"] == [({"l": value}, 1.0)]


def test_every_outcome_but_the_good_ones_is_a_failure() -> None:
    """An outcome the line adds later (such as a bad receipt) needs no case anywhere: it is
    not good."""
    counts = StationCounts()
    for result, n in (("provisioned", 3), ("already-provisioned", 2), ("bad-receipt", 4)):
        counts.add(result, n)
    assert (counts.provisioned, counts.already_provisioned) == (3, 2)
    assert counts.failed + counts.bad_receipt == 4  # counted apart, and never as good
    counts.add("an-outcome-of-later", 1)
    assert (counts.provisioned, counts.already_provisioned) == (3, 2)
    assert counts.failed + counts.bad_receipt == 5
