"""`trustprov line`: the production line seen as a whole (the dashboard)."""

from __future__ import annotations

from pathlib import Path

import click

from trustprov.cli.options import records_options, records_url, say

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
    "--token",
    envvar="TRUSTPROV_DASHBOARD_TOKEN",
    default=None,
    help="The access token to require (also from TRUSTPROV_DASHBOARD_TOKEN) [default: none on "
    "loopback; elsewhere one is generated and printed once].",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 60),
    default=1.0,
    show_default=True,
    help="Seconds between reads of the records.",
)
def dashboard(
    records: str | None, where: Path | None, listen: str, token: str | None, interval: float
) -> None:
    """Serve a read-only web page over the records store, updated live while stations run:
    every lot's progress, ETA and yield, chips per second per station, failures by cause and
    the latest failed chips, stations that stopped reporting. GET only; stop with Ctrl-C."""
    from trustprov.dashboard.app import access_token, parse_listen, serve  # noqa: PLC0415 - lazy
    from trustprov.line.records import parse_url  # noqa: PLC0415 - lazy: start-up

    records = records_url(records, where)
    host, _ = parse_listen(listen)
    shown = parse_url(records).render_as_string(hide_password=True)
    required, generated = access_token(host, token)

    def ready(address: str) -> None:
        say(f"dashboard of {shown} on {address}", err=True)
        if generated:
            # printed once, here only: the token is not logged or stored anywhere
            say(f"access token (shown once): open {address}?token={required}", err=True)
        elif required is not None:
            say(f"open {address}?token=<your token> once; a cookie keeps it", err=True)

    serve(records, listen, required, interval=interval, on_ready=ready)
