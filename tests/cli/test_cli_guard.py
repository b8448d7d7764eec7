"""Guard: every leaf command of the click tree is invoked by some test of this package.

Like MCUboot imgtool's check that no command goes untested: a new command without a test fails
here. The tests record what they invoke through ``helpers.run`` (``--help`` does not count); the
guard is moved to the end of the run by ``conftest.py`` and only judges a run of the whole package.
"""

from __future__ import annotations

import pytest

from .helpers import INVOKED, command_path, leaf_commands

EXPECTED = {
    ("icm", "init"),
    ("icm", "sign-software"),
    ("icm", "manufacture"),
    ("oem", "verify-software"),
    ("oem", "keygen"),
    ("oem", "regen"),
    ("cm", "provision"),
    ("chip", "show"),
    ("demo",),
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
