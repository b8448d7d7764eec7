"""`trustprov chip conformance`: run the conformance suite against the chip behind a port.

Renders only: the suite (`trustprov.conformance`) is imported inside the command, so `--help`
stays fast. Exit 0 when every case passed, 1 when any failed, 2 for a bad address or option.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from trustprov.cli.options import (
    EXIT_FAILED,
    board_token_file_option,
    idle_timeout_option,
    json_option,
)
from trustprov.cli.output import emit_json, say


@click.command(short_help="Check the chip behind a port against the spec.")
@click.option("--port", "address", default=None, help="tcp://HOST:PORT or serial:///dev/X.")
@click.option(
    "--board",
    "board",
    default=None,
    metavar="tcp://HOST:PORT",
    help="A chip board's handler: the suite seats a blank chip of the board's tray in --socket "
    "and powers it through the handler (instead of --port).",
)
@click.option(
    "--socket",
    "socket_index",
    type=click.IntRange(0, 65535),
    default=None,
    help="With --board: the socket the chip is seated in (default 0).",
)
@click.option(
    "--chip",
    "chip_uid",
    default=None,
    metavar="UID",
    help="With --board: seat this chip (32 hex digits; default: the first blank chip of the tray).",
)
@board_token_file_option(
    "With --board: a file whose first line is the board's handler token (also from "
    "TRUSTPROV_BOARD_TOKEN)."
)
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
    address: str | None,
    board: str | None,
    socket_index: int | None,
    chip_uid: str | None,
    board_token_file: Path | None,
    code_file: Path | None,
    idle_timeout: float,
    reply_timeout: float,
    power_cmd: str | None,
    suite: str,
    only: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run the conformance suite (docs/porting.md) against the chip at --port: a blank chip,
    which the suite burns with the published test family, or one already of that family; or
    against a blank chip of a board's tray, seated in --socket of --board through its handler.

    Each case names the section of docs/protocol.md it checks and reports pass or fail with its
    evidence. The last cases provision and lock the chip: use a fresh chip for every run."""
    from trustprov.conformance.cases import CASES  # noqa: PLC0415 - lazy: start-up
    from trustprov.conformance.suite import Context, run_cases  # noqa: PLC0415 - lazy
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.link.address import parse_address  # noqa: PLC0415 - lazy: start-up

    if (address is None) == (board is None):
        raise InputError("give the chip's --port, or a --board and its --socket: one of them")
    if board is None and (socket_index is not None or chip_uid or board_token_file):
        raise InputError("--socket, --chip and --board-token-file go with --board")
    unknown = sorted(set(only) - {c.name for c in CASES})
    if unknown:
        raise InputError(f"--case: no case named {', '.join(unknown)}")
    power = _power_cycle(power_cmd) if power_cmd else None
    seated = None
    if board is not None:  # a blank chip of the tray; its power through the handler
        seated = _seat(board, socket_index or 0, chip_uid, board_token_file, reply_timeout)
        address, power = seated.address, power or seated.power_cycle
    else:
        assert address is not None  # noqa: S101 - one of the two, checked above
        parse_address(address)  # a malformed address is a usage error, before any case runs
        _check_reachable(address)
    from trustprov.conformance.family import TestFamily  # noqa: PLC0415 - lazy: start-up

    ctx = Context(
        address,
        family=TestFamily.load().for_suite(_suite_name(suite)),
        code=code_file.read_bytes() if code_file else None,
        idle_timeout=idle_timeout,
        reply_timeout=reply_timeout,
        power_cycle=power,
    )
    results = run_cases(ctx, CASES, set(only) if only else None)
    skipped = [r.name for r in results if r.skipped]
    failed = [r for r in results if not r.passed]
    if as_json:
        emit_json(
            {
                "port": address,
                **({"chip": seated.uid.hex(), "board": board} if seated else {}),
                "passed": not failed,
                "cases": [r.to_json() for r in results],
                "failed": [r.name for r in failed],
                "skipped": skipped,
            }
        )
    else:
        if seated is not None:
            say(f"chip {seated.uid.hex()} seated in socket {seated.socket} of {board}")
        for r in results:
            mark = "FAIL" if not r.passed else r.mark
            needs = f" [needs {r.needs}]" if r.needs and (r.skipped or not r.passed) else ""
            say(f"{mark}  {r.name:28} §{r.section}: {r.evidence}{needs}")
        ran = len(results) - len(skipped)
        tail = f"; skipped: {', '.join(skipped)}" if skipped else ""
        say(f"{ran - len(failed)} of {ran} cases passed{tail}")
    if failed:
        sys.exit(EXIT_FAILED)


def _seat(
    board: str, socket_index: int, chip_uid: str | None, token_file: Path | None, timeout: float
) -> Any:
    """A blank chip of the board's tray in the socket (`conformance.seat`)."""
    from trustprov.cli.options import read_board_token  # noqa: PLC0415 - lazy: start-up
    from trustprov.conformance.seat import seat_fresh_chip  # noqa: PLC0415 - lazy: start-up
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.link.handler import parse_tcp  # noqa: PLC0415 - lazy: start-up

    parse_tcp(board)
    chip = None
    if chip_uid is not None:
        try:
            chip = bytes.fromhex(chip_uid)
        except ValueError:
            chip = b""
        if len(chip) != 16:
            raise InputError(f"--chip {chip_uid[:40]!r} is not a UID of 32 hex digits")
    token = read_board_token(token_file, "--board-token-file")
    return seat_fresh_chip(board, socket_index, chip=chip, token=token, reply_timeout=timeout)


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
