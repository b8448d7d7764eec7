"""trustprov.cli.options: an option that several commands take is one option (issue 24, item 9).

Walking the whole command tree, every option of a shared name has the same type, bounds and
default on every command that takes it (its help may say what that command does with it).
"""

from __future__ import annotations

import click
import pytest

from trustprov.cli.main import cli
from trustprov.cli.options import IDLE_TIMEOUT_MAX

SHARED = ("--auth", "--icm-key", "--idle-timeout", "--records-password-file")


def _options(name: str) -> dict[str, click.Option]:
    """Every command of the tree that takes ``name``: its path, and the option."""
    found: dict[str, click.Option] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and name in param.opts:
                found[" ".join(path)] = param
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for sub in command.list_commands(ctx):
                child = command.get_command(ctx, sub)
                assert child is not None
                walk(child, (*path, sub))

    walk(cli, ())
    return found


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_option_is_the_same_on_every_command(name: str) -> None:
    found = _options(name)
    assert len(found) >= 2, f"{name} is taken by {sorted(found)} only"
    shapes = {
        path: (str(o.type.to_info_dict()), o.default, o.multiple, o.is_flag, o.name)
        for path, o in found.items()
    }
    assert len(set(shapes.values())) == 1, shapes


def test_the_idle_timeout_has_one_bound() -> None:
    found = _options("--idle-timeout")
    assert set(found) == {"chip serve", "chip run", "chip conformance"}
    for option in found.values():
        assert isinstance(option.type, click.FloatRange)
        assert (option.type.min, option.type.max, option.default) == (0.05, IDLE_TIMEOUT_MAX, 10.0)
