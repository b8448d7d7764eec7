"""`cm report --html`: a lot's audit report as one self-contained HTML file.

Invariants: the numbers are `lot_report`'s (those of `cm report --json`); the file needs nothing
but itself to open (style inline, charts inline SVG, no script) and its CSP forbids any request;
it is written through `roles.files.output_file` (atomic, never over anything but a regular file,
and over that only with ``--force``).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from trustprov.dashboard.model import latest_failures
from trustprov.dashboard.render import report_page
from trustprov.errors import InputError
from trustprov.line.records import RecordStore
from trustprov.line.report import LotReport, find_job
from trustprov.roles.files import check_output, output_file


def check_html_path(path: Path, *, force: bool) -> None:
    """Refuse an unusable output path before any work is done."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: {parent} does not exist")
    check_output(Path(path), force=force, kind="html")


def write_html(store: RecordStore, report: LotReport, path: Path, *, force: bool = False) -> None:
    check_html_path(path, force=force)
    ref, _ = find_job(store, report.lot, report.bundle_id)
    with store.transaction() as c:
        failures = latest_failures(c, ref)
    page = report_page(report, failures, datetime.datetime.now(datetime.UTC))
    with output_file(Path(path), force=force, kind="html") as f:
        f.write(page.encode("utf-8"))
