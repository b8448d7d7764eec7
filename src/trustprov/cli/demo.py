"""`trustprov demo`: the whole flow on virtual chips."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trustprov import demo as flow
from trustprov.cli.options import EXIT_FAILED, emit_json
from trustprov.cli.progress import LineProgress
from trustprov.roles.icm import MAX_LOT


@click.command(short_help="Run the whole flow on virtual chips and check every chip.")
@click.option("--chips", type=click.IntRange(1, MAX_LOT), default=1000, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="New directory for every artifact.",
)
@click.option(
    "--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="CM worker processes."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.option(
    "--icm-keys",
    metavar="PKCS11_URI",
    default=None,
    help="Make the ICM's keys in this PKCS#11 token (as 'icm init --keys').",
)
def demo(chips: int, out: Path, jobs: int, as_json: bool, icm_keys: str | None) -> None:
    """Run ICM -> OEM -> CM on CHIPS virtual chips and check every chip's assets."""
    with LineProgress(enabled=not as_json and sys.stderr.isatty()) as progress:
        result = flow.run(
            out,
            chips=chips,
            jobs=jobs,
            on_start=progress.start,
            on_outcome=progress.advance,
            icm_keys=icm_keys,
        )
    s = result.summary
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(f"ICM, OEM and CM artifacts in {out}")
        click.echo(
            f"lot {s.lot}: {s.chips} chips, {s.provisioned} provisioned, {s.failed} failed "
            f"in {s.seconds:.2f} s ({s.chips / s.seconds:.0f} chips/s)"
        )
        click.echo(
            f"checked by probe: {result.verified} chips hold exactly the OEM's assets, "
            f"{len(result.mismatched)} do not"
        )
        r = result.reconciliation
        click.echo(
            f"reconciled by the OEM: {r.counts['valid']} valid receipts of {r.authorized} chips "
            f"ordered, {len(r.missing)} missing, {r.receipts - r.counts['valid']} not valid"
        )
    if (
        s.failed
        or result.mismatched
        or not result.reconciliation.ok
        or result.reconciliation.missing
    ):
        sys.exit(EXIT_FAILED)
