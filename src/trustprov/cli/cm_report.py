"""`trustprov cm report` and `cm receipts`: what a lot's records say, read back for the CM and
the OEM. `cli/cm.py` registers them on the `cm` group.

Invariants:
- The records store is only read (opened ``read_only``, never created); a missing SQLite file
  is refused before SQLAlchemy is imported, and the line, the dashboard and the roles are
  imported when a command runs, so `trustprov cm --help` starts fast.
- Standard output holds one document: --json together with --csv - or --out - is refused.
- --ca and --auth come only with what they need (--html, --bundle FILE, --ca), refused before
  any file is written; a --bundle file is checked to be a sealed bundle before it is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs, precheck
from trustprov.cli.options import (
    auth_option,
    force_option,
    json_option,
    lot_name,
    plural,
    records_options,
    records_password,
    records_url,
)
from trustprov.cli.output import emit_json, say, status
from trustprov.errors import InputError

if TYPE_CHECKING:  # for annotations only: the line is imported when a command runs
    from trustprov.line.report import LotReport


@click.command(short_help="Report a lot from its records: yield, failures, pending.")
@inputs(device_ca=expect.CERTIFICATE, auth=expect.AUTH)
@records_options
@click.option(
    "--lot", default=None, callback=lot_name, help="Lot to report [default: the only lot]."
)
@click.option(
    "--bundle",
    "bundle_id",
    default=None,
    help="Report the job of this bundle (its id, or a unique prefix of it; or the bundle file) "
    "[default: the lot's latest].",
)
@json_option("the report")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="Also write one row per chip (its final record, or its state) to this CSV file; "
    "'-' writes only the CSV, to standard output.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the lot's audit report, one self-contained HTML file (opens offline).",
)
@click.option(
    "--ca",
    "device_ca",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DEVICE_CA",
    help="With --html and --bundle FILE: reconcile the lot's stored receipts under this device "
    "CA (as 'oem reconcile') and put the counts in the report.",
)
@auth_option(
    "With --ca: the authorized set, so that the report counts missing and unauthorized chips."
)
@force_option("--csv or --html file")
def report(
    records: str | None,
    where: Path | None,
    records_password_file: Path | None,
    lot: str | None,
    bundle_id: str | None,
    as_json: bool,
    csv_path: Path | None,
    html_path: Path | None,
    device_ca: Path | None,
    auth: Path | None,
    force: bool,
) -> None:
    """A lot from its records: yield, failures by cause, stations, throughput, pending chips."""
    if as_json and csv_path is not None and str(csv_path) == "-":
        raise InputError("--json and --csv - both write to standard output; give one")
    bundle_file = _html_inputs(html_path, bundle_id, device_ca, auth)
    if html_path is not None:
        from trustprov.dashboard.report import check_html_path  # noqa: PLC0415 - lazy: start-up

        check_html_path(html_path, force=force)
    url = records_url(records, where)  # a missing SQLite file is refused before the imports
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.report import lot_report, write_csv  # noqa: PLC0415 - lazy: start-up

    password = records_password(url, records_password_file)
    bundle = _bundle_id(bundle_id)
    html_sha256 = None
    with RecordStore(url, create=False, read_only=True, password=password) as store:
        r = lot_report(store, lot, bundle)
        rows = (
            write_csv(store, r.lot, csv_path, force=force, bundle=r.bundle_id)
            if csv_path is not None
            else None
        )
        if html_path is not None:
            from trustprov.dashboard.report import write_html  # noqa: PLC0415 - lazy: start-up

            html_sha256 = write_html(
                store, r, html_path, force=force, bundle_file=bundle_file, ca=device_ca, auth=auth
            )
    if csv_path is not None and str(csv_path) == "-":
        return  # standard output holds the CSV alone
    if as_json:
        doc = r.to_json()
        if html_sha256 is not None:
            doc["html"] = {"path": str(html_path), "sha256": html_sha256}
        emit_json(doc)
        return
    _print_report(r, rows, csv_path, html_path, html_sha256)


@click.command(short_help="Export the chips' signed receipts for the OEM.")
@records_options
@click.option(
    "--lot", default=None, callback=lot_name, help="Only this lot's receipts [default: every lot]."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, allow_dash=True),
    required=True,
    help="The receipts file to write ('-': standard output).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["cbor-seq", "jsonl"]),
    default="cbor-seq",
    show_default=True,
    help="A CBOR sequence of the receipts (RFC 8742), or JSON lines.",
)
@force_option("--out file")
@json_option("how many receipts were written, and where")
def receipts(
    records: str | None,
    where: Path | None,
    records_password_file: Path | None,
    lot: str | None,
    out: Path,
    fmt: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write every receipt the chips signed when they installed the bundle. A chip settled as
    already provisioned (it held the bundle before this run) signed none in this run."""
    if as_json and str(out) == "-":
        raise InputError("--json and --out - both write to standard output; give one")
    url = records_url(records, where)  # a missing SQLite file is refused before the imports
    from trustprov.line.receipts import export_receipts  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - lazy: start-up

    password = records_password(url, records_password_file)
    with RecordStore(url, create=False, read_only=True, password=password) as store:
        n = export_receipts(store, lot, out, "jsonl" if fmt == "jsonl" else "cbor-seq", force=force)
    if as_json:
        emit_json({"receipts": n, "out": str(out), "format": fmt, "lot": lot})
    elif str(out) != "-":
        status(f"{n} receipts written to {out}")


def _print_report(
    r: LotReport,
    rows: int | None,
    csv_path: Path | None,
    html_path: Path | None,
    html_sha256: str | None,
) -> None:
    t = r.total
    say(f"lot {r.lot}, bundle {r.bundle_id}: {plural(r.chips, 'chip')}")
    say(
        f"  {t.provisioned} provisioned, {t.already_provisioned} already provisioned, "
        f"{t.failed} failed, {t.bad_receipt} bad receipts, {r.pending} pending "
        f"({r.in_progress} in progress)"
    )
    say(f"  {r.yield_line()}")
    if r.failures:
        say("  failures: " + ", ".join(f"{c} {n}" for c, n in sorted(r.failures.items())))
    for name, s in sorted(r.stations.items()):
        say(
            f"  station {name}: {plural(s.chips, 'chip')} ({s.provisioned} provisioned, "
            f"{s.already_provisioned} already provisioned, {s.failed} failed, "
            f"{s.bad_receipt} bad receipts)"
        )
    if r.throughput:
        say("  throughput:")
        for b in r.throughput:
            say(
                f"    {b.start:%Y-%m-%d %H:%M:%S}Z  {b.seconds:>5} s  {b.chips:>8} chips  "
                f"{b.chips / b.seconds:>8.1f} chips/s"
            )
    if r.other_bundles:
        say(f"  other bundles of this lot: {', '.join(r.other_bundles)} (cm report --bundle ID)")
    if rows is not None:
        say(f"  {rows} chips written to {csv_path}")
    if html_path is not None:
        # as sha256sum prints it, so that `sha256sum -c` checks the copy the OEM receives
        say(f"  audit report written to {html_path}, sha256:")
        say(f"{html_sha256}  {html_path}")


def _html_inputs(
    html: Path | None, bundle: str | None, ca: Path | None, auth: Path | None
) -> Path | None:
    """Check that --ca and --auth come with what they need; the bundle file, if --bundle is
    one (its manifest gives the report's epoch and authorized set)."""
    if (ca is not None or auth is not None) and html is None:
        raise InputError("--ca and --auth go into the audit report: give --html FILE")
    if auth is not None and ca is None:
        raise InputError("--auth is for reconciling the receipts: give --ca DEVICE_CA too")
    bundle_file = Path(bundle) if bundle is not None and Path(bundle).is_file() else None
    if ca is not None and bundle_file is None:
        raise InputError("--ca reconciles the receipts against a bundle: give --bundle FILE")
    return bundle_file


def _bundle_id(given: str | None) -> str | None:
    """--bundle as a bundle id (hex, or a prefix) or a bundle file, whose id is read from it."""
    if given is None:
        return None
    path = Path(given)
    if path.is_file():
        from trustprov.errors import FormatError  # noqa: PLC0415 - lazy: start-up
        from trustprov.formats.bundle import Bundle  # noqa: PLC0415 - lazy: start-up
        from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - lazy: start-up
        from trustprov.roles.files import read_bytes  # noqa: PLC0415 - lazy: start-up

        precheck(path, expect.BUNDLE)  # another artifact: named for what it is
        try:
            data = read_bytes(path, limit=LIMITS.bundle, what="bundle")
            return Bundle.from_bytes(data).manifest.bundle_id.hex()
        except (FormatError, InputError) as e:
            raise InputError(f"--bundle {path}: not a sealed bundle ({e.message})") from e
    text = given.lower()
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"--bundle: {given!r} is neither a bundle id (hex) nor a bundle file")
    return text
