"""`trustprov`: the root command, error rendering and exit codes.

Exit codes: 0 success; 1 a chip refused, an artifact failed to verify, or chips failed; 2 bad
input or usage; 130 interrupted (SIGINT); 143 terminated (SIGTERM); 141 standard output closed
early (a broken pipe, as in `trustprov cm report | head -1`: quietly, as a program killed by
SIGPIPE would). Every error is one line on stderr; data goes to stdout.
"""

from __future__ import annotations

import importlib
import logging
import os
import select
import sys
from typing import Any

import click

from trustprov import __version__
from trustprov.cli.options import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from trustprov.errors import InputError, TrustprovError

#: every subcommand: (module, attribute, one-line summary). A command's module is imported only
#: when that command runs, so `trustprov --help` and the commands that open no records store
#: never load SQLAlchemy, rich or the chip model (start-up; bench/startup.py measures it). The
#: summaries are listed here so the root help imports nothing; tests/cli/test_cli_guard.py checks
#: each against the command's own.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "icm": (
        "trustprov.cli.icm",
        "icm",
        "The IC manufacturer: family secrets, signing, chips.",
    ),
    "oem": (
        "trustprov.cli.oem",
        "oem",
        "The OEM: verify the software, seal assets on the provisioning chip.",
    ),
    "cm": (
        "trustprov.cli.cm",
        "cm",
        "The contract manufacturer: provision lots of chips, report on them.",
    ),
    "chip": ("trustprov.cli.chip", "chip", "Inspect chips; serve them on a board."),
    "line": (
        "trustprov.cli.line",
        "line",
        "The production line: a live dashboard over its records.",
    ),
    "inspect": (
        "trustprov.cli.inspect",
        "inspect",
        "Say what FILE is and print what is public in it; never a secret.",
    ),
    "demo": (
        "trustprov.cli.demo",
        "demo",
        "Run the whole flow on virtual chips and check every chip.",
    ),
}


class TrustprovGroup(click.Group):
    """Renders every trustprov error as one line and a non-zero exit, never a traceback.

    Subcommands load on first use from `COMMANDS` (a lazy group, as click's documentation shows).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        # the parties in the order of the flow, then anything added directly
        added = super().list_commands(ctx)
        return [*COMMANDS, *(n for n in added if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr, _ = COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (
                name,
                COMMANDS[name][2] if name in COMMANDS else self.commands[name].get_short_help_str(),
            )
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrustprovError as e:
            click.echo(f"error: {e.diagnostics()}", err=True)
            ctx.exit(EXIT_USAGE if isinstance(e, InputError) else EXIT_FAILED)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as e:
            if isinstance(e, BrokenPipeError) and _stdout_closed():
                _silence_stdout()
                ctx.exit(EXIT_BROKEN_PIPE)
            click.echo(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=TrustprovGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustprov")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Provision secret assets into chips at an untrusted contract manufacturer.

    Three parties: the ICM (chip maker) makes chips and signs the provisioning software; the OEM
    seals its assets on its own chip; the CM runs the signed software on every chip, which
    installs the assets. The CM never sees a key or an asset.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _stdout_closed() -> bool:
    """Whether the reader of standard output is gone: only then is a broken pipe the quiet end
    of `| head`, not a failure (a worker's pipe, a link) that must be reported."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. under a test runner)
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _silence_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null so that the interpreter's final
    flush does not fail again (the Python docs' advice for SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. under a test runner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main() -> None:
    try:
        cli(prog_name="trustprov")
    except BrokenPipeError:  # raised by click outside a command (e.g. while printing --help)
        if not _stdout_closed():
            raise
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
