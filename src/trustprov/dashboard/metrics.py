"""The line for a factory's monitoring: `GET /metrics` (Prometheus) and `GET /api/lots` (JSON).

Invariants:

1. The numbers are the page's: both render one `Snapshot`, the counts of `cm report` (model.py,
   invariant 1), so a scraper, a script and a person read the same line.
2. The text is the Prometheus text exposition format 0.0.4: one ``# HELP`` and ``# TYPE`` per
   metric family, every label value escaped as the format requires (backslash, double quote and
   line feed), so that a station or lot name (not ours to trust) cannot forge a sample or a
   label; timestamps in seconds since the epoch.
3. Chips by final outcome as recorded, per lot and station: a new outcome of the line appears
   under its own name without a change here; ``good`` is ``GOOD_OUTCOMES`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustprov.dashboard.model import LotView, Snapshot, StationView
from trustprov.line.report import GOOD_OUTCOMES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATION_STATES = ("active", "idle", "stopped")


def escape_label(value: str) -> str:
    """A label value as the exposition format writes it between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class _Families:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: list[tuple[str, float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines.extend(f"{name}{labels} {_number(v)}" for labels, v in samples)


def prometheus(snap: Snapshot) -> str:
    """The snapshot in the text exposition format (invariant 2)."""
    out = _Families()
    lots = snap.lots
    out.family(
        "trustprov_lot_chips_by_outcome",
        "gauge",
        "Chips of a lot with a final record, by station and outcome as recorded.",
        [
            (_labels(lot=v.report.lot, station=station, outcome=outcome), n)
            for v in lots
            for station, outcomes in sorted(v.report.outcomes.items())
            for outcome, n in sorted(outcomes.items())
        ],
    )
    per_lot: list[tuple[str, str, Callable[[LotView], float]]] = [
        ("trustprov_lot_chips", "Chips in the lot.", lambda v: v.report.chips),
        (
            "trustprov_lot_good_chips",
            "Chips holding the bundle (provisioned or already provisioned).",
            lambda v: v.report.good,
        ),
        (
            "trustprov_lot_failed_chips",
            "Chips whose final outcome is not good.",
            lambda v: v.report.total.failed,
        ),
        (
            "trustprov_lot_pending_chips",
            "Chips without a final record yet.",
            lambda v: v.report.pending,
        ),
        (
            "trustprov_lot_in_progress_chips",
            "Chips claimed by a station now.",
            lambda v: v.report.in_progress,
        ),
        (
            "trustprov_lot_rate_chips_per_second",
            "Chips settled per second over the recent window.",
            lambda v: round(v.rate, 3),
        ),
        (
            "trustprov_lot_alarm",
            "1 when the lot needs a person (failures, a stopped station, no progress), else 0.",
            lambda v: 1 if v.alarms else 0,
        ),
    ]
    for name, help_text, get in per_lot:
        out.family(name, "gauge", help_text, [(_labels(lot=v.report.lot), get(v)) for v in lots])
    out.family(
        "trustprov_lot_last_progress_timestamp_seconds",
        "gauge",
        "When the lot's latest chip was settled (lots seen settling since the dashboard began).",
        [
            (_labels(lot=v.report.lot), v.last_progress.timestamp())
            for v in lots
            if v.last_progress is not None
        ],
    )
    out.family(
        "trustprov_station_state",
        "gauge",
        "1 for the station's state (active, idle, or stopped: silent with work left), else 0.",
        [
            (_labels(station=s.name, state=state), 1 if s.status == state else 0)
            for s in snap.stations
            for state in STATION_STATES
        ],
    )
    out.family(
        "trustprov_station_last_attempt_timestamp_seconds",
        "gauge",
        "When the station's latest attempt was logged (within the dashboard's window).",
        [
            (_labels(station=s.name), s.last_seen.timestamp())
            for s in snap.stations
            if s.last_seen is not None
        ],
    )
    out.family(
        "trustprov_dashboard_alarms",
        "gauge",
        "Lots that need a person.",
        [("", len(snap.alarms))],
    )
    return "\n".join(out.lines) + "\n"


def _lot_json(v: LotView) -> dict[str, Any]:
    doc = v.report.to_json()
    doc.pop("throughput", None)  # the live counts carry none: `cm report --json` has it
    return {
        **doc,
        "good": v.report.good,
        "active": v.active,
        "rate_chips_per_s": round(v.rate, 3),
        "eta_s": None if v.eta_s is None else round(v.eta_s, 1),
        "last_progress": None if v.last_progress is None else v.last_progress.isoformat(),
        "alarms": list(v.alarms),
        "outcomes": {s: dict(sorted(o.items())) for s, o in sorted(v.report.outcomes.items())},
    }


def _station_json(s: StationView) -> dict[str, Any]:
    return {
        "name": s.name,
        "status": s.status,
        "in_progress": s.in_progress,
        "last_attempt": None if s.last_seen is None else s.last_seen.isoformat(),
    }


def lots_json(snap: Snapshot) -> dict[str, Any]:
    """`GET /api/lots`: the lots in the page's order (active first), the stations, the alarms."""
    return {
        "generated": snap.generated.isoformat(),
        "good_outcomes": list(GOOD_OUTCOMES),
        "alarms": [{"lot": lot, "why": why} for lot, why in snap.alarms],
        "lots": [_lot_json(v) for v in snap.lots],
        "stations": [_station_json(s) for s in snap.stations],
    }
