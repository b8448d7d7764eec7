"""Every command has --help; the fixed interface that other tools drive is there; entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from trustprov import __version__
from trustprov import demo as flow

from .helpers import assert_error, describe, run, walk

ALL_PATHS = [path for path, _ in walk()]

# The fixed interface (other tests outside this repository drive it): options per command.
INTERFACE: dict[tuple[str, ...], set[str]] = {
    ("icm", "init"): {"--alg", "--keys"},
    ("icm", "sign-software"): {"--icm", "--out", "--version", "--security-version", "--alg"},
    ("icm", "manufacture"): {"--icm", "--farm", "--lot", "--count", "--manifest"},
    ("oem", "verify-software"): {"--key"},
    ("oem", "keygen"): {"--farm", "--chip", "--software", "--assets", "--out"},
    ("oem", "regen"): {"--farm", "--chip", "--software", "--state", "--assets", "--out"},
    ("cm", "provision"): {
        "--farm",
        "--lot",
        "--software",
        "--share",
        "--bundle",
        "--records",
        "--jobs",
        "--json",
    },
    ("chip", "show"): {"--farm", "--chip", "--json"},
    ("demo",): {"--chips", "--out", "--json", "--icm-keys"},
}
ARGUMENTS = {("icm", "init"): ["icm_dir"], ("oem", "verify-software"): ["software"]}


def _ids(path: tuple[str, ...]) -> str:
    return " ".join(path) or "trustprov"


@pytest.mark.parametrize("path", ALL_PATHS, ids=_ids)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(path: tuple[str, ...], flag: str) -> None:
    result = run(*path, flag)
    assert result.exit_code == 0, describe(result)
    assert result.exception is None
    assert result.stdout.startswith("Usage: trustprov"), describe(result)
    assert result.stderr == ""


def test_root_help_lists_the_parties() -> None:
    out = run("--help").stdout
    for group in ("icm", "oem", "cm", "chip", "demo"):
        assert f"  {group} " in out


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("path", sorted(INTERFACE), ids=_ids)
def test_fixed_interface(path: tuple[str, ...]) -> None:
    command = dict(walk())[path]
    options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
    missing = INTERFACE[path] - options
    assert not missing, f"{_ids(path)} lacks {missing}"
    arguments = [p.name for p in command.params if isinstance(p, click.Argument)]
    assert arguments == ARGUMENTS.get(path, [])


def test_unknown_command_is_a_usage_error() -> None:
    result = run("fab")
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _console_script() -> Path:
    script = Path(sys.executable).parent / "trustprov"
    if not script.exists():
        pytest.skip("the trustprov console script is not installed beside this Python")
    return script


def test_console_script_error_is_one_line(tmp_path: Path) -> None:
    """A real process: exit code, one stderr line, no traceback."""
    proc = subprocess.run(
        [_console_script(), "chip", "show", "--farm", tmp_path / "none.farm", "--chip", "zz"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_console_script_help() -> None:
    proc = subprocess.run(
        [_console_script(), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: trustprov")


# -- error rendering in main: interrupts and OS errors are one line too ----------------------
def test_interrupt_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(flow, "run", interrupted)
    assert_error(run("demo", "--chips", "1", "--out", tmp_path / "run"), exit_code=130)


def test_os_error_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def denied(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "run"))

    monkeypatch.setattr(flow, "run", denied)
    line = assert_error(run("demo", "--chips", "1", "--out", tmp_path / "run"), exit_code=2)
    assert "Permission denied" in line
    assert str(tmp_path / "run") in line


def test_root_option_before_a_bad_command_input(tmp_path: Path) -> None:
    """-v (logging) does not change the error contract."""
    assert_error(
        run("-v", "chip", "show", "--farm", tmp_path / "none.farm", "--chip", "00" * 16),
        exit_code=2,
        match="farm",
    )
