"""Shared option types (UIDs, output paths) and the conventions every command shares.

Conventions (README, "Output conventions"): data on stdout, and with ``--json`` one JSON object
there and nothing else; progress, status and logs on stderr; ``-v``/``-vv``/``-q``/``--debug``
on every command, the root's and a subcommand's adding up.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trustprov.errors import InputError

UID_HEX_LEN = 32
F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1  # a chip refused, an artifact failed to verify, or chips failed
EXIT_USAGE = 2  # bad input or usage
EXIT_INTERRUPTED = 130  # SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of standard output went away


def parse_uid(text: str) -> bytes:
    if len(text) != UID_HEX_LEN:  # bytes.fromhex would also take spaces
        raise InputError(f"chip UID must be {UID_HEX_LEN} hex digits")
    try:
        uid = bytes.fromhex(text)
    except ValueError as e:
        raise InputError(f"chip UID {text!r} is not hex") from e
    if len(uid) * 2 != UID_HEX_LEN:
        raise InputError(f"chip UID must be {UID_HEX_LEN} hex digits")
    return uid


def lot_name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--lot`` callback: a name no lot can have (bytes that are not UTF-8 included, which
    reach Python as lone surrogates) is a usage error, not a query the records cannot run."""
    if value is None:
        return None
    from trustprov.errors import FormatError  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.lot import LotChip  # noqa: PLC0415 - lazy: start-up

    try:
        LotChip.check_lot_name(value)
    except FormatError as e:
        shown = ascii(value) if len(value) <= 80 else ascii(value[:80]) + "..."
        raise click.BadParameter(
            f"{shown} is no lot name: 1-64 of letters, digits, '.', '_', '-', starting alnum",
            param=param,
        ) from e
    return value


def path_option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """A required path option; existence is checked by the tools, with their own one-line error."""
    option: Callable[[F], F] = click.option(
        *names, type=click.Path(path_type=Path), required=True, **kwargs
    )
    return option


def force_option(what: str) -> Callable[[F], F]:
    """``--force``: replace an existing regular file at an output path (never anything else)."""
    option: Callable[[F], F] = click.option(
        "--force", is_flag=True, help=f"Replace an existing {what} (a regular file only)."
    )
    return option


def plural(n: int, noun: str) -> str:
    """``n`` of ``noun``, as a person writes it: "1 chip", "4 chips"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def emit_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


# -- the records store, found as `cm provision` finds it ------------------------------------
_RECORDS: Callable[[Any], Any] = click.option(
    "--records",
    default=None,
    help="Records store: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB [default, as cm "
    "provision: sqlite:///FARM_DIR/records.sqlite with --farm or --manifest, else "
    "./records.sqlite].",
)
_WHERE: Callable[[Any], Any] = click.option(
    "--farm",
    "where",
    type=click.Path(path_type=Path),
    default=None,
    help="The farm (or lot manifest) cm provision was given: the records beside it.",
)


def records_url(records: str | None, where: Path | None) -> str:
    """--records, or where `cm provision` puts the records by default: beside its farm or
    manifest, which for a farm in the current directory is ./records.sqlite."""
    if records is not None:
        if where is not None:
            raise InputError("--records and --farm exclude each other: give one")
        return records
    base = where.resolve().parent if where is not None else Path.cwd()
    path = base / "records.sqlite"
    if not path.exists():
        raise InputError(
            f"no records at {path}; give --records URL (or --farm FARM, as to cm provision)"
        )
    return f"sqlite:///{path}"


def records_options(command: F) -> F:
    """--records URL, or --farm FARM for the records `cm provision` keeps beside it."""
    return _RECORDS(_WHERE(command))  # type: ignore[no-any-return]  # click's decorators


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
        click.echo(message, err=True)


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
            click.echo(self.format(record), err=True)
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


def json_option(what: str = "the result") -> Callable[[F], F]:
    """``--json``: the command's result as one JSON object on stdout (status stays on stderr)."""
    option: Callable[[F], F] = click.option(
        "--json", "as_json", is_flag=True, help=f"Print {what} as one JSON object."
    )
    return option
