"""`trustprov`: the root command, error rendering and exit codes.

Exit codes: 0 success; 1 a chip refused, an artifact failed to verify, or chips failed (or an
internal error: a bug, one line asking for a report; --debug prints its traceback); 2 bad
input or usage; 130 interrupted (SIGINT); 143 terminated (SIGTERM); 141 standard output closed
early (a broken pipe, as in `trustprov cm report | head -1`: quietly, as a program killed by
SIGPIPE would). Every error is one line on stderr, every character in it that a terminal would act
on escaped (`output.say`: a message may quote a file, a store or a chip); data goes to stdout.
"""

from __future__ import annotations

import errno
import importlib
import os
import select
import sys
from typing import Any, NoReturn

import click

from trustprov import __version__
from trustprov.cli.options import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from trustprov.cli.output import common_options, debug, say
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
    "chip": ("trustprov.cli.chip", "chip", "Inspect, make, serve and run chips."),
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
    """Renders every error as one line and a non-zero exit, never a traceback (but with
    --debug): trustprov's own errors, click's usage errors and, as an internal error, a bug.

    Subcommands load on first use from `COMMANDS` (a lazy group, as click's documentation shows);
    each gets the common options (-v/-vv, -q, --debug) as it loads, on every command of its tree.
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
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            _add_common_options(found)
        return found

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

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:  # the root's own options
            _usage_error(e)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as e:
            _usage_error(e)
        except click.ClickException as e:
            _traceback()
            say(f"error: {_sentence(e.format_message())}", err=True)
            ctx.exit(e.exit_code)
        except TrustprovError as e:
            _traceback()
            say(f"error: {e.diagnostics()}", err=True)
            ctx.exit(EXIT_USAGE if isinstance(e, InputError) else EXIT_FAILED)
        except KeyboardInterrupt:
            _traceback()
            click.echo("error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as e:
            if isinstance(e, BrokenPipeError) and _stdout_closed():
                _silence_stdout()
                ctx.exit(EXIT_BROKEN_PIPE)
            _traceback()
            if _out_of_memory(e):
                click.echo("error: out of memory: the process hit its memory limit", err=True)
                ctx.exit(EXIT_FAILED)
            say(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as e:  # noqa: BLE001 - a bug, or the machine's memory limit
            _traceback()
            if _out_of_memory(e):
                # not a bug but the machine's limit (e.g. ulimit -v): say so
                click.echo("error: out of memory: the process hit its memory limit", err=True)
                ctx.exit(EXIT_FAILED)
            how = "the traceback above" if debug() else "what --debug prints (its traceback)"
            # nothing of the exception itself: a bug's message could hold anything
            click.echo(f"error: internal error, a bug in trustprov; please report {how}", err=True)
            ctx.exit(EXIT_FAILED)


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is, or was caused by, a MemoryError: under a memory limit the allocation
    that fails may be inside an import or a library, which raises its own error from it."""
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, MemoryError):
            return True
        # an import's directory scan or a library's mmap under the limit: ENOMEM, no MemoryError
        if isinstance(cause, OSError) and cause.errno == errno.ENOMEM:
            return True
        # a C extension loaded lazily under the limit: the loader's mmap fails (ENOMEM)
        if isinstance(cause, ImportError) and "failed to map segment" in str(cause):
            return True
        # a worker thread's stack under the limit: CPython's pthread_create fails (ENOMEM)
        if isinstance(cause, RuntimeError) and str(cause) == "can't start new thread":
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _add_common_options(command: click.Command) -> None:
    """-v, -q and --debug on ``command`` and every command below it (once)."""
    if not any(p.name == "verbose" for p in command.params):
        command.params.extend(common_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_common_options(sub)


#: click's wording of its number types, as a person says it ("'x' is not a valid integer range")
_CLICK_WORDING = (
    ("is not a valid integer range", "is not an integer"),
    ("is not a valid float range", "is not a number"),
    ("is not a valid float", "is not a number"),
    ("is not a valid integer", "is not an integer"),
)


def _sentence(message: str) -> str:
    """click's "Invalid value for ...: ... . Did you mean ...?" as one of our lines: lower case
    first, its sentences joined, a suggestion in parentheses, no full stop."""
    message = " ".join(message.split())
    for theirs, ours in _CLICK_WORDING:
        message = message.replace(theirs, ours)
    main, _, suggestion = message.partition(" Did you mean")
    parts = [p for p in main.rstrip(".").split(". ") if p]
    out = "; ".join(p[0].lower() + p[1:] if not p[1:2].isupper() else p for p in parts)
    return f"{out} (did you mean{suggestion})" if suggestion else out


def _usage_error(e: click.UsageError) -> NoReturn:
    """One line, exit 2: what is wrong and where the command's help is (click prints three).
    A group given no command is not an error of a line: it shows its help, as click does."""
    if isinstance(e, click.exceptions.NoArgsIsHelpError):
        e.show()
        raise click.exceptions.Exit(e.exit_code)
    where = f"; see '{e.ctx.command_path} --help'" if e.ctx is not None else ""
    say(f"error: {_sentence(e.format_message())}{where}", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)


def _traceback() -> None:
    """With --debug, the traceback of the error being handled, on stderr, before its line."""
    if debug():
        import traceback  # noqa: PLC0415 - only with --debug: start-up

        for line in traceback.format_exc().rstrip().splitlines():
            say(line, err=True)


@click.group(cls=TrustprovGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustprov")
def cli() -> None:
    """Provision secret assets into chips at an untrusted contract manufacturer.

    Three parties: the ICM (chip maker) makes chips and signs the provisioning software; the OEM
    seals its assets on its own chip; the CM runs the signed software on every chip, which
    installs the assets. The CM never sees a key or an asset.

    Every command takes -v/-vv (logs), -q (no progress or status) and --debug (a traceback on
    an error); with --json a command prints its result as one JSON object on stdout.
    """


cli.params.extend(common_options())


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
