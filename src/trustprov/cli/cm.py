"""`trustprov cm`: the contract manufacturer's commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs, precheck
from trustprov.cli.options import (
    EXIT_FAILED,
    emit_json,
    force_option,
    json_option,
    lot_name,
    path_option,
    plural,
    progress_enabled,
    records_options,
    records_url,
    status,
)
from trustprov.errors import InputError

# the production line (SQLAlchemy), the progress bar (rich) and the roles are imported by each
# command when it runs, so that `trustprov cm --help` starts fast


@click.group()
def cm() -> None:
    """The contract manufacturer: provision lots of chips, report on them."""


@cm.command(short_help="Provision every chip of a lot (FIG. 3); resumable.")
@inputs(
    farm=expect.FARM,
    manifest=expect.LOT_MANIFEST,
    software=expect.SOFTWARE,
    share=expect.OEM_SHARE,
    bundle=expect.BUNDLE,
    auth=expect.AUTH,
    icm_key=expect.PUBLIC_KEY,
)
@click.option("--farm", type=click.Path(path_type=Path), help="The chip farm (in-process chips).")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="The ICM's lot manifest: the lot's chips, reached on --board or --port.",
)
@click.option(
    "--board",
    "boards",
    multiple=True,
    help="A chip board's handler, tcp://HOST:PORT (repeatable): every socket is driven at once.",
)
@click.option("--port", default=None, help="The one chip on a serial line, serial:///dev/X.")
@click.option("--lot", required=True, help="Lot to provision.")
@path_option("--software", help="The signed provisioning software.")
@path_option("--share", help="ENC(OEM_SHARE) from the OEM.")
@path_option("--bundle", help="The sealed bundle from the OEM.")
@click.option(
    "--auth",
    type=click.Path(path_type=Path),
    default=None,
    help="The OEM's authorized set (AUTH), for a bundle for authorized chips only: each chip "
    "gets its inclusion proof.",
)
@click.option(
    "--icm-key",
    type=click.Path(path_type=Path),
    default=None,
    help="The ICM's lot-signing.pub.pem: --manifest must be signed by it [default: the "
    "manifest's signature is checked under the key it names].",
)
@click.option(
    "--records",
    default=None,
    help="Records store: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB "
    "[default: sqlite:///FARM_DIR/records.sqlite].",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes, at most; one per 256 chips still to provision "
    "[default: the number of cores].",
)
@click.option(
    "--station",
    default=None,
    help="This station's name in the records; stations sharing a lot need distinct names "
    "[default: host name].",
)
@click.option(
    "--stop-after",
    type=click.IntRange(0),
    default=None,
    help="Stop the lot when this many chips in a row fail with the same error (0: never); "
    "the chips not attempted stay pending [default: 10].",
)
@json_option("this run's summary")
def provision(
    farm: Path | None,
    manifest: Path | None,
    boards: tuple[str, ...],
    port: str | None,
    lot: str,
    software: Path,
    share: Path,
    bundle: Path,
    auth: Path | None,
    icm_key: Path | None,
    records: str | None,
    jobs: int | None,
    station: str | None,
    stop_after: int | None,
    as_json: bool,
) -> None:
    """FIG. 3: run the signed software on every chip of LOT that has no final record; record
    every result. Rerun the same command to resume a stopped or crashed line.

    The job is checked against the lot's chips first, and one chip is provisioned alone: the
    lot stops there if it refuses for a reason every chip would repeat. SIGINT or SIGTERM stops
    the line cleanly (exit 130 or 143); a second one aborts at once.

    Over the wire: --manifest with --board (chip boards) or --port (one chip on a serial line)
    instead of --farm."""
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.wire import check_wire_options, provision_wire  # noqa: PLC0415 - lazy
    from trustprov.line.station import default_jobs, provision_lot  # noqa: PLC0415 - lazy
    from trustprov.line.stopping import STOP_AFTER, LineAborted  # noqa: PLC0415 - lazy
    from trustprov.roles.cm import Job  # noqa: PLC0415 - lazy: start-up

    if icm_key is not None and manifest is None:
        # it would check nothing: in-process chips come with no lot manifest to check
        raise InputError("--icm-key checks the signature of --manifest; give it with --manifest")
    wire = check_wire_options(farm, manifest, boards, port)
    job = Job.load(software, share, bundle, auth)
    where = manifest if manifest is not None else farm
    assert where is not None  # noqa: S101 - check_wire_options wants one of them
    url = records or f"sqlite:///{(where.resolve().parent / 'records.sqlite')}"
    stop = STOP_AFTER if stop_after is None else stop_after
    try:
        with LineProgress(enabled=progress_enabled(as_json)) as progress:
            summary = (
                provision_wire(
                    wire,
                    lot,
                    job,
                    url,
                    station,
                    progress.start,
                    progress.advance,
                    stop,
                    icm_key,
                )
                if wire is not None
                else provision_lot(
                    farm_path=farm,
                    lot=lot,
                    job=job,
                    records_url=url,
                    jobs=jobs or min(default_jobs(), 256),
                    station=station,
                    on_start=progress.start,
                    on_outcome=progress.advance,
                    stop_after=stop,
                )
            )
    except LineAborted as e:
        click.echo(
            "error: aborted by a second signal; the chips in flight are settled from the "
            "chips by the next run of the same command",
            err=True,
        )
        sys.exit(e.exit_code)
    if as_json:
        emit_json(summary.to_json())
    else:
        extra = "".join(
            f", {n} {what}"
            for n, what in (
                (summary.settled_before, "settled before"),
                (summary.recovered, "recovered from an interrupted run"),
                (summary.pending, "still pending"),
            )
            if n
        )
        click.echo(
            f"lot {summary.lot}: {plural(summary.chips, 'chip')}, "
            f"{summary.provisioned} provisioned, "
            f"{summary.already_provisioned} already provisioned, {summary.failed} failed"
            f"{extra} in {summary.seconds:.1f} s by station {summary.station}; "
            f"records: {summary.records}"
        )
    if summary.stopped:
        pending = f"{summary.pending} chips left pending; rerun the same command to resume"
        if summary.signum is not None:
            click.echo(f"error: {summary.stopped}; {pending}", err=True)
            sys.exit(128 + summary.signum)
        click.echo(f"error: lot stopped: {summary.stopped}; {pending}", err=True)
        sys.exit(EXIT_FAILED)
    if summary.failed:
        causes = ", ".join(f"{code}: {n}" for code, n in sorted(summary.failures.items()))
        click.echo(f"error: {summary.failed} of {summary.chips} chips failed ({causes})", err=True)
        sys.exit(EXIT_FAILED)


@cm.command(short_help="Report a lot from its records: yield, failures, pending.")
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
@force_option("--csv or --html file")
def report(
    records: str | None,
    where: Path | None,
    lot: str | None,
    bundle_id: str | None,
    as_json: bool,
    csv_path: Path | None,
    html_path: Path | None,
    force: bool,
) -> None:
    """A lot from its records: yield, failures by cause, stations, throughput, pending chips."""
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.report import lot_report, write_csv  # noqa: PLC0415 - lazy: start-up

    if as_json and csv_path is not None and str(csv_path) == "-":
        raise InputError("--json and --csv - both write to standard output; give one")
    if html_path is not None:
        from trustprov.dashboard.report import check_html_path  # noqa: PLC0415 - lazy: start-up

        check_html_path(html_path, force=force)
    url = records_url(records, where)
    bundle = _bundle_id(bundle_id)
    with RecordStore(url, create=False, read_only=True) as store:
        r = lot_report(store, lot, bundle)
        rows = (
            write_csv(store, r.lot, csv_path, force=force, bundle=r.bundle_id)
            if csv_path is not None
            else None
        )
        if html_path is not None:
            from trustprov.dashboard.report import write_html  # noqa: PLC0415 - lazy: start-up

            write_html(store, r, html_path, force=force)
    if csv_path is not None and str(csv_path) == "-":
        return  # standard output holds the CSV alone
    if as_json:
        emit_json(r.to_json())
        return
    t = r.total
    click.echo(f"lot {r.lot}, bundle {r.bundle_id}: {plural(r.chips, 'chip')}")
    click.echo(
        f"  {t.provisioned} provisioned, {t.already_provisioned} already provisioned, "
        f"{t.failed} failed, {r.pending} pending ({r.in_progress} in progress)"
    )
    click.echo(f"  {r.yield_line()}")
    if r.failures:
        click.echo("  failures: " + ", ".join(f"{c} {n}" for c, n in sorted(r.failures.items())))
    for name, s in sorted(r.stations.items()):
        click.echo(
            f"  station {name}: {plural(s.chips, 'chip')} ({s.provisioned} provisioned, "
            f"{s.already_provisioned} already provisioned, {s.failed} failed)"
        )
    if r.throughput:
        click.echo("  throughput:")
        for b in r.throughput:
            click.echo(
                f"    {b.start:%Y-%m-%d %H:%M:%S}Z  {b.seconds:>5} s  {b.chips:>8} chips  "
                f"{b.chips / b.seconds:>8.1f} chips/s"
            )
    if r.other_bundles:
        click.echo(
            f"  other bundles of this lot: {', '.join(r.other_bundles)} (cm report --bundle ID)"
        )
    if rows is not None:
        click.echo(f"  {rows} chips written to {csv_path}")
    if html_path is not None:
        click.echo(f"  audit report written to {html_path}")


@cm.command(short_help="Export the chips' signed receipts for the OEM.")
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
    lot: str | None,
    out: Path,
    fmt: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write every receipt the chips signed when they installed the bundle. A chip settled as
    already provisioned (it held the bundle before this run) signed none in this run."""
    from trustprov.line.receipts import export_receipts  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - lazy: start-up

    if as_json and str(out) == "-":
        raise InputError("--json and --out - both write to standard output; give one")
    url = records_url(records, where)
    with RecordStore(url, create=False, read_only=True) as store:
        n = export_receipts(store, lot, out, "jsonl" if fmt == "jsonl" else "cbor-seq", force=force)
    if as_json:
        emit_json({"receipts": n, "out": str(out), "format": fmt, "lot": lot})
    elif str(out) != "-":
        status(f"{n} receipts written to {out}")


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
