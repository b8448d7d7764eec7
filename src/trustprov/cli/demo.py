"""`trustprov demo`: the whole flow on virtual chips."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from trustprov.cli.options import EXIT_FAILED, json_option, plural
from trustprov.cli.output import emit_json, progress_enabled, say
from trustprov.formats.limits import MAX_LOT

# the whole flow (SQLAlchemy, rich, the roles, the chips) is imported when the command runs: its
# --help starts as fast as any other

CHIPS = 1000
WIRE_CHIPS = 20  # each chip of the lot is a process the board starts: a smaller lot by default


@click.command(short_help="Run the whole flow on virtual chips and check every chip.")
@click.option(
    "--chips",
    type=click.IntRange(1, MAX_LOT),
    default=None,
    help=f"Chips in the CM's lot [default: {CHIPS}; with --wire {WIRE_CHIPS}].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="New or empty directory for every artifact.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace a previous demo's output in --out: only if it holds that demo's files, "
    "unchanged, and nothing else (make demo passes it).",
)
@click.option(
    "--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="CM worker processes."
)
@json_option("the summary")
@click.option(
    "--icm-keys",
    metavar="PKCS11_URI",
    default=None,
    help="Make the ICM's keys in this PKCS#11 token (as 'icm init --keys').",
)
@click.option(
    "--wire",
    is_flag=True,
    help="Reach every chip only through the wire: blank chips on boards (the OEM's on a pty, "
    "the lot as chip programs on a TCP board), made by the ICM's line, provisioned by the CM's "
    "station [default --chips with --wire: 20].",
)
def demo(
    chips: int | None,
    out: Path,
    replace: bool,
    jobs: int,
    as_json: bool,
    icm_keys: str | None,
    wire: bool,
) -> None:
    """Run ICM -> OEM -> CM on CHIPS virtual chips and check every chip's assets."""
    made = _check_out(out, replace=replace)
    if wire:
        _demo_wire(chips or WIRE_CHIPS, out, made, jobs, as_json, icm_keys)
        return
    from trustprov import demo as flow  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up

    chips = chips or CHIPS
    try:
        with LineProgress(enabled=progress_enabled(as_json)) as progress:
            result = flow.run(
                out,
                chips=chips,
                jobs=jobs,
                on_start=progress.start,
                on_outcome=progress.advance,
                icm_keys=icm_keys,
            )
    except BaseException:
        _withdraw(out, made=made)
        raise
    s = result.summary
    if as_json:
        emit_json(result.to_json())
    else:
        say(f"ICM, OEM and CM artifacts in {out}")
        say(
            f"lot {s.lot}: {plural(s.chips, 'chip')}, {s.provisioned} provisioned, "
            f"{s.failed} failed "
            f"in {s.seconds:.2f} s ({s.chips / s.seconds:.0f} chips/s)"
        )
        say(
            f"checked by probe: {result.verified} chips hold exactly the OEM's assets, "
            f"{len(result.mismatched)} do not"
        )
        r = result.reconciliation
        say(
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


def _demo_wire(
    chips: int, out: Path, made: bool, jobs: int, as_json: bool, icm_keys: str | None
) -> None:
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.demo_wire import run_wire  # noqa: PLC0415 - lazy: start-up

    try:
        with LineProgress(enabled=progress_enabled(as_json)) as progress:
            result = run_wire(
                out,
                chips=chips,
                jobs=jobs,
                on_start=progress.start,
                on_outcome=progress.advance,
                icm_keys=icm_keys,
            )
    except BaseException:
        _withdraw(out, made=made)
        raise
    s, r = result.summary, result.reconciliation
    if as_json:
        emit_json(result.to_json())
    else:
        say(f"ICM, OEM and CM artifacts in {out}; every chip reached over the wire")
        say(
            f"made by the ICM's line: {plural(result.made.made, 'chip')} on a TCP board, "
            f"the OEM's chip behind a pty"
        )
        say(
            f"lot {s.lot}: {plural(s.chips, 'chip')}, {s.provisioned} provisioned, "
            f"{s.failed} failed in {s.seconds:.2f} s through the board"
        )
        say(
            f"reconciled by the OEM: {r.counts['valid']} valid receipts of {r.authorized} chips "
            f"ordered, {len(r.missing)} missing, {r.receipts - r.counts['valid']} not valid"
        )
    if s.failed or s.bad_receipt or not r.ok or r.missing:
        sys.exit(EXIT_FAILED)


def _check_out(out: Path, *, replace: bool) -> bool:
    """Refuse an --out that is a symbolic link or whose directory does not exist (never made
    on the way); with ``replace``, empty a previous demo's --out (only that: `clear_previous`);
    True when the command makes ``out`` itself."""
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up

    if out.is_symlink():
        raise InputError(f"{out} is a symbolic link; refusing to write through it")
    parent = out.absolute().parent
    if not parent.is_dir():
        raise InputError(f"cannot create {out}: its directory {parent} does not exist")
    if replace and out.is_dir() and any(out.iterdir()):
        from trustprov.demo import clear_previous  # noqa: PLC0415 - lazy: start-up

        clear_previous(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # here, not only in flow.run: _withdraw may then empty ``out`` of this run's files only
        raise InputError(f"{out} exists and is not empty; give a new directory")
    return not out.exists()


def _withdraw(out: Path, *, made: bool) -> None:
    """A run that did not finish leaves nothing behind: ``out`` was new or empty (flow.run
    checks), so all that is in it is this run's."""
    if made:
        shutil.rmtree(out, ignore_errors=True)
    elif out.is_dir() and not out.is_symlink():
        for entry in out.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
