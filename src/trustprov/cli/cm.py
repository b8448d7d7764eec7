"""`trustprov cm`: the contract manufacturer's commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from trustprov.cli.options import EXIT_FAILED, emit_json, path_option
from trustprov.cli.progress import LineProgress
from trustprov.line.station import provision_lot
from trustprov.roles.cm import Job


@click.group()
def cm() -> None:
    """The contract manufacturer: provision lots of chips."""


@cm.command()
@path_option("--farm", help="The chip farm.")
@click.option("--lot", required=True, help="Lot to provision.")
@path_option("--software", help="The signed provisioning software.")
@path_option("--share", help="ENC(OEM_SHARE) from the OEM.")
@path_option("--bundle", help="The sealed bundle from the OEM.")
@click.option(
    "--records",
    default=None,
    help="Records database URL [default: sqlite:///FARM_DIR/records.sqlite].",
)
@click.option(
    "--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="Worker processes."
)
@click.option("--station", default=None, help="Station name in the records [default: host name].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
def provision(
    farm: Path,
    lot: str,
    software: Path,
    share: Path,
    bundle: Path,
    records: str | None,
    jobs: int,
    station: str | None,
    as_json: bool,
) -> None:
    """FIG. 3: run the signed software on every chip of LOT; record every result."""
    job = Job.load(software, share, bundle)
    url = records or f"sqlite:///{(farm.resolve().parent / 'records.sqlite')}"
    with LineProgress(enabled=not as_json and sys.stderr.isatty()) as progress:
        summary = provision_lot(
            farm_path=farm,
            lot=lot,
            job=job,
            records_url=url,
            jobs=jobs,
            station=station or os.uname().nodename,
            on_start=progress.start,
            on_outcome=progress.advance,
        )
    if as_json:
        emit_json(summary.to_json())
    else:
        click.echo(
            f"lot {summary.lot}: {summary.chips} chips, {summary.provisioned} provisioned, "
            f"{summary.already_provisioned} already provisioned, {summary.failed} failed "
            f"in {summary.seconds:.1f} s; records: {url}"
        )
    if summary.failed:
        causes = ", ".join(f"{code}: {n}" for code, n in sorted(summary.failures.items()))
        click.echo(f"error: {summary.failed} of {summary.chips} chips failed ({causes})", err=True)
        sys.exit(EXIT_FAILED)
