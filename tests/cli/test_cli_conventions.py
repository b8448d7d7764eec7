"""The output conventions of issue 12 (item 4), the same on every command.

Driven by the command tree (`helpers.walk`) and the good runs of `runs.py`, not by a list of
names: a new command is covered at once, and fails until it follows the conventions or a table
says why it is exempt.

- `--json` on every command with a result; with it, stdout holds one JSON object and nothing
  else (status, progress and logs go to stderr);
- -v/-vv/-q/--debug on every command, root and subcommands; -vv logs each chip, -v does not;
  a bug is one line, and --debug shows its traceback;
- `python -m trustprov` and shell completion.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from .conftest import CliWorld
from .helpers import assert_error, describe, ok, run
from .runs import (
    ALL,
    COMMANDS,
    LEAVES,
    NO_RESULT,
    RUN_ELSEWHERE,
    RUNS,
    Path_,
    command_line,
    ids,
    options_of,
    provision_run,
)


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad argument that a command takes for a path writes there, never into the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("path", LEAVES, ids=ids)
def test_every_command_with_a_result_takes_json(path: Path_) -> None:
    if path in NO_RESULT:
        assert "--json" not in options_of(COMMANDS[path]), f"{ids(path)}: drop it from NO_RESULT"
        return
    assert "--json" in options_of(COMMANDS[path]), f"{ids(path)} has a result but no --json"


def test_the_commands_run_elsewhere_are_commands_with_a_result() -> None:
    """Each command whose --json run is in another file (it needs a chip board) is a command
    with a result that the run below leaves out, named with where it runs."""
    for path, where in RUN_ELSEWHERE.items():
        assert path in LEAVES, ids(path)
        assert path not in NO_RESULT, ids(path)
        assert (Path(__file__).parent / where.split()[0]).is_file(), where


@pytest.mark.parametrize(
    "path", [p for p in LEAVES if p not in NO_RESULT and p not in RUN_ELSEWHERE], ids=ids
)
def test_json_is_one_object_on_stdout_and_nothing_else(
    cw: CliWorld, tmp_path: Path, path: Path_
) -> None:
    assert path in RUNS, f"add a good run of {ids(path)} to RUNS"
    result = ok(*command_line(path, RUNS[path](cw, tmp_path), "--json"))
    doc = json.loads(result.stdout)  # the whole of stdout: one document
    assert isinstance(doc, dict), describe(result)
    assert "{" not in result.stderr, describe(result)  # no data on stderr


# -- -v/-vv/-q/--debug -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL, ids=ids)
def test_every_command_takes_the_common_options(path: Path_) -> None:
    assert {"-v", "--verbose", "-q", "--quiet", "--debug"} <= options_of(COMMANDS[path])


def test_vv_logs_each_chip_and_v_does_not(cw: CliWorld, tmp_path: Path) -> None:
    path = ("cm", "provision")
    v = ok(*command_line(path, provision_run(cw, tmp_path / "1"), "-v"))
    vv = ok(
        "-v", *command_line(path, provision_run(cw, tmp_path / "2"), "-v")
    )  # root and command add up
    for uid in cw.a.cm_uids:
        assert f"chip {uid}: provisioned" in vv.stderr, describe(vv)
        assert uid not in v.stderr, describe(v)
    assert "DEBUG" in vv.stderr
    assert "INFO" in v.stderr, describe(v)
    assert "DEBUG" not in v.stderr, describe(v)


def test_vv_logs_each_chip_made(cw: CliWorld, tmp_path: Path) -> None:
    path = ("icm", "manufacture")
    result = ok(*command_line(path, RUNS[path](cw, tmp_path), "-vv"))
    uids = [c["uid"] for c in json.loads((tmp_path / "lot.json").read_text())["chips"]]
    for uid in uids:
        assert f"chip {uid}: made" in result.stderr, describe(result)


def test_q_silences_status_not_data(cw: CliWorld, tmp_path: Path) -> None:
    path = ("cm", "receipts")
    for d in ("1", "2", "3"):
        (tmp_path / d).mkdir()
    loud = ok(*command_line(path, RUNS[path](cw, tmp_path / "1")))
    quiet = ok(*command_line(path, RUNS[path](cw, tmp_path / "2"), "-q"))
    assert "receipts written" in loud.stderr
    assert quiet.stderr == ""
    assert_error(run(*command_line(path, RUNS[path](cw, tmp_path / "3"), "-q", "-v")), exit_code=2)


def test_a_bug_is_one_line_and_debug_shows_its_traceback(
    cw: CliWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustprov.roles import oem as role  # noqa: PLC0415 - patched for this test only

    def bug(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("SECRET-LOOKING DETAIL")

    monkeypatch.setattr(role, "verify_software", bug)
    path = ("oem", "verify-software")
    plain = run(*command_line(path, RUNS[path](cw, tmp_path)))
    line = assert_error(plain, exit_code=1, match="internal error")
    assert "--debug" in line
    assert "SECRET-LOOKING" not in line
    debug = run(*command_line(path, RUNS[path](cw, tmp_path), "--debug"))
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr
    assert "RuntimeError" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("error: internal error")


def test_debug_shows_the_traceback_of_an_error_too(tmp_path: Path) -> None:
    result = run("--debug", "chip", "show", "--farm", tmp_path / "none.farm", "--chip", "00" * 16)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")


# -- python -m trustprov, shell completion ---------------------------------------------------------
def test_python_m_trustprov_is_the_same_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trustprov",
            "chip",
            "show",
            "--farm",
            tmp_path / "x",
            "--chip",
            "z",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert proc.stderr.count("\n") == 1
    help_ = subprocess.run(
        [sys.executable, "-m", "trustprov", "--help"], capture_output=True, text=True, check=True
    )
    assert help_.stdout.startswith("Usage: trustprov")


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "complete "), ("zsh", "compdef"), ("fish", "complete ")]
)
def test_shell_completion_produces_a_script(shell: str, marker: str) -> None:
    """As docs/cli.md says: eval "$(_TRUSTPROV_COMPLETE=bash_source trustprov)"."""
    script = Path(sys.executable).parent / "trustprov"
    if not script.exists():
        pytest.skip("the trustprov console script is not installed beside this Python")
    proc = subprocess.run(
        [script],
        env={"_TRUSTPROV_COMPLETE": f"{shell}_source", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert marker in proc.stdout
    assert "_TRUSTPROV_COMPLETE" in proc.stdout
    words = subprocess.run(
        [script],
        env={
            "_TRUSTPROV_COMPLETE": "bash_complete",
            "COMP_WORDS": "trustprov c",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "cm" in words.stdout
    assert "chip" in words.stdout


def test_one_chip_is_one_chip(cw: CliWorld, tmp_path: Path) -> None:
    positional, options = RUNS["icm", "manufacture"](cw, tmp_path)
    out = ok(
        *command_line(("icm", "manufacture"), (positional, {**options, "--count": "1"}))
    ).stdout
    assert "lot L: 1 chip of family" in out
    shown = ok("chip", "show", "--farm", tmp_path / "f.farm", "--lot", "L").stdout
    assert shown.startswith("lot L: 1 chip\n")


@pytest.mark.parametrize("path", [p for p in ALL if isinstance(COMMANDS[p], click.Group)], ids=ids)
def test_a_group_given_no_command_shows_its_help(path: Path_) -> None:
    """Not an error line holding the whole help text: the help itself, as click shows it."""
    result = run(*path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Usage: trustprov {' '.join(path)}".rstrip())
    assert "error:" not in result.stderr
