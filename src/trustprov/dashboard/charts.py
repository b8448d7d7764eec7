"""Charts as inline SVG, drawn on the server: no script draws them, nothing is vendored.

Invariants: every text that reaches the markup is escaped here (station names and error codes
come from the records, which stations write), by `escape`: its control and format characters
written out as text first (`formats.text.printable`: a bidi override would reorder what the
page shows), then HTML-escaped; colours and sizes are SVG presentation
attributes, never ``style`` attributes, so the dashboard's CSP needs no ``unsafe-inline``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from html import escape as html_escape

from trustprov.formats.text import printable

#: station colours, distinguishable for the common colour-vision deficiencies (Okabe-Ito, then
#: darker variants): a dozen stations still read apart
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
    "#004d7a",
    "#9e6d00",
    "#006b4f",
    "#8c4f74",
)
GOOD, ALREADY, BAD, WAITING = "#009e73", "#56b4e9", "#d55e00", "#dddddd"


def escape(text: str) -> str:
    """``text`` for the page: shown as text (`printable`), then HTML-escaped."""
    return html_escape(printable(text))


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def swatch(fill: str) -> str:
    return (
        '<svg class="swatch" width="10" height="10">'
        f'<rect width="10" height="10" fill="{fill}"/></svg>'
    )


def _nice(top: float) -> float:
    """A round upper bound for an axis."""
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if top <= m * step:
            return float(m * step)
    return float(10 * step)


def _num(v: float) -> str:
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def line_chart(
    series: dict[str, list[float]], start: int, step: int, *, label: str, width: int = 760
) -> str:
    """One polyline per series (chips/s per bin), a shared y axis from 0, time on x (UTC)."""
    height, left, bottom, top_pad = 220, 48, 22, 8
    points = max((len(v) for v in series.values()), default=0)
    top = _nice(max((max(v, default=0.0) for v in series.values()), default=0.0))
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 8}" y2="{top_pad + plot_h}" '
        'stroke="#888"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top_pad + 10}" text-anchor="end">{_num(top)}</text>',
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
    ]
    if points:
        for t, anchor, x in (
            (start, "start", left),
            (start + (points - 1) * step, "end", width - 8),
        ):
            when = datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%H:%M:%S")
            parts.append(f'<text x="{x}" y="{height - 6}" text-anchor="{anchor}">{when}Z</text>')
    dx = plot_w / max(points - 1, 1)
    for i, (name, values) in enumerate(sorted(series.items())):
        coords = " ".join(
            f"{left + j * dx:.1f},{top_pad + plot_h - v / top * plot_h:.1f}"
            for j, v in enumerate(values)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour(i)}" stroke-width="2" points="{coords}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(rows: Sequence[tuple[str, float]], *, label: str, fill: str = BAD) -> str:
    """Horizontal bars, one per (label, value), largest first as given."""
    if not rows:
        return ""
    width, row_h, left = 560, 22, 200
    top = max(v for _, v in rows) or 1
    height = row_h * len(rows) + 4
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
    ]
    for i, (name, v) in enumerate(rows):
        y = i * row_h + 2
        w = (width - left - 70) * v / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(name[:32])}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{fill}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}">{_num(v)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(rows: Sequence[tuple[str, float]], *, label: str, fill: str = GOOD) -> str:
    """Vertical bars in order (the report's throughput buckets), the first and last labelled."""
    if not rows:
        return ""
    width, height, left, bottom = 760, 200, 48, 22
    top = _nice(max(v for _, v in rows))
    plot_h = height - bottom - 8
    w = (width - left - 8) / len(rows)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<text x="{left - 4}" y="18" text-anchor="end">{_num(top)}</text>',
        f'<text x="{left - 4}" y="{8 + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (name, v) in enumerate(rows):
        h = plot_h * v / top
        parts.append(
            f'<rect x="{left + i * w + 1:.1f}" y="{8 + plot_h - h:.1f}" '
            f'width="{max(w - 2, 1):.1f}" height="{h:.1f}" fill="{fill}">'
            f"<title>{escape(name)}: {_num(v)}</title></rect>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 6}">{escape(rows[0][0])}</text>'
        f'<text x="{width - 8}" y="{height - 6}" text-anchor="end">{escape(rows[-1][0])}</text>'
        "</svg>"
    )
    return "".join(parts)


def progress(parts: Sequence[tuple[int, str]], total: int, *, label: str) -> str:
    """A stacked bar of ``total``: (count, fill) segments in order, the rest waiting."""
    width, height = 560, 16
    x = 0.0
    out = [
        f'<svg class="progress" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><rect width="{width}" height="{height}" fill="{WAITING}"/>'
    ]
    for n, fill in parts:
        w = width * n / total if total else 0
        out.append(f'<rect x="{x:.1f}" width="{w:.1f}" height="{height}" fill="{fill}"/>')
        x += w
    out.append("</svg>")
    return "".join(out)
