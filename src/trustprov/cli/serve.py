"""The chip side of the CLI: `chip serve` (a board of N sockets over TCP, or one chip behind a
pty), `chip run` (one virtual chip as a program on its standard input and output), `chip blank`
(blank chips from the fab) and `chip export` (a farm's chips into a tray).

The only CLI module that imports the board: the board is a chip-side process, started here so
that one installed tool can play both ends of the wire in a rehearsal or a test.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.options import (
    idle_timeout_option,
    json_option,
    parse_uid,
    path_option,
    plural,
    read_board_token,
)
from trustprov.cli.output import emit_json
from trustprov.errors import InputError


def parse_listen(text: str) -> tuple[str, int] | None:
    """``tcp://HOST:PORT`` as (host, port), or None for ``pty``."""
    if text == "pty":
        return None
    host, sep, port = text.removeprefix("tcp://").rpartition(":")
    if not text.startswith("tcp://") or not sep or not host or not port.isdigit():
        raise InputError(f"--listen: {text!r} is neither tcp://HOST:PORT nor pty")
    if not 0 <= int(port) <= 65535:
        raise InputError(f"--listen: port {port} out of range")
    return host, int(port)


def line_options(f: Callable[..., None]) -> Callable[..., None]:
    """--baud, --turnaround and --bauds: the wire as a UART behind a programmer (protocol.md
    13.5), and the rates its chips offer after the hello (12.7)."""
    f = click.option(
        "--bauds",
        default=None,
        metavar="LIST",
        help="The rates the chips offer to switch to after the hello (protocol.md 12.7), "
        "comma-separated, or none; default with --baud: 115200,1000000,3000000 and --baud's.",
    )(f)
    f = click.option(
        "--turnaround",
        "turnaround_ms",
        type=click.FloatRange(0, 10_000),
        default=0.0,
        show_default=True,
        help="Milliseconds the chip takes to start answering a frame.",
    )(f)
    return click.option(
        "--baud",
        type=click.IntRange(300, 20_000_000),
        default=None,
        help="The wire's line rate: N/10 bytes per second each way (8N1); default unpaced.",
    )(f)


@click.command(short_help="Serve chips over a wire: a board of sockets, or one chip on a pty.")
@inputs(farm=expect.FARM)
@click.option(
    "--farm",
    type=click.Path(path_type=Path),
    default=None,
    help="The chip farm: the tray the board takes chips from (or --exec and --tray).",
)
@click.option(
    "--exec",
    "command",
    default=None,
    help="Each chip is this program, speaking the link on stdin/stdout; {nvm}, {uid} and {lot} "
    "become its NVM file, UID and lot (protocol.md 13.4).",
)
@click.option(
    "--tray",
    type=click.Path(path_type=Path),
    default=None,
    help="With --exec: the tray, a directory of LOT/UID.nvm files (chip blank --tray).",
)
@click.option("--listen", required=True, help="tcp://HOST:PORT (PORT 0: any free ports) or pty.")
@click.option(
    "--sockets",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Chip sockets; socket k listens on PORT+1+k (TCP only).",
)
@click.option("--chip", "uid", default=None, help="The chip behind the pty (hex UID; pty only).")
@click.option(
    "--faults",
    default=None,
    help="Faults on the wire, e.g. drop=0.01,corrupt=0.01,dup=0.005,delay=0.002:20ms,"
    "reorder=0.001,cut=0.001,powercut=0.02,misplace=0,seed=1 (docs/protocol.md).",
)
@idle_timeout_option(
    "Seconds without input after which a chip ends an open session (protocol.md 12.5)."
)
@line_options
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file whose first line is the token every handler connection must present "
    "(16-128 printable characters; also from TRUSTPROV_BOARD_TOKEN); required with any "
    "--listen address but 127.0.0.1 or ::1.",
)
def serve(
    farm: Path | None,
    command: str | None,
    tray: Path | None,
    listen: str,
    sockets: int,
    uid: str | None,
    faults: str | None,
    idle_timeout: float = 10.0,
    baud: int | None = None,
    turnaround_ms: float = 0.0,
    bauds: str | None = None,
    token_file: Path | None = None,
) -> None:
    """Run a chip board until SIGTERM; print its ports as one JSON line when ready.

    TCP: the handler on PORT, socket k on PORT+1+k. pty: the one chip --chip behind a
    pseudo-terminal, reached as serial:///dev/pts/N. The chips are a farm's (--farm), or
    programs (--exec CMD --tray DIR), one process per seated chip."""
    from trustprov.board.faults import Faults  # noqa: PLC0415 - lazy: `chip --help` start-up
    from trustprov.board.line_rate import LineRate  # noqa: PLC0415 - lazy: start-up
    from trustprov.board.server import Board  # noqa: PLC0415 - lazy: start-up

    if (farm is None) == (command is None) or (command is None) != (tray is None):
        raise InputError("give --farm FARM, or --exec CMD with --tray DIR")
    where = parse_listen(listen)
    spec = Faults.parse(faults)
    if (where is None) != (uid is not None):
        raise InputError("--chip goes with --listen pty, and only with it")
    if where is not None and where[1] and where[1] + sockets > 65535:
        raise InputError(
            f"--listen: sockets listen on PORT+1..PORT+{sockets}, above port 65535; "
            "give a lower PORT (or 0)"
        )
    board = Board(
        farm,
        faults=spec,
        idle_timeout=idle_timeout,
        tray=tray,
        command=command,
        token=read_board_token(token_file),
        line=LineRate.of(baud, turnaround_ms, bauds),
    )
    if where is None:
        assert uid is not None  # noqa: S101 - checked above
        ready = board.listen_pty(parse_uid(uid))
    else:
        ready = board.listen_tcp(where[0], where[1], sockets)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        board.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    board.open()
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    board.serve()


@click.command(short_help="Run one virtual chip on stdin/stdout, its state in one file.")
@click.option(
    "--nvm",
    type=click.Path(path_type=Path),
    required=True,
    help="The chip's NVM file; a new or empty file is a blank chip.",
)
@click.option("--uid", "uid", required=True, help="The chip's fab UID (32 hex digits).")
@click.option(
    "--lot",
    default="blank",
    show_default=True,
    help="The chip's fab lot, for a new NVM file (a file keeps its own).",
)
@click.option("--stdio", is_flag=True, required=True, help="The link on stdin and stdout.")
@idle_timeout_option(
    "Seconds without input after which the chip ends an open session (protocol.md 12.5)."
)
@line_options
def run(
    nvm: Path,
    uid: str,
    lot: str,
    stdio: bool,
    idle_timeout: float,
    baud: int | None = None,
    turnaround_ms: float = 0.0,
    bauds: str | None = None,
) -> None:
    """Run one virtual chip whose whole state is the file --nvm, speaking the link layer
    (protocol.md 12) on standard input and output, until EOF or SIGTERM. What a board runs
    for each chip of a tray: chip serve --exec 'trustprov chip run --nvm {nvm} --uid {uid}
    --lot {lot} --stdio'."""
    from trustprov.board.chip_program import run_stdio  # noqa: PLC0415 - lazy: start-up
    from trustprov.board.line_rate import LineRate  # noqa: PLC0415 - lazy: start-up
    from trustprov.board.tray import check_lot  # noqa: PLC0415 - lazy: start-up

    if not stdio:
        raise InputError("--stdio is the one wire chip run speaks")
    check_lot(lot)
    run_stdio(
        nvm,
        parse_uid(uid),
        lot,
        idle_timeout=idle_timeout,
        line=LineRate.of(baud, turnaround_ms, bauds),
    )


@click.command(short_help="Make blank chips with fab UIDs, in a farm or a tray.")
@click.option(
    "--farm",
    type=click.Path(path_type=Path),
    default=None,
    help="The chip farm to add them to (made if missing).",
)
@click.option(
    "--tray",
    type=click.Path(path_type=Path),
    default=None,
    help="Or the tray to add them to: an empty DIR/LOT/UID.nvm file each.",
)
@click.option("--count", type=click.IntRange(1, 1_000_000), required=True, help="How many.")
@click.option("--lot", default="blank", show_default=True, help="Their fab lot.")
@json_option("the chips made")
def blank(farm: Path | None, tray: Path | None, count: int, lot: str, as_json: bool) -> None:
    """Make COUNT blank chips, as the fab delivers them: each a UID of 16 random bytes from
    the OS CSPRNG and a lot, nothing burned (protocol.md 13.4). The ICM burns them next."""
    from trustprov.board import tray as trays  # noqa: PLC0415 - lazy: start-up

    if (farm is None) == (tray is None):
        raise InputError("give exactly one of --farm FARM and --tray DIR")
    trays.check_lot(lot)
    if tray is not None:
        uids = trays.add_blank(tray, lot, count)
        where = {"tray": str(tray)}
    else:
        assert farm is not None  # noqa: S101 - checked above
        uids = _blank_in_farm(farm, lot, count)
        where = {"farm": str(farm)}
    if as_json:
        emit_json({**where, "lot": lot, "chips": [u.hex() for u in uids]})
        return
    click.echo(f"{plural(len(uids), 'blank chip')} in lot {lot} of {next(iter(where.values()))}")


def _blank_in_farm(farm: Path, lot: str, count: int) -> list[bytes]:
    import os  # noqa: PLC0415 - lazy: start-up

    from trustprov.link.farm_link import FarmLink  # noqa: PLC0415 - lazy: start-up

    if farm.exists() and not farm.is_file():
        raise InputError(f"{farm} is not a chip farm")
    if not farm.exists():  # a farm holds chips' secrets once they are made: owner only
        if not farm.resolve().parent.is_dir():
            raise InputError(f"cannot make {farm}: its directory does not exist")
        os.close(os.open(farm, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    uids: list[bytes] = []
    with FarmLink(farm, create=True) as f, f.batch():
        known = set(f.uids())
        while len(uids) < count:
            uid = os.urandom(16)
            if uid not in known:  # 2^-128 a draw
                f.add_blank(uid, lot)
                known.add(uid)
                uids.append(uid)
    return uids


@click.command(short_help="Copy chips of a farm into a tray, for a board of chip programs.")
@inputs(farm=expect.FARM)
@path_option("--farm", help="The chip farm.")
@path_option("--tray", help="The tray (a directory of LOT/UID.nvm files; made if missing).")
@click.option("--lot", default=None, help="Every chip of this lot.")
@click.option("--chip", "chips", multiple=True, help="A chip's UID (hex); repeatable.")
@json_option("the chips copied")
def export(farm: Path, tray: Path, lot: str | None, chips: tuple[str, ...], as_json: bool) -> None:
    """Copy chips (--lot, or each --chip) of a farm into a tray as the virtual chip's NVM
    files, for `chip serve --exec 'trustprov chip run ...' --tray DIR`. A rehearsal tool: the
    farm keeps its copy, so use one or the other, never both."""
    from trustprov.board.tray import export_chips  # noqa: PLC0415 - lazy: start-up
    from trustprov.link.farm_link import FarmLink  # noqa: PLC0415 - lazy: start-up

    if (lot is None) == (not chips):
        raise InputError("give --lot LOT or --chip UID (repeatable)")
    uids = [parse_uid(c) for c in chips]
    if lot is not None:
        with FarmLink(farm) as f:
            if lot not in f.lots():
                raise InputError(f"no lot {lot!r} in {farm}")
            uids = f.uids(lot)
    copied = export_chips(farm, tray, uids)
    if as_json:
        emit_json(
            {"tray": str(tray), "chips": [{"uid": u.hex(), "nvm": str(p)} for u, p in copied]}
        )
        return
    click.echo(f"{plural(len(copied), 'chip')} copied into {tray}")
