"""`trustprov chip conformance`: run the conformance suite against the chip behind a port.

Renders only: the suite (`trustprov.conformance`) is imported inside the command, so `--help`
stays fast. Exit 0 when every case passed, 1 when any failed, 2 for a bad address or option.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from trustprov.cli.options import (
    EXIT_FAILED,
    emit_json,
    idle_timeout_option,
    json_option,
    say,
)


@click.command(short_help="Check the chip behind a port against the spec.")
@click.option("--port", "address", required=True, help="tcp://HOST:PORT or serial:///dev/X.")
@click.option(
    "--code",
    "code_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The firmware code the chip's ROM measures (default: the Python virtual chip's).",
)
@idle_timeout_option("Seconds of silence after which the chip ends an open session.")
@click.option(
    "--reply-timeout",
    type=click.FloatRange(0.05, 60),
    default=1.0,
    show_default=True,
    help="Seconds the chip may take to react to one frame.",
)
@click.option(
    "--power-cycle-cmd",
    "power_cmd",
    default=None,
    metavar="CMD",
    help="A command that cuts and restores the chip's power, run between the steps of the "
    "power-cut case (without it that case is skipped).",
)
@click.option(
    "--suite",
    type=click.Choice(
        ["EdDSA", "ES256", "ES384", "ML-DSA-65", "ML-DSA-87", "ES256+ML-DSA-65"],
        case_sensitive=False,
    ),
    default="EdDSA",
    show_default=True,
    help="The signature suite the test family's chip is burned for (protocol.md 5.1).",
)
@click.option("--case", "only", multiple=True, help="Run only this case (repeatable).")
@json_option("the results")
def conformance(
    address: str,
    code_file: Path | None,
    idle_timeout: float,
    reply_timeout: float,
    power_cmd: str | None,
    suite: str,
    only: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run the conformance suite (docs/porting.md) against the chip at --port: a blank chip,
    which the suite burns with the published test family, or one already of that family.

    Each case names the section of docs/protocol.md it checks and reports pass or fail with its
    evidence. The last cases provision and lock the chip: use a fresh chip for every run."""
    from trustprov.conformance.cases import CASES  # noqa: PLC0415 - lazy: start-up
    from trustprov.conformance.suite import Context, run_cases  # noqa: PLC0415 - lazy
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.link.address import parse_address  # noqa: PLC0415 - lazy: start-up

    parse_address(address)  # a malformed address is a usage error, before any case runs
    unknown = sorted(set(only) - {c.name for c in CASES})
    if unknown:
        raise InputError(f"--case: no case named {', '.join(unknown)}")
    _check_reachable(address)
    from trustprov.conformance.family import TestFamily  # noqa: PLC0415 - lazy: start-up

    ctx = Context(
        address,
        family=TestFamily.load().for_suite(_suite_name(suite)),
        code=code_file.read_bytes() if code_file else None,
        idle_timeout=idle_timeout,
        reply_timeout=reply_timeout,
        power_cycle=_power_cycle(power_cmd) if power_cmd else None,
    )
    results = run_cases(ctx, CASES, set(only) if only else None)
    skipped = [r.name for r in results if r.skipped]
    failed = [r for r in results if not r.passed]
    if as_json:
        emit_json(
            {
                "port": address,
                "passed": not failed,
                "cases": [r.to_json() for r in results],
                "failed": [r.name for r in failed],
                "skipped": skipped,
            }
        )
    else:
        for r in results:
            mark = "FAIL" if not r.passed else r.mark
            needs = f" [needs {r.needs}]" if r.needs and (r.skipped or not r.passed) else ""
            say(f"{mark}  {r.name:28} §{r.section}: {r.evidence}{needs}")
        ran = len(results) - len(skipped)
        tail = f"; skipped: {', '.join(skipped)}" if skipped else ""
        say(f"{ran - len(failed)} of {ran} cases passed{tail}")
    if failed:
        sys.exit(EXIT_FAILED)


def _suite_name(suite: str) -> str:
    """--suite as typed, in any case, to the suite's name."""
    from trustprov.crypto.keys import SUITES  # noqa: PLC0415 - lazy: start-up

    return next(s for s in SUITES if s.lower() == suite.lower())


def _power_cycle(command: str) -> Callable[[], None]:
    """--power-cycle-cmd: run CMD (split as a shell would, run without one); a non-zero exit
    fails the case that asked for the power cut."""
    import shlex  # noqa: PLC0415 - lazy: start-up
    import subprocess  # noqa: PLC0415 - lazy: start-up

    argv = shlex.split(command)

    def cycle() -> None:
        subprocess.run(argv, check=True, timeout=120)  # noqa: S603 - the user's own command

    return cycle


def _check_reachable(address: str) -> None:
    """A port that cannot be opened (no such device, nothing listening) is one line and exit
    1 before any case runs, not 27 failed cases: a transport failure, not a chip's answer."""
    from trustprov.link.address import open_stream  # noqa: PLC0415 - lazy: start-up

    open_stream(address).close()
