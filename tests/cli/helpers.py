"""Helpers of the CLI tests: invoking `trustprov`, the error contract, the command tree.

Every test invokes the CLI through :func:`run`, which records the leaf command each invocation
reaches (``--help`` excluded), so that ``test_cli_guard.py`` can fail when a command of the tree
is never exercised by any test.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import click
from click.testing import CliRunner, Result
from helpers import ASSET_ENTRIES  # tests/helpers.py: the conftest asset list

from trustprov.cli.main import cli
from trustprov.link.farm_link import FarmLink

# The known secret values of the asset lists (the same as tests/conftest.py's KEY1, KEY2).
KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))
FIRMWARE_LEN = 40_000  # three chunks of 16 KiB

ASSETS_TOML = "[bundle]\nepoch = {epoch}\n" + ASSET_ENTRIES

HELP_FLAGS = frozenset({"--help", "-h"})
INVOKED: set[tuple[str, ...]] = set()  # leaf command paths the tests invoked


def firmware_bytes() -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(FIRMWARE_LEN))


def write_assets(d: Path, *, epoch: int = 1, toml: str | None = None) -> Path:
    """An asset directory with the known keys and firmware; returns its assets.toml."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "key2.bin").write_bytes(KEY2)
    (d / "fw.bin").write_bytes(firmware_bytes())
    path = d / "assets.toml"
    path.write_text(toml if toml is not None else ASSETS_TOML.format(epoch=epoch, key1=KEY1.hex()))
    return path


# -- the command tree ------------------------------------------------------------------------
def walk(
    command: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree with its path, the root (path ``()``) first."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1] if path else "trustprov")
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from walk(sub, (*path, name))


def leaf_commands() -> set[tuple[str, ...]]:
    return {p for p, c in walk() if not isinstance(c, click.Group)}


def command_path(argv: Sequence[str]) -> tuple[str, ...]:
    """The path of the command an argument list reaches (root options such as -v skipped)."""
    command: click.Command = cli
    path: list[str] = []
    for arg in argv:
        if not isinstance(command, click.Group):
            break
        if arg.startswith("-"):
            continue
        # get_command, not .commands: the root loads its subcommands lazily
        sub = command.get_command(click.Context(command), arg)
        if sub is None:
            break
        command = sub
        path.append(arg)
    return tuple(path)


# -- invoking --------------------------------------------------------------------------------
def run(*args: str | Path, record: bool = True) -> Result:
    """Invoke `trustprov ARGS` in process; stdout and stderr are kept apart (click >= 8.2)."""
    argv = [str(a) for a in args]
    if record and not HELP_FLAGS & set(argv):
        path = command_path(argv)
        if path in leaf_commands():
            INVOKED.add(path)
    return CliRunner().invoke(cli, argv, prog_name="trustprov")


def describe(result: Result) -> str:
    return (
        f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        f"\n--- exception {result.exception!r}"
    )


def ok(*args: str | Path, record: bool = True) -> Result:
    """Invoke and require success without a stray exception."""
    result = run(*args, record=record)
    assert result.exit_code == 0, describe(result)
    assert result.exception is None, describe(result)
    return result


def assert_no_crash(result: Result) -> None:
    """No traceback, no exception other than the exit itself."""
    assert result.exception is None or isinstance(result.exception, SystemExit), describe(result)
    assert "Traceback" not in result.output, describe(result)
    assert "Traceback" not in result.stderr, describe(result)


def assert_error(result: Result, *, exit_code: int | None = None, match: str | None = None) -> str:
    """The error contract: non-zero exit, exactly one line on stderr 'error: ...', no traceback.

    Returns the error line.
    """
    assert_no_crash(result)
    assert result.exit_code != 0, describe(result)
    if exit_code is not None:
        assert result.exit_code == exit_code, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("error: "), describe(result)
    if match is not None:
        assert match.lower() in lines[0].lower(), describe(result)
    return lines[0]


# -- files and chips -------------------------------------------------------------------------
def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every entry under ``path`` (or ``path`` itself) with its bytes; for 'unchanged' checks."""
    if not path.exists():
        return {}
    if path.is_file():
        return {".": path.read_bytes()}
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(path.rglob("*"))
    }


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def copy_farm(src: Path, dest_dir: Path, name: str | None = None) -> Path:
    """A private copy of a farm file (and its SQLite side files if any)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / (name or src.name)
    shutil.copyfile(src, target)
    for suffix in ("-wal", "-shm"):
        side = src.with_name(src.name + suffix)
        if side.exists():
            shutil.copyfile(side, target.with_name(target.name + suffix))
    return target


def lifecycles(farm: Path, lot: str) -> dict[str, str]:
    """UID (hex) -> lifecycle of every chip of ``lot``, read through the link like any host."""
    out = {}
    with FarmLink(farm) as f:
        for uid in f.uids(lot):
            with f.connect(uid) as chip:
                out[uid.hex()] = chip.status()["lifecycle"]
    return out


def flip(data: bytes, offset: int) -> bytes:
    """``data`` with one bit flipped at ``offset`` (negative counts from the end)."""
    b = bytearray(data)
    b[offset] ^= 0x01
    return bytes(b)


def secret_forms(secret: bytes) -> list[str]:
    """Ways a secret could show up in text output."""
    return [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode()]
