"""`trustprov cm`: the contract manufacturer's commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs, precheck
from trustprov.cli.options import (
    EXIT_FAILED,
    RECORDS_HELP,
    auth_option,
    emit_json,
    force_option,
    icm_key_option,
    json_option,
    lot_name,
    path_option,
    plural,
    progress_enabled,
    records_option,
    records_options,
    records_password,
    records_password_option,
    records_url,
    say,
    status,
)
from trustprov.errors import InputError

if TYPE_CHECKING:  # for annotations only: the line is imported when a command runs
    from trustprov.line.report import LotReport

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
    help="The ICM's signed lot manifest: the lot's chips, reached on --board or --port; with "
    "--farm, the certificates the chips' receipts are verified under [default with --farm: "
    "each chip's own].",
)
@click.option(
    "--board",
    "boards",
    multiple=True,
    help="A chip board's handler, tcp://HOST:PORT (repeatable): every socket is driven at once.",
)
@click.option(
    "--board-token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file whose first line is the boards' handler token (also from "
    "TRUSTPROV_BOARD_TOKEN): a board listening beyond loopback requires it.",
)
@click.option("--port", default=None, help="The one chip on a serial line, serial:///dev/X.")
@click.option(
    "--baud-max",
    type=click.IntRange(300, 20_000_000),
    default=None,
    help="After each hello, switch the line to the highest rate the chip offers at most N "
    "(protocol.md 12.7; --board/--port only) [default: stay at the first rate].",
)
@click.option("--lot", required=True, help="Lot to provision.")
@path_option("--software", help="The signed provisioning software.")
@path_option("--share", help="ENC(OEM_SHARE) from the OEM.")
@path_option("--bundle", help="The sealed bundle from the OEM.")
@auth_option(
    "The OEM's authorized set (AUTH), for a bundle for authorized chips only: each chip "
    "gets its inclusion proof."
)
@icm_key_option(
    "The ICM's lot-signing.pub.pem: --manifest must be signed by it [default: the "
    "manifest's signature is checked under the key it names]."
)
@records_option(f"{RECORDS_HELP} [default: sqlite:///FARM_DIR/records.sqlite].")
@records_password_option
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
    board_token_file: Path | None,
    port: str | None,
    baud_max: int | None,
    lot: str,
    software: Path,
    share: Path,
    bundle: Path,
    auth: Path | None,
    icm_key: Path | None,
    records: str | None,
    records_password_file: Path | None,
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

    A chip is recorded provisioned only when its receipt verifies under the certificate the lot
    manifest gives for its UID (else bad-receipt), already provisioned only from the token it
    signs over a fresh challenge (rom.attest). Over the wire: --manifest with --board (chip
    boards) or --port (one chip on a serial line) instead of --farm; with --farm, --manifest
    makes the ICM's manifest the anchor instead of each chip's own certificate."""
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.wire import (  # noqa: PLC0415 - lazy
        check_wire_options,
        load_manifest,
        provision_wire,
    )
    from trustprov.line.station import default_jobs, provision_lot  # noqa: PLC0415 - lazy
    from trustprov.line.stopping import STOP_AFTER, LineAborted  # noqa: PLC0415 - lazy
    from trustprov.roles.cm import Job  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.trust import LotTrust  # noqa: PLC0415 - lazy: start-up

    if icm_key is not None and manifest is None:
        # it would check nothing: in-process chips come with no lot manifest to check
        raise InputError("--icm-key checks the signature of --manifest; give it with --manifest")
    wire = check_wire_options(farm, manifest, boards, port, board_token_file)
    if baud_max is not None and wire is None:
        raise InputError("--baud-max is for a line over the wire: give it with --board or --port")
    job = Job.load(software, share, bundle, auth)
    trust = (
        LotTrust.of_manifest(load_manifest(manifest, icm_key))
        if wire is None and manifest is not None
        else None
    )
    where = farm if farm is not None else manifest
    assert where is not None  # noqa: S101 - check_wire_options wants one of them
    url = records or f"sqlite:///{(where.resolve().parent / 'records.sqlite')}"
    password = records_password(url, records_password_file)
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
                    password,
                    baud_max,
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
                    records_password=password,
                    trust=trust,
                )
            )
    except LineAborted as e:
        say(
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
                (summary.bad_receipt, "with a bad receipt"),
                (summary.settled_before, "settled before"),
                (summary.recovered, "recovered from an interrupted run"),
                (summary.pending, "still pending"),
            )
            if n
        )
        say(
            f"lot {summary.lot}: {plural(summary.chips, 'chip')}, "
            f"{summary.provisioned} provisioned, "
            f"{summary.already_provisioned} already provisioned, {summary.failed} failed"
            f"{extra} in {summary.seconds:.1f} s by station {summary.station}; "
            f"records: {summary.records}"
        )
    if summary.stopped:
        pending = f"{summary.pending} chips left pending; rerun the same command to resume"
        if summary.signum is not None:
            say(f"error: {summary.stopped}; {pending}", err=True)
            sys.exit(128 + summary.signum)
        say(f"error: lot stopped: {summary.stopped}; {pending}", err=True)
        sys.exit(EXIT_FAILED)
    if summary.failed or summary.bad_receipt:
        causes = ", ".join(f"{code}: {n}" for code, n in sorted(summary.failures.items()))
        bad = summary.failed + summary.bad_receipt
        say(f"error: {bad} of {summary.chips} chips failed ({causes})", err=True)
        sys.exit(EXIT_FAILED)


@cm.command(short_help="Report a lot from its records: yield, failures, pending.")
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
