"""Shared option types: UIDs, existing files, output paths."""

from __future__ import annotations

import json
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


def emit_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))
