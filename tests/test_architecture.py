"""Imports run downward only (docs/design.md, "Architecture").

Host code (roles, line, cli) reaches chips only through `trustprov.link`: what a host learns
from a chip is what crosses the link, exactly as with silicon. The firmware and the link never
reach the test-only probe. The pure core (crypto, formats) depends on nothing above it.
`trustprov/demo.py` is the demo's test harness and may use the probe.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "trustprov"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module the file ``path`` (under src/trustprov) imports."""
    return imports_in(
        path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py"
    )


def imports_in(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` (module ``module``) imports, made absolute, with each
    ``from M import n`` also as ``M.n`` (n may be a submodule)."""
    tree = ast.parse(source)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:  # importlib.import_module("...")
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in ("import_module", "__import__"):
                    found.add(first.value)
    return found


def _files(*packages: str) -> list[Path]:
    files: list[Path] = []
    for package in packages:
        target = SRC / package
        files.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    assert files, packages
    return files


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{f.relative_to(SRC)}: {name}"
        for f in files
        for name in imports_of(f)
        if any(_under(name, p) for p in forbidden)
    )


def test_the_import_parser_sees_every_form() -> None:
    source = (
        "import trustprov.chip.device\n"
        "from trustprov.firmware import commands\n"
        "from ..chip.model import Lifecycle\n"
        "from . import files\n"
        "import importlib\n"
        "importlib.import_module('trustprov.chip.probe')\n"
        "def f():\n"
        "    from trustprov.link import farm_link as farm\n"
    )
    found = imports_in(source, "trustprov.roles.sample")
    for name in (
        "trustprov.chip.device",
        "trustprov.firmware.commands",
        "trustprov.chip.model.Lifecycle",
        "trustprov.roles.files",
        "trustprov.chip.probe",
        "trustprov.link.farm_link",
    ):
        assert name in found, name
    assert "trustprov.crypto" in imports_in(
        "from .. import crypto", "trustprov.roles", is_package=True
    )
    assert imports_of(SRC / "roles" / "cm.py") >= {"trustprov.link.client"}


@pytest.mark.parametrize("package", ["roles", "line", "cli", "conformance", "dashboard"])
def test_host_code_reaches_chips_only_through_the_link(package: str) -> None:
    bad = _violations(_files(package), ("trustprov.chip", "trustprov.firmware"))
    assert not bad, f"host code imports chip internals or firmware: {bad}"


@pytest.mark.parametrize("package", ["roles", "line", "cli", "conformance", "dashboard"])
def test_host_code_names_no_chip_module_in_strings(package: str) -> None:
    """No ``importlib`` detour: host code does not even spell a chip or firmware module name."""
    bad = []
    for f in _files(package):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and ("trustprov.chip" in text or "trustprov.firmware" in text):
                bad.append(f"{f.relative_to(SRC)}: {text!r}")
    assert not bad


@pytest.mark.parametrize("package", ["firmware", "link"])
def test_firmware_and_link_never_use_the_probe(package: str) -> None:
    bad = _violations(_files(package), ("trustprov.chip.probe",))
    assert not bad, f"the test-only probe is reachable from {package}: {bad}"


@pytest.mark.parametrize("package", ["crypto", "formats"])
def test_the_pure_core_imports_nothing_above_it(package: str) -> None:
    above = tuple(
        f"trustprov.{p}" for p in ("chip", "firmware", "link", "roles", "line", "cli", "demo")
    )
    bad = _violations(_files(package), above)
    assert not bad, f"{package} imports from above: {bad}"


def test_only_tests_and_the_demo_use_the_probe() -> None:
    users = sorted(
        str(f.relative_to(SRC))
        for f in SRC.rglob("*.py")
        if any(_under(n, "trustprov.chip.probe") for n in imports_of(f))
    )
    assert set(users) <= {"demo.py"}, users


def test_the_dashboard_is_a_front_end_beside_the_cli() -> None:
    """It reads the line's records; nothing below it (nor the board) imports it, and of the
    CLI only `line dashboard` and `cm report --html` do."""
    below = (
        "crypto",
        "formats",
        "chip",
        "firmware",
        "link",
        "roles",
        "line",
        "board",
        "conformance",
    )
    bad = _violations(_files(*below), ("trustprov.dashboard",))
    assert not bad, f"imports the dashboard from below: {bad}"
    assert not _violations(_files("dashboard"), ("trustprov.cli", "trustprov.board"))
    users = sorted(
        str(f.relative_to(SRC))
        for f in _files("cli")
        if any(_under(n, "trustprov.dashboard") for n in imports_of(f))
    )
    assert users == ["cli/cm_report.py", "cli/line.py"], users


@pytest.mark.parametrize("package", ["roles", "line", "conformance", "dashboard"])
def test_host_code_never_imports_the_board(package: str) -> None:
    """The board is chip-side: a station reaches its chips only over the wire."""
    bad = _violations(_files(package), ("trustprov.board",))
    assert not bad, f"host code imports the chip board: {bad}"


def test_only_chip_serve_imports_the_board() -> None:
    users = sorted(
        str(f.relative_to(SRC))
        for f in _files("cli", "demo.py")
        if any(_under(n, "trustprov.board") for n in imports_of(f))
    )
    assert users == ["cli/serve.py"], users


def test_the_board_uses_only_the_chip_side() -> None:
    """A board may use chip/, firmware/ and the chip's port; no host module."""
    above = ("trustprov.roles", "trustprov.line", "trustprov.cli", "trustprov.demo")
    bad = _violations(_files("board"), above)
    links = sorted(
        f"{f.relative_to(SRC)}: {n}"
        for f in _files("board")
        for n in imports_of(f)
        if _under(n, "trustprov.link") and not _under(n, "trustprov.link.port")
    )
    assert not bad, f"the board imports host code: {bad}"
    assert not links, f"the board uses the host's link: {links}"


def test_the_conformance_suite_is_a_host_of_its_own() -> None:
    """Beside roles/ and line/: it uses neither, and no host module but the CLI uses it."""
    bad = _violations(_files("conformance"), ("trustprov.roles", "trustprov.line", "trustprov.cli"))
    assert not bad, f"the suite leans on another host: {bad}"
    users = sorted(
        str(f.relative_to(SRC))
        for f in _files("roles", "line", "board", "link")
        if any(_under(n, "trustprov.conformance") for n in imports_of(f))
    )
    assert not users, users


def test_the_roles_import_no_circle() -> None:
    """Among roles/ modules imports make no circle, lazy imports included (files.py asks kinds.py
    which file it may replace; kinds.py imports nothing of files.py)."""
    files = _files("roles")
    modules = {_module_name(f): f for f in files}
    graph = {m: {n for n in imports_of(f) if n in modules and n != m} for m, f in modules.items()}
    circles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif len(path) < len(graph):
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert circles == []
