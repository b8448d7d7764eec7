"""Guard: every leaf command of the click tree is invoked by some test of this package, and
every command has a help text whose one-line summary reads whole.

Like MCUboot imgtool's check that no command goes untested: a new command without a test fails
here. The tests record what they invoke through ``helpers.run`` (``--help`` does not count); the
guard is moved to the end of the run by ``conftest.py`` and only judges a run of the whole package.
A summary "reads whole" when the list of its group's commands shows it uncut (no "...") and it is
a sentence of at least two words: click's default cuts a docstring at its first full stop, so
"FIG. 3: run ..." was listed as "FIG.".
"""

from __future__ import annotations

import click
import pytest

from trustprov.cli.main import COMMANDS

from .helpers import INVOKED, command_path, leaf_commands, run, walk

#: click's help width, less the indent and the gap its command list leaves around the names
HELP_WIDTH = 80
MIN_WORDS = 2

EXPECTED = {
    ("icm", "init"),
    ("icm", "sign-software"),
    ("icm", "manufacture"),
    ("oem", "verify-software"),
    ("oem", "keygen"),
    ("oem", "regen"),
    ("cm", "provision"),
    ("chip", "show"),
    ("chip", "serve"),
    ("chip", "conformance"),
    ("inspect",),
    ("oem", "template"),
    ("demo",),
    ("line", "dashboard"),
}


def test_the_tree_walk_finds_the_fixed_interface() -> None:
    assert leaf_commands() >= EXPECTED


def test_command_path_resolution() -> None:
    assert command_path(["-v", "cm", "provision", "--farm", "x"]) == ("cm", "provision")
    assert command_path(["demo", "--chips", "5"]) == ("demo",)
    assert command_path(["icm"]) == ("icm",)
    assert command_path(["nope"]) == ()


def test_every_leaf_command_is_invoked(whole_package_ran: bool) -> None:
    if not whole_package_ran:
        pytest.skip("judges only a run of the whole tests/cli package")
    missing = sorted(" ".join(p) for p in leaf_commands() - INVOKED)
    assert not missing, f"commands no test invokes: {missing}"


def _listed() -> list[tuple[tuple[str, ...], click.Command, str]]:
    """(path, command, the summary its group's --help lists) for every command but the root."""
    rows = []
    for path, group in walk():
        if not isinstance(group, click.Group):
            continue
        ctx = click.Context(group)
        names = group.list_commands(ctx)
        limit = HELP_WIDTH - 6 - max(map(len, names))
        for name in names:
            command = group.get_command(ctx, name)
            assert command is not None
            rows.append(((*path, name), command, command.get_short_help_str(limit=limit)))
    return rows


@pytest.mark.parametrize(
    ("path", "command", "summary"),
    _listed(),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_command_has_help_and_a_whole_summary(
    path: tuple[str, ...], command: click.Command, summary: str
) -> None:
    assert (command.help or "").strip(), f"{' '.join(path)} has no --help text"
    assert not summary.endswith("..."), f"{' '.join(path)}: summary cut: {summary!r}"
    assert len(summary.split()) >= MIN_WORDS, f"{' '.join(path)}: summary {summary!r}"
    assert summary.endswith("."), f"{' '.join(path)}: summary {summary!r} is not a sentence"


def test_the_root_lists_each_commands_own_summary() -> None:
    """The root lists summaries without importing its commands: they must be the commands' own."""
    ctx = click.Context(walk().__next__()[1])
    root = dict(walk())[()]
    assert isinstance(root, click.Group)
    for name, (_, _, summary) in COMMANDS.items():
        command = root.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=1000) == summary, name


def test_sign_software_help_says_what_it_signs() -> None:
    text = " ".join(run("icm", "sign-software", "--help").stdout.split())
    for words in ("code", "firmware", "--security-version", "SHA-256", "K_PUK_ICM_PROV"):
        assert words in text, words
