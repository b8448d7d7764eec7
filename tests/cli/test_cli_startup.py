"""Start-up (issue 12): what `trustprov --help` and a station's workers import.

Timings are measured by bench/startup.py (`make bench`), never asserted here: machines are
shared and noisy. What is asserted is the cause of a slow start: the heavy libraries a command
does not use must not be imported at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "sqlalchemy",
    "rich",
    "psycopg",
    "cryptography",
    "trustprov.line.records",
    "trustprov.chip.device",
)


def _imported_after(code: str) -> set[str]:
    """The modules in sys.modules after ``code`` ran in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(proc.stdout.split())


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["icm", "--help"],
        ["oem", "--help"],
        ["oem", "keygen", "--help"],
        ["cm", "--help"],
        ["cm", "provision", "--help"],
        ["chip", "show", "--help"],
        ["inspect", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    modules = _imported_after(
        "from trustprov.cli.main import cli\n"
        f"try:\n    cli({argv!r}, prog_name='trustprov')\nexcept SystemExit:\n    pass"
    )
    assert "trustprov.cli.main" in modules  # the probe did run the command
    assert _heavy(modules) == []


def _every_command() -> list[list[str]]:
    """Every command of the tree, walked from the CLI itself (its modules load as it goes)."""
    import click  # noqa: PLC0415 - only these tests

    from trustprov.cli.main import cli  # noqa: PLC0415 - only these tests

    found: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        found.append(path)
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                walk(sub, [*path, name])

    walk(cli, [])
    return found


def test_loading_every_command_imports_nothing_heavy() -> None:
    """Issue 24, item 7: each command's module imports what its options need, nothing more; the
    store's engine (SQLAlchemy), rich, the chips and the roles load when a command runs."""
    walker = (
        "import click\n"
        "from trustprov.cli.main import cli\n"
        "def walk(c):\n"
        "    if isinstance(c, click.Group):\n"
        "        ctx = click.Context(c)\n"
        "        for n in c.list_commands(ctx):\n"
        "            walk(c.get_command(ctx, n))\n"
        "walk(cli)"
    )
    modules = _imported_after(walker)
    assert {"trustprov.cli.demo", "trustprov.cli.cm", "trustprov.cli.chip"} <= modules
    assert _heavy(modules) == []


@pytest.mark.parametrize("argv", _every_command(), ids=lambda p: " ".join(p) or "root")
def test_every_command_parses_its_arguments_without_heavy_imports(argv: list[str]) -> None:
    """Parsing a command line (here --help, which every command takes) loads no records store,
    no rich and no chip: those are imported by the command's body when it runs."""
    modules = _imported_after(
        "from trustprov.cli.main import cli\n"
        f"try:\n    cli({[*argv, '--help']!r}, prog_name='trustprov')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code"
    )
    # `--alg` (icm init, sign-software) names crypto.keys' suites, so it loads cryptography
    assert [m for m in _heavy(modules) if m.split(".")[0] != "cryptography"] == []


def test_a_missing_records_store_is_reported_before_the_engine_loads(tmp_path: Path) -> None:
    """`cm report --records sqlite:///PATH` of no file says so without importing SQLAlchemy."""
    url = f"sqlite:///{tmp_path / 'none.sqlite'}"
    modules = _imported_after(
        "from trustprov.cli.main import cli\n"
        f"try:\n    cli({['cm', 'report', '--records', url]!r}, prog_name='trustprov')\n"
        "except SystemExit as e:\n    assert e.code == 2, e.code"
    )
    assert "trustprov.cli.cm" in modules
    assert [m for m in modules if m.split(".")[0] == "sqlalchemy"] == []


def test_a_lot_name_is_checked_without_cryptography(tmp_path: Path) -> None:
    """Every `--lot` is checked while the options are parsed (formats.lot_name): a report of a
    store imports no X.509 code for it (it cost `cm report` some 30 ms of its start)."""
    url = f"sqlite:///{tmp_path / 'none.sqlite'}"
    modules = _imported_after(
        "from trustprov.cli.main import cli\n"
        f"try:\n    cli({['cm', 'report', '--records', url, '--lot', 'LOT-1']!r}, "
        "prog_name='trustprov')\n"
        "except SystemExit as e:\n    assert e.code == 2, e.code"
    )
    assert "trustprov.formats.lot_name" in modules
    assert [m for m in modules if m.split(".")[0] == "cryptography"] == []


def test_a_worker_imports_no_records_store() -> None:
    """A station's worker process starts from line.worker: the chips, never SQLAlchemy."""
    modules = _imported_after("import trustprov.line.worker")
    assert "trustprov.roles.cm" in modules
    assert [m for m in modules if m.split(".")[0] in ("sqlalchemy", "rich", "click")] == []


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trustprov", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: trustprov")


def test_importing_main_module_runs_nothing() -> None:
    """A spawned worker imports __main__ as __mp_main__: that must not load the command line."""
    modules = _imported_after("import runpy\nrunpy.run_module('trustprov', run_name='__mp_main__')")
    assert "trustprov.cli.main" not in modules


def test_inspecting_a_file_loads_no_records_store(tmp_path: Path) -> None:
    """Only an SQLite file makes inspect load the records store's reader (SQLAlchemy)."""
    path = tmp_path / "oem.json"
    path.write_text('{"family": "00", "alg": "ES256", "created-by": "x"}')
    modules = _imported_after(
        "from trustprov.cli.main import cli\n"
        f"try:\n    cli(['inspect', {str(path)!r}], prog_name='trustprov')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code"
    )
    assert "trustprov.roles.inspect" in modules
    assert _heavy(modules) == []


def test_reading_an_sqlite_store_loads_no_cm_role_and_no_postgresql(tmp_path: Path) -> None:
    """Issue 24, item 7: `cm report` of an SQLite store imports the store, not the CM's role
    (claims name its Outcome type only) nor the PostgreSQL dialect or driver."""
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - only this test

    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    with RecordStore(url) as w:
        w.open_job("LOT-1", "ab" * 16, ["00" * 16])
    argv = ["cm", "report", "--records", url, "--json"]
    modules = _imported_after(
        "from trustprov.cli.main import cli\n"
        f"try:\n    cli({argv!r}, prog_name='trustprov')\nexcept SystemExit:\n    pass"
    )
    assert "trustprov.line.records" in modules  # the probe did read the store
    unused = ("trustprov.roles.cm", "sqlalchemy.dialects.postgresql", "psycopg")
    assert sorted(m for m in modules if m.startswith(unused)) == []
