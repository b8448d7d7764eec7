"""`trustprov chip serve`: run a chip board (N sockets over TCP) or one chip behind a pty.

The only CLI module that imports the board: the board is a chip-side process, started here so
that one installed tool can play both ends of the wire in a rehearsal or a test.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.options import parse_uid, path_option, read_board_token
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


@click.command(short_help="Serve chips over a wire: a board of sockets, or one chip on a pty.")
@inputs(farm=expect.FARM)
@path_option("--farm", help="The chip farm: the tray the board takes chips from.")
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
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0.05, 3600),
    default=10.0,
    show_default=True,
    help="Seconds without input after which a chip ends an open session (protocol.md 12.5).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file whose first line is the token every handler connection must present "
    "(16-128 printable characters; also from TRUSTPROV_BOARD_TOKEN); required with any "
    "--listen address but 127.0.0.1 or ::1.",
)
def serve(
    farm: Path,
    listen: str,
    sockets: int,
    uid: str | None,
    faults: str | None,
    idle_timeout: float = 10.0,
    token_file: Path | None = None,
) -> None:
    """Run a chip board until SIGTERM; print its ports as one JSON line when ready.

    TCP: the handler on PORT, socket k on PORT+1+k. pty: the one chip --chip behind a
    pseudo-terminal, reached as serial:///dev/pts/N."""
    from trustprov.board.faults import Faults  # noqa: PLC0415 - lazy: `chip --help` start-up
    from trustprov.board.server import Board  # noqa: PLC0415 - lazy: start-up

    where = parse_listen(listen)
    spec = Faults.parse(faults)
    if (where is None) != (uid is not None):
        raise InputError("--chip goes with --listen pty, and only with it")
    if where is not None and where[1] and where[1] + sockets > 65535:
        raise InputError(
            f"--listen: sockets listen on PORT+1..PORT+{sockets}, above port 65535; "
            "give a lower PORT (or 0)"
        )
    board = Board(farm, faults=spec, idle_timeout=idle_timeout, token=read_board_token(token_file))
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
