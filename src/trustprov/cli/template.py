"""`trustprov oem template`: print or write the commented asset list (docs/assets.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(short_help="Print a commented asset list to start from.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write it to this new file instead of printing it.",
)
def template(out: Path | None) -> None:
    """Print a commented asset list to start from: every field and kind explained.

    It is a valid asset list as it stands: replace the example's names, slots, regions and
    files with your own. The reference is docs/assets.md.
    """
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.files import write_file  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.oem.assets.template import TEMPLATE  # noqa: PLC0415 - lazy: start-up

    if out is None:
        click.echo(TEMPLATE, nl=False)
        return
    if out.exists():
        raise InputError(f"{out} exists; refusing to overwrite it")
    write_file(out, TEMPLATE.encode(), kind="asset-list")
    from trustprov.cli.output import status  # noqa: PLC0415 - lazy: start-up

    status(f"asset list template: {out}")
