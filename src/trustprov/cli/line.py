"""`trustprov line`: the production line seen as a whole (the dashboard)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from trustprov.cli.options import read_secret_file, records_options, records_password, records_url
from trustprov.cli.output import say
from trustprov.errors import InputError

#: the dashboard's access token, when not in --token-file (the environment: not shown by 'ps')
TOKEN_ENV = "TRUSTPROV_DASHBOARD_TOKEN"  # noqa: S105 - the name of a variable, not a token

# the web stack (Starlette, uvicorn) and SQLAlchemy are imported when the command runs, so that
# `trustprov --help` starts fast


@click.group()
def line() -> None:
    """The production line: a live dashboard over its records."""


@line.command(short_help="Serve a live web dashboard of the lots in a records store.")
@records_options
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    help="HOST:PORT to serve on; any address but 127.0.0.1 or ::1 requires the access token.",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file holding the access token to require, alone (only its owner may read it: mode "
    "0600; or a pipe) [default: $TRUSTPROV_DASHBOARD_TOKEN; else none on loopback, and "
    "elsewhere one is generated and printed once].",
)
@click.option(
    "--token",
    "token_on_command_line",
    default=None,
    hidden=True,
    help="Refused: a token on the command line is readable by every user of the machine.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 60),
    default=1.0,
    show_default=True,
    help="Seconds between reads of the records.",
)
def dashboard(
    records: str | None,
    where: Path | None,
    records_password_file: Path | None,
    listen: str,
    token_file: Path | None,
    token_on_command_line: str | None,
    interval: float,
) -> None:
    """Serve a read-only web page over the records store, updated live while stations run:
    every lot's progress, ETA and yield, chips per second per station, failures by cause and
    the latest failed chips, stations that stopped reporting. GET only; stop with Ctrl-C."""
    from trustprov.dashboard.app import access_token, parse_listen, serve  # noqa: PLC0415 - lazy
    from trustprov.line.records import parse_url, redacted  # noqa: PLC0415 - lazy: start-up

    if token_on_command_line is not None:
        # the old way, refused: 'ps' shows every user of the machine the whole command line,
        # for as long as the dashboard runs (days)
        raise InputError(
            "--token puts the token on the command line, where every user of this machine "
            f"reads it ('ps'); give it with --token-file FILE or {TOKEN_ENV}"
        )
    records = records_url(records, where)
    password = records_password(records, records_password_file)
    host, _ = parse_listen(listen)
    shown = redacted(parse_url(records))
    token = (
        read_secret_file(token_file, "--token-file")
        if token_file is not None
        else os.environ.get(TOKEN_ENV) or None
    )
    required, generated = access_token(host, token)

    def ready(address: str) -> None:
        say(f"dashboard of {shown} on {address}", err=True)
        if generated:
            # printed once, here only: the token is not logged or stored anywhere
            say(f"access token (shown once): open {address}?token={required}", err=True)
        elif required is not None:
            say(f"open {address}?token=<your token> once; a cookie keeps it", err=True)

    serve(records, listen, required, interval=interval, on_ready=ready, records_password=password)
