"""`trustprov icm manufacture` and `icm report`: a lot's chips made (in a farm, or on boards or a
port over the wire) and the ICM line's records read back. `cli/icm.py` registers them on the
`icm` group.

Invariants:
- --farm excludes --board/--port, and one of them is given; COUNT is bounded by the role, which
  says why. The roles and the line are imported when a command runs (start-up).
- Over the wire the records store is the ICM line's own, and an interrupted run resumes with the
  same command: no chip is burned twice, a certificate is issued once per chip.
- A run over the wire that stopped exits non-zero, saying why on standard error; `icm report`
  only reads the records.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.options import (
    board_token_file_option,
    force_option,
    json_option,
    path_option,
    plural,
    records_option,
    records_password_option,
)
from trustprov.cli.output import emit_json, say
from trustprov.errors import InputError


@click.command(short_help="Make a lot's chips: in a farm, or blank chips on boards or a port.")
@inputs(farm=expect.FARM)
@path_option("--icm", "icm_dir", help="The ICM directory.")
@click.option(
    "--farm",
    type=click.Path(path_type=Path),
    default=None,
    help="Chip farm file (created if missing): COUNT new chips made in it (a rehearsal).",
)
@click.option(
    "--board",
    "boards",
    multiple=True,
    help="A chip board's handler, tcp://HOST:PORT (repeatable): the blank chips it holds are made.",
)
@board_token_file_option()
@click.option(
    "--port", default=None, help="The one blank chip behind a port (serial:///dev/X, tcp://...)."
)
@click.option("--lot", required=True, help="Lot name.")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Chips to make (required with --farm) [default with --board: every blank chip].",
)
@path_option("--manifest", help="Where to write the lot manifest (JSON).")
@records_option(
    "The ICM line's records store, sqlite:///PATH or postgresql://USER@HOST/DB "
    "[default with --board/--port: sqlite:///MANIFEST_DIR/icm-records.sqlite]."
)
@records_password_option
@click.option(
    "--station",
    default=None,
    help="This line's name in the records [default: icm-LOT].",
)
@force_option("--manifest file")
@json_option("the lot made")
def manufacture(
    icm_dir: Path,
    farm: Path | None,
    boards: tuple[str, ...],
    board_token_file: Path | None,
    port: str | None,
    lot: str,
    count: int | None,
    manifest: Path,
    records: str | None,
    records_password_file: Path | None,
    station: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Make a lot's chips: burn immutable memory, make identities, issue certificates.

    With --farm, COUNT new chips are made in the farm file. With --board (or --port), the
    blank chips the boards hold (or COUNT of them) are reached over the wire, one at a time:
    burned, their identity made on chip, certified by the device CA (file or token) and given
    their certificate. A chip of another family, or already burned, is recorded and skipped,
    never burned twice. Interrupted (Ctrl-C, a crash, a dead board), the same command resumes:
    a chip's certificate is issued once, and a chip that lost it gets the same one again. The
    lot manifest and its signature are written once the lot is complete.
    """
    from trustprov.roles import icm as role  # noqa: PLC0415 - lazy: start-up

    if farm is not None and (boards or port):
        raise InputError("--farm and --board/--port exclude each other")
    if farm is None and not boards and port is None:
        raise InputError("give --farm FARM, --board tcp://HOST:PORT or --port ADDRESS")
    if boards and port is not None:
        raise InputError("give --board (one or more) or --port, not both")
    if farm is None:
        _manufacture_wire(
            role.Icm.load(icm_dir),
            boards,
            board_token_file,
            port,
            lot,
            count,
            manifest,
            records,
            records_password_file,
            station,
            force=force,
            as_json=as_json,
        )
        return
    if records is not None or records_password_file is not None or station is not None:
        raise InputError("--records, --records-password-file and --station go with --board/--port")
    if count is None:
        raise InputError("--farm needs --count: how many chips to make")
    _manufacture_farm(role.Icm.load(icm_dir), farm, lot, count, manifest, force, as_json)


def _manufacture_farm(
    icm: Any, farm: Path, lot: str, count: int, manifest: Path, force: bool, as_json: bool
) -> None:
    from trustprov.cli.output import progress_enabled  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles import icm as role  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.lots import signature_path  # noqa: PLC0415 - lazy: start-up

    # the role bounds COUNT (MAX_LOT, in roles.icm.manufacturing) and says why
    with LineProgress(enabled=progress_enabled(as_json), label="manufacturing") as progress:
        made = role.manufacture(
            icm, farm, lot, count, manifest, force=force, on_chip=lambda u: progress.made(u, count)
        )
    if as_json:
        emit_json(
            {
                "lot": made.lot,
                "chips": made.count,
                "family": made.family_id.hex(),
                "farm": str(farm),
                "manifest": str(manifest),
                "signature": str(signature_path(manifest)),
            }
        )
        return
    chips = plural(made.count, "chip")
    say(f"lot {made.lot}: {chips} of family {made.family_id.hex()} in {farm}")


def _manufacture_wire(
    icm: Any,
    boards: tuple[str, ...],
    board_token_file: Path | None,
    port: str | None,
    lot: str,
    count: int | None,
    manifest: Path,
    records: str | None,
    records_password_file: Path | None,
    station: str | None,
    *,
    force: bool,
    as_json: bool,
) -> None:
    from trustprov.cli.options import EXIT_FAILED, read_board_token, records_password  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.output import progress_enabled  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.icm_line import manufacture_wire  # noqa: PLC0415 - lazy: start-up

    if board_token_file is not None and not boards:
        raise InputError("--board-token-file goes with --board")
    token = read_board_token(board_token_file, "--board-token-file") if boards else None
    url = records or f"sqlite:///{manifest.resolve().parent / 'icm-records.sqlite'}"
    password = records_password(url, records_password_file)
    with LineProgress(enabled=progress_enabled(as_json), label="manufacturing") as progress:
        total = [count or 0]

        def started(n: int) -> None:
            total[0] = n
            progress.start(n)

        summary = manufacture_wire(
            icm,
            lot,
            manifest,
            records_url=url,
            boards=boards,
            port=port,
            count=count,
            records_password=password,
            board_token=token,
            station=station,
            force=force,
            on_start=started,
            on_chip=lambda uid, _seq: progress.made(uid, total[0]),
        )
    if as_json:
        emit_json(summary.to_json())
    else:
        skipped = sum(summary.skipped.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(summary.skipped.items()))
        extra = f", {skipped} skipped ({reasons})" if skipped else ""
        where = f"manifest {summary.manifest}" if summary.manifest else "no manifest yet"
        say(
            f"lot {summary.lot}: {plural(summary.made, 'chip')} of family {summary.family} made "
            f"({summary.made_now} in this run){extra}; {where}; records: {summary.records}"
        )
    if summary.stopped:
        causes = ", ".join(f"{code}: {n}" for code, n in sorted(summary.failed.items()))
        why = f" ({causes})" if causes else ""
        say(f"error: {summary.stopped}{why}; rerun the same command to resume", err=True)
        sys.exit(EXIT_FAILED)


@click.command(short_help="Report a lot of the ICM's line from its records.")
@records_option(
    "The ICM line's records store, sqlite:///PATH or postgresql://USER@HOST/DB.", required=True
)
@records_password_option
@click.option("--lot", default=None, help="Lot to report [default: the only lot].")
@json_option("the report")
def report(
    records: str, records_password_file: Path | None, lot: str | None, as_json: bool
) -> None:
    """A lot of `icm manufacture --board/--port`: chips made, in progress, skipped and failed
    (by reason)."""
    from trustprov.cli.options import records_password  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.records.icm_chips import IcmRecords  # noqa: PLC0415 - lazy: start-up

    password = records_password(records, records_password_file)
    with RecordStore(records, create=False, read_only=True, password=password) as store:
        rows = IcmRecords(store, "report")
        lots = rows.lots()
        if lot is None:
            if len(lots) != 1:
                known = ", ".join(lots[:10]) or "none"
                raise InputError(f"give --lot: the records hold {len(lots)} lots ({known})")
            lot = lots[0]
        elif lot not in lots:
            raise InputError(f"no lot {lot!r} of the ICM's line in the records at {store.url}")
        counts = rows.counts(lot)
        reasons = rows.reasons(lot)
        url = store.url
    made = counts.get("made", 0)
    doc = {
        "lot": lot,
        "records": url,
        "made": made,
        "in_progress": counts.get("started", 0),
        "skipped": reasons["skipped"],
        "failed": reasons["failed"],
    }
    if as_json:
        emit_json(doc)
        return
    say(
        f"lot {lot}: {plural(made, 'chip')} made, {doc['in_progress']} in progress, "
        f"{counts.get('skipped', 0)} skipped, {counts.get('failed', 0)} failed; records: {url}"
    )
    for state in ("skipped", "failed"):
        for reason, n in sorted(reasons[state].items()):
            say(f"  {state} {reason}: {n}")
