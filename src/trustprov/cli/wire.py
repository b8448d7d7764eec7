"""`trustprov cm provision` over the wire: the options that pick chip boards or a serial port."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trustprov.cli.options import read_board_token
from trustprov.errors import FormatError, InputError
from trustprov.formats.lot import LotManifest
from trustprov.line.boards import check_board_or_port, provision_lot_wire
from trustprov.line.station import LotSummary
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.lots import load_lot_key, read_lot


@dataclass(frozen=True)
class Wire:
    manifest: Path
    boards: tuple[str, ...]
    port: str | None
    board_token: str | None = field(default=None, repr=False)


def check_wire_options(
    farm: Path | None,
    manifest: Path | None,
    boards: tuple[str, ...],
    port: str | None,
    board_token_file: Path | None = None,
) -> Wire | None:
    """None for in-process chips (--farm, with or without --manifest: the lot's certificates);
    the wire's options otherwise."""
    if farm is not None and (boards or port):
        raise InputError("--farm and --board/--port exclude each other: the board holds the farm")
    if manifest is None:
        if boards or port:
            raise InputError("--board and --port need --manifest (the lot's chips)")
        if farm is None:
            raise InputError("give --farm (in-process chips) or --manifest with --board/--port")
        return None
    if farm is not None:
        return None
    check_board_or_port(boards, port)
    if board_token_file is not None and not boards:
        raise InputError("--board-token-file goes with --board")
    token = read_board_token(board_token_file, "--board-token-file") if boards else None
    return Wire(manifest, boards, port, token)


def load_manifest(path: Path, icm_key: Path | None) -> LotManifest:
    """The lot manifest at ``path``, its ICM signature first (roles/lots.py): under the
    lot-signing key given, or else under the key the signature names, which proves the
    manifest whole, not who made it."""
    try:
        return read_lot(path, None if icm_key is None else load_lot_key(icm_key))
    except FormatError as e:
        raise InputError(f"{path}: {e.message}") from e


def provision_wire(
    wire: Wire,
    lot: str,
    job: Job,
    records_url: str,
    station: str | None,
    on_start: Callable[[int], None],
    on_outcome: Callable[[Outcome], None],
    stop_after: int,
    icm_key: Path | None = None,
    records_password: str | None = None,
    baud_max: int | None = None,
) -> LotSummary:
    manifest = load_manifest(wire.manifest, icm_key)
    return provision_lot_wire(
        manifest=manifest,
        lot=lot,
        job=job,
        records_url=records_url,
        boards=wire.boards,
        port=wire.port,
        station=station,
        on_outcome=on_outcome,
        on_start=on_start,
        stop_after=stop_after,
        records_password=records_password,
        board_token=wire.board_token,
        baud_max=baud_max,
    )
