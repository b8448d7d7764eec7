"""The conventions every command shares (docs/cli.md, "Output conventions"): data on stdout, and
with ``--json`` one JSON object there and nothing else; progress, status and logs on stderr;
``-v``/``-vv``/``-q``/``--debug`` on every command, the root's and a subcommand's adding up.

Invariants:
- Every human-readable line goes through `say`, which escapes what a terminal would act on: text
  that came from a file, a store, a chip or a board never drives the terminal. Data (--json,
  --csv, receipts) is written exactly, never through `say`.
- Status lines and the progress bar go to stderr, never with the data, and not with -q; -q and
  -v exclude each other. Logging never raises into a command.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from trustprov.formats.text import printable


def say(line: str = "", *, err: bool = False) -> None:
    """One line of human-readable output, every character in it that a terminal would act on
    escaped (`formats.text.printable`): a station name, lot, error code or message that came
    from a file, a records store, a chip or a board shows as text, never drives the terminal.
    Data (--json, --csv, receipts) is written exactly, never through here."""
    click.echo(printable(line), err=err)


def emit_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


# -- the conventions every command shares: -v/-vv/-q/--debug, status lines ---------------------
#: the root context's ``meta`` keys; every command of the tree adds to the same counts, so
#: `trustprov -v cm provision -v` is -vv
_VERBOSE, _QUIET, _DEBUG = "trustprov.verbose", "trustprov.quiet", "trustprov.debug"


def _meta() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().meta if ctx is not None else {}


def verbosity() -> int:
    """-1 with -q, 0 by default, 1 with -v, 2 with -vv (or more)."""
    meta = _meta()
    return -1 if meta.get(_QUIET) else min(int(meta.get(_VERBOSE, 0)), 2)


def debug() -> bool:
    return bool(_meta().get(_DEBUG))


def status(message: str) -> None:
    """A status line for the operator: on stderr, never with the data; not with -q."""
    if verbosity() >= 0:
        say(message, err=True)


def progress_enabled(as_json: bool = False) -> bool:
    """A progress bar: only on a terminal's stderr, and not with --json or -q."""
    return not as_json and verbosity() >= 0 and sys.stderr.isatty()


def _count(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    meta = ctx.find_root().meta
    meta[_VERBOSE] = meta.get(_VERBOSE, 0) + value
    _configure(meta)


def _flag(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def set_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        meta = ctx.find_root().meta
        meta[key] = meta.get(key, False) or value
        _configure(meta)

    return set_flag


def _configure(meta: dict[str, Any]) -> None:
    if meta.get(_QUIET) and meta.get(_VERBOSE):
        raise click.UsageError("-q and -v exclude each other")
    logger = logging.getLogger("trustprov")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    verbose = min(int(meta.get(_VERBOSE, 0)), 2)
    logger.setLevel(
        logging.ERROR
        if meta.get(_QUIET)
        else (logging.WARNING, logging.INFO, logging.DEBUG)[verbose]
    )


class _StderrHandler(logging.Handler):
    """Log records to the stderr of the moment (click's, so a test runner's capture sees them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # one record, one line: whatever a logged value holds is shown as text
            say(self.format(record), err=True)
        except Exception:  # noqa: BLE001 - logging must never raise into the command
            self.handleError(record)


COMMON_HELP = {
    "verbose": "Log to stderr: -v events (info), -vv also each chip and input file (debug).",
    "quiet": "No progress bar or status lines on stderr; warnings and errors only.",
    "debug": "On an error, also print its traceback (for a bug report).",
}


def common_options() -> list[click.Option]:
    """-v/--verbose (count), -q/--quiet, --debug: on every command of the tree (cli.main adds
    them as each command loads), each adding to the root's counts."""
    return [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_count,
            help=COMMON_HELP["verbose"],
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_flag(_QUIET),
            help=COMMON_HELP["quiet"],
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            callback=_flag(_DEBUG),
            help=COMMON_HELP["debug"],
        ),
    ]
