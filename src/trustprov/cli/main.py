"""`trustprov`: the root command, error rendering and exit codes.

Exit codes: 0 success; 1 a chip refused, an artifact failed to verify, or chips failed; 2 bad
input or usage; 130 interrupted. Every error is one line on stderr; data goes to stdout.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from trustprov import __version__
from trustprov.cli import chip, cm, demo, icm, oem
from trustprov.cli.options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from trustprov.errors import InputError, TrustprovError


class TrustprovGroup(click.Group):
    """Renders every trustprov error as one line and a non-zero exit, never a traceback."""

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


for command in (icm.icm, oem.oem, cm.cm, chip.chip, demo.demo):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="trustprov")
