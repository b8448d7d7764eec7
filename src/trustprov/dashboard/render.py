"""HTML of the live dashboard and of the self-contained audit report of a lot.

Invariants: one renderer for both (the report shows the tables and charts the dashboard does);
every value from the records is escaped (`charts.escape`: control and format characters as
text, then `html.escape`); the live page loads its style and
script from the dashboard itself (CSP ``'self'``, no inline script or style); the report file
inlines its style under a CSP that names the style's hash and allows nothing else (no script,
no network), so it opens offline and cannot reach out. The counts carry ``data-count`` names
equal to the keys of `cm report --json`, which the browser tests compare.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Sequence
from importlib import resources

from trustprov.dashboard import charts
from trustprov.dashboard.charts import escape
from trustprov.dashboard.model import (
    Column,
    Failure,
    LotView,
    Provenance,
    Snapshot,
    StationView,
)
from trustprov.line.report import LotReport


def static(name: str) -> bytes:
    """A file served under /static (package data)."""
    return resources.files("trustprov.dashboard").joinpath("static", name).read_bytes()


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def _when(at: datetime.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") + "Z" if at is not None else "-"


def _count(name: str, value: object) -> str:
    return f'<td data-count="{name}">{escape(str(value))}</td>'


def _eta(r: LotReport, view: LotView) -> str:
    if not r.pending:
        failed = r.total.failed
        return f"finished, {failed} chips failed" if failed else "finished"
    if view.eta_s is None:
        return "- (no chip settled in the last minute)"
    return _duration(view.eta_s)


def headline(r: LotReport) -> str:
    """The lot's progress as good chips of the lot: never attempts (a failed chip is not
    progress), with the failed and pending chips beside it."""
    t = r.total
    bar = charts.progress(
        [(t.provisioned, charts.GOOD), (t.already_provisioned, charts.ALREADY)],
        r.chips,
        label=f"{r.good} of {r.chips} chips good",
    )
    share = 100 * r.good / r.chips if r.chips else 0.0
    parts = [
        f'{bar} <strong data-headline="good">{r.good}</strong> of {r.chips} chips good '
        f"({share:.1f} %)"
    ]
    if t.failed or t.bad_receipt:
        bad = t.failed + t.bad_receipt
        parts.append(f'<span class="failed" data-headline="failed">{bad} failed</span>')
    if r.pending:
        parts.append(f'<span data-headline="pending">{r.pending} pending</span>')
    return f'<p class="progress-line">{", ".join(parts)}</p>'


def lot_section(r: LotReport, view: LotView | None = None) -> str:
    t = r.total
    y = f"{r.yield_percent} %" if r.yield_percent is not None else "-"
    rate = ""
    alarms = ""
    if view is not None:
        rate = (
            f'<p class="rate">{view.rate:.1f} chips/s over the last minute; '
            f'ETA <span data-count="eta">{escape(_eta(r, view))}</span></p>'
        )
        alarms = "".join(f'<p class="alarm">{escape(a)}</p>' for a in view.alarms)
    out = [
        f'<section class="lot" data-lot="{escape(r.lot)}">',
        f"<h2>Lot {escape(r.lot)} <small>bundle {escape(r.bundle_id)}</small></h2>",
        alarms,
        headline(r),
        rate,
        "<table><tr><th>chips</th><th>provisioned</th><th>already provisioned</th>"
        "<th>failed</th><th>bad receipt</th><th>pending</th><th>in progress</th>"
        "<th>yield of the chips done</th>"
        "<th>pending share of the lot</th></tr><tr>",
        _count("chips", r.chips),
        _count("provisioned", t.provisioned),
        _count("already_provisioned", t.already_provisioned),
        _count("failed", t.failed),
        _count("bad_receipt", t.bad_receipt),
        _count("pending", r.pending),
        _count("in_progress", r.in_progress),
        _count("yield_percent", y),
        # a share, not a count: data-count holds the report's counts, one for one
        f'<td data-share="pending">{r.pending_percent} %</td>',
        "</tr></table>",
    ]
    if r.failures:
        rows = sorted(r.failures.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append("<h3>Failures by cause</h3>")
        out.append(charts.bar_chart(rows, label="failures by cause"))
    if r.stations:
        out.append(
            "<h3>Stations</h3><table><tr><th>station</th><th>chips</th><th>provisioned</th>"
            "<th>already provisioned</th><th>failed</th><th>bad receipt</th></tr>"
        )
        for name, s in sorted(r.stations.items()):
            out.append(
                f'<tr data-station="{escape(name)}"><td>{escape(name)}</td><td>{s.chips}</td>'
                f"<td>{s.provisioned}</td><td>{s.already_provisioned}</td><td>{s.failed}</td>"
                f"<td>{s.bad_receipt}</td></tr>"
            )
        out.append("</table>")
    if r.other_bundles:
        out.append(f"<p>Earlier bundles of this lot: {escape(', '.join(r.other_bundles))}</p>")
    out.append("</section>")
    return "".join(out)


def failures_table(failures: list[Failure]) -> str:
    if not failures:
        return "<p>No failed chip.</p>"
    rows = "".join(
        f"<tr><td>{_when(f.time)}</td><td>{escape(f.lot)}</td><td>{escape(f.station)}</td>"
        f"<td><code>{escape(f.uid)}</code></td><td>{escape(f.code)}</td></tr>"
        for f in failures
    )
    return (
        "<table><tr><th>time</th><th>lot</th><th>station</th><th>chip</th><th>cause</th></tr>"
        f"{rows}</table>"
    )


def stations_table(stations: list[StationView]) -> str:
    if not stations:
        return "<p>No station has reported yet.</p>"
    rows = "".join(
        f'<tr class="{s.status}" data-station="{escape(s.name)}"><td>{escape(s.name)}</td>'
        f'<td data-status="{s.status}">{"stopped reporting" if s.status == "stopped" else s.status}'
        f"</td><td>{_when(s.last_seen)}</td><td>{s.in_progress}</td></tr>"
        for s in stations
    )
    return (
        "<table><tr><th>station</th><th>status</th><th>last attempt</th>"
        f"<th>chips in progress</th></tr>{rows}</table>"
    )


def alarm_banner(snap: Snapshot) -> str:
    """Every lot that needs a person, at the top of the page."""
    if not snap.alarms:
        return '<section class="alarms clear" data-alarms="0"><p>No alarm.</p></section>'
    items = "".join(
        f'<li data-alarm-lot="{escape(lot)}"><strong>Lot {escape(lot)}</strong>: '
        f"{escape('; '.join(why))}</li>"
        for lot, why in snap.alarms
    )
    return (
        f'<section class="alarms" data-alarms="{len(snap.alarms)}" role="alert">'
        f"<h2>Alarms</h2><ul>{items}</ul></section>"
    )


def live_fragment(snap: Snapshot) -> str:
    """The part of the page that each update replaces."""
    legend = "".join(
        f"<li>{charts.swatch(charts.colour(i))} {escape(name)}</li>"
        for i, name in enumerate(sorted(snap.series))
    )
    lots = "".join(lot_section(v.report, v) for v in snap.lots) or "<p>No lot in the records.</p>"
    chart = charts.line_chart(
        snap.series, snap.window_start, snap.bin_seconds, label="chips per second per station"
    )
    return (
        f'<p class="generated">Records {escape(snap.records_url)}; read at '
        f'<span id="generated">{_when(snap.generated)}</span></p>'
        f"{alarm_banner(snap)}"
        f"{lots}"
        f"<section><h2>Chips per second, per station</h2>"
        f"{chart}"
        f'<ul class="legend">{legend}</ul></section>'
        f"<section><h2>Stations reporting</h2>{stations_table(snap.stations)}</section>"
        f"<section><h2>Latest failures</h2>{failures_table(snap.failures)}</section>"
    )


def dashboard_page(snap: Snapshot) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>trustprov line dashboard</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/dashboard.js" defer></script></head><body>'
        '<header><h1>trustprov line</h1><span id="status" data-state="connecting">connecting'
        "</span></header>"
        f'<main id="live">{live_fragment(snap)}</main></body></html>'
    )


def _column_charts(cols: Sequence[Column]) -> str:
    """Good chips per second, and failed chips per second in a chart of their own: a failed
    chip is never drawn as throughput."""
    if not cols:
        return "<section><h2>Good chips per second</h2><p>No chip settled yet.</p></section>"
    good = [(f"{c.start:%H:%M:%S}Z", c.good / c.seconds) for c in cols]
    out = [
        "<section><h2>Good chips per second</h2>",
        charts.column_chart(good, label="good chips per second"),
        "</section>",
    ]
    if any(c.failed for c in cols):
        failed = [(f"{c.start:%H:%M:%S}Z", c.failed / c.seconds) for c in cols]
        out += [
            '<section><h2 class="failed">Failed chips per second (not throughput)</h2>',
            charts.column_chart(failed, label="failed chips per second", fill=charts.BAD),
            "</section>",
        ]
    return "".join(out)


def _provenance(p: Provenance | None) -> str:
    if p is None:
        return ""

    def row(name: str, value: object, key: str) -> str:
        shown = "-" if value is None or value == [] else value
        return f'<dt>{name}</dt><dd data-provenance="{key}">{escape(str(shown))}</dd>'

    unknown = "not given (cm report --bundle FILE)"
    software = (
        f"{p.software_name} {', '.join(p.software_versions)}"
        if p.software_name
        else ", ".join(p.software_versions) or None
    )
    rows = [
        row("software", software, "software"),
        row("software security version", p.security_version, "security_version"),
        row("bundle id", p.bundle_id, "bundle_id"),
        row("bundle epoch", p.epoch if p.epoch is not None else p.receipt_epoch, "epoch"),
        row("minimum security version", p.min_security_version, "min_security_version"),
        row("authorized set", p.authorized or unknown, "authorized"),
        row("first chip", _when(p.first_chip), "first_chip"),
        row("last chip", _when(p.last_chip), "last_chip"),
        row("stations", ", ".join(p.stations), "stations"),
        row("trustprov", p.trustprov_version, "trustprov_version"),
    ]
    if p.reconciliation is not None:
        counts = ", ".join(f"{n} {k}" for k, n in p.reconciliation.items())
        rows.append(row(f"receipts reconciled ({p.reconciled_against})", counts, "reconciliation"))
    else:
        rows.append(row("receipts reconciled", "not reconciled (cm report --ca)", "reconciliation"))
    sources = (
        "Software name and security version as the chips' stored receipts state them (their "
        "signatures are checked only when reconciled); versions, times and stations from the "
        "records; epoch, minimum version and authorized set from the bundle file's manifest."
    )
    return (
        '<section><h2>Provenance</h2><dl class="provenance">'
        f'{"".join(rows)}</dl><p class="generated">{escape(sources)}</p></section>'
    )


def report_page(
    report: LotReport,
    failures: list[Failure],
    generated: datetime.datetime,
    columns: Sequence[Column] = (),
    origin: Provenance | None = None,
) -> str:
    """The OEM's audit report of a lot as one HTML file: no script, no request of any kind."""
    css = static("dashboard.css").decode()
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>Lot {escape(report.lot)}: provisioning report</title>"
        f"<style>{css}</style></head><body>"
        f"<header><h1>Provisioning report, lot {escape(report.lot)}</h1></header><main>"
        f'<p class="generated">From the records, read at {_when(generated)}.</p>'
        f"{lot_section(report)}"
        f"{_provenance(origin)}"
        f"{_column_charts(columns)}"
        f"<section><h2>Latest failures</h2>{failures_table(failures)}</section>"
        "</main></body></html>"
    )
