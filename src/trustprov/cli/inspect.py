"""`trustprov inspect`: what any trustprov file is and what is public in it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trustprov.cli.output import emit_json, say

if TYPE_CHECKING:
    from trustprov.roles.inspect.description import Description

# what a file holds decides what to load: the roles are imported when the command runs


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--key",
    type=click.Path(path_type=Path),
    default=None,
    help="Signed software: also check its signature under this public key (PEM).",
)
@click.option(
    "--verify",
    "ca",
    type=click.Path(path_type=Path),
    default=None,
    help="Lot manifest: also check every chip's certificate against this device CA (PEM).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect(file: Path, key: Path | None, ca: Path | None, as_json: bool) -> None:
    """Say what FILE is and print what is public in it; never a secret.

    FILE is recognised by its content: signed software, a bundle or its manifest, a sealed
    value, a lot manifest, a chip farm, a records store, a key or certificate, an asset list,
    or the parties' metadata. A private key or the family secrets are named, never shown.
    Unknown or damaged input exits 2; a signature or certificate that fails --key or --verify
    exits 1.
    """
    from trustprov.roles.inspect import describe  # noqa: PLC0415 - lazy: start-up

    found = describe(file, key=key, ca=ca, database=_records)
    if as_json:
        emit_json(found.to_json(file))
        return
    say(f"{file}: {found.what}")
    for name, value in found.fields.items():
        _render(name, value)
    if found.note:
        say(f"  ({found.note})")


def _records(path: Path) -> Description | None:
    """The records store reader, loaded (with SQLAlchemy) only for an SQLite file."""
    from trustprov.line.inspect import describe_records  # noqa: PLC0415 - lazy: start-up

    return describe_records(path)


def _render(name: str, value: Any) -> None:
    label = name.replace("_", " ")
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        say(f"  {label}:")
        for item in value:
            say("    - " + ", ".join(f"{k.replace('_', ' ')} {_flat(v)}" for k, v in item.items()))
    else:
        say(f"  {label}: {_flat(value)}")


def _flat(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value) or "-"
    return str(value)
