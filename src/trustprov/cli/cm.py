"""`trustprov cm`: the contract manufacturer's commands. `cm provision` is here; `cm report` and
`cm receipts`, which read a lot's records back, are in `cli/cm_report.py`.

Invariants:
- The production line (SQLAlchemy), the progress bar (rich) and the roles are imported by each
  command when it runs, so that `trustprov cm --help` starts fast.
- A run that stopped, or left a chip failed or with a bad receipt, exits non-zero (128 + the
  signal's number when a signal stopped it), with one line saying why on standard error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.cm_report import receipts, report
from trustprov.cli.options import (
    EXIT_FAILED,
    RECORDS_HELP,
    auth_option,
    board_token_file_option,
    icm_key_option,
    json_option,
    path_option,
    plural,
    records_option,
    records_password,
    records_password_option,
)
from trustprov.cli.output import emit_json, progress_enabled, say
from trustprov.errors import InputError


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
@board_token_file_option()
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


cm.add_command(report)
cm.add_command(receipts)
