"""The conformance suite passes on the virtual chip over TCP and over a serial pseudo-terminal,
and fails each deliberately broken chip (`mutants.py`) on the case that names its defect.

The whole suite runs once per transport on a good chip (a `chip serve` board process; over TCP
its power goes through the board's handler, over the pty it has none and the power-cut case is
skipped by name); a broken chip runs only the case that must catch it and what that case needs
first (`make conformance-mutants` runs the whole suite against each), served by a board in this
process.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

import pytest
from boards import BoardProcess  # tests/boards.py

from trustprov.conformance.cases import CASES
from trustprov.conformance.family import TestFamily
from trustprov.conformance.suite import Context, Result, run_cases
from trustprov.crypto.keys import SUITES
from trustprov.link.handler import BoardClient

from .broken import UID, blank_farm, serve
from .mutants import CODE_CASES, MUTANTS, UNREACHABLE_CODES, selection
from .run_mutants import detected, run

PORTING = Path(__file__).resolve().parents[2] / "docs" / "porting.md"
PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

IDLE = 0.3
#: the signature suite each transport's whole run burns (the board socket's: test_board_socket)
TRANSPORT_SUITES = {"tcp": "EdDSA", "pty": "ES384", "board": "ES256"}


def _by_name(results: list[Result]) -> dict[str, Result]:
    return {r.name: r for r in results}


def _all_pass(results: list[Result], skipped: tuple[str, ...] = ()) -> None:
    failed = [f"{r.name}: {r.evidence}" for r in results if not r.passed]
    assert not failed, failed
    assert [r.name for r in results] == [c.name for c in CASES]
    assert [r.name for r in results if r.skipped] == list(skipped)


def test_case_names_are_unique_and_cite_a_section() -> None:
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names)
    assert all(c.section and c.summary for c in CASES)
    # destructive cases come last: lock after everything, provisioning after the refusals
    assert names[-1] == "lock.locked"
    after_install = {"refusal.stale-epoch", "refusal.domain-mismatch"}  # need an installed bundle
    assert names.index("fig3.provision") > max(
        i for i, n in enumerate(names) if n.startswith("refusal.") and n not in after_install
    )
    assert all(names.index(n) > names.index("fig3.provision") for n in after_install)


def test_a_good_chip_passes_every_case_over_tcp(tmp_path: Path) -> None:
    farm = blank_farm(tmp_path / "chips.farm")
    board = BoardProcess(
        [
            "chip",
            "serve",
            "--farm",
            str(farm),
            "--listen",
            "tcp://127.0.0.1:0",
            "--idle-timeout",
            str(IDLE),
        ]
    )
    try:
        with BoardClient(board.handler) as h:
            h.insert(0, UID)

        def power_cycle() -> None:
            with BoardClient(board.handler) as h:
                h.power_cycle(0)

        ctx = Context(board.sockets[0], idle_timeout=IDLE, power_cycle=power_cycle)
        _all_pass(run_cases(ctx, CASES))
    finally:
        board.stop()


def test_a_good_chip_passes_every_case_over_a_pty(tmp_path: Path) -> None:
    farm = blank_farm(tmp_path / "chips.farm")
    board = BoardProcess(
        [
            "chip",
            "serve",
            "--farm",
            str(farm),
            "--listen",
            "pty",
            "--chip",
            UID.hex(),
            "--idle-timeout",
            str(IDLE),
        ]
    )
    try:
        port = str(board.ready["port"])
        assert port.startswith("serial:///dev/")
        family = TestFamily.load().for_suite(TRANSPORT_SUITES["pty"])
        ctx = Context(port, family=family, idle_timeout=IDLE)
        _all_pass(run_cases(ctx, CASES), ("link.power-cut",))
    finally:
        board.stop()


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_broken_chip_fails_the_case_naming_its_defect(tmp_path: Path, name: str) -> None:
    mutant = MUTANTS[name]
    results = run(mutant, tmp_path, fast=True)
    by = _by_name(results)
    assert detected(mutant, results), f"{name} passed {mutant.case}: {by[mutant.case].evidence}"


@pytest.mark.parametrize(
    ("suite", "cases"),
    sorted({(m.suite, tuple(sorted(selection(m)))) for m in MUTANTS.values()}),
    ids=lambda v: v if isinstance(v, str) else "+".join(v),
)
def test_each_selection_passes_on_a_good_chip(
    tmp_path: Path, suite: str, cases: tuple[str, ...]
) -> None:
    """The same selections on a good chip in this process pass: each failure above is the
    defect's, not the selection's."""
    family = TestFamily.load().for_suite(suite)
    with serve(blank_farm(tmp_path / "chips.farm"), idle_timeout=IDLE) as address:
        ctx = Context(address, family=family, idle_timeout=IDLE, power_cycle=address.power_cycle)
        results = run_cases(ctx, CASES, set(cases))
    assert all(r.passed and not r.skipped for r in results), [(r.name, r.evidence) for r in results]


@pytest.mark.parametrize("suite", sorted(set(SUITES) - set(TRANSPORT_SUITES.values())))
def test_the_whole_suite_passes_on_a_chip_of_every_other_signature_suite(
    tmp_path: Path, suite: str
) -> None:
    """The test family per suite of 5.1: each suite the transports' runs do not burn runs the
    whole suite here (a board in this process, over TCP), so every suite passes it whole."""
    family = TestFamily.load().for_suite(suite)
    with serve(blank_farm(tmp_path / "chips.farm"), idle_timeout=IDLE) as address:
        ctx = Context(address, family=family, idle_timeout=IDLE, power_cycle=address.power_cycle)
        results = run_cases(ctx, CASES)
    _all_pass(results)
    assert f"{suite} chip" in _by_name(results)["boot.other-suite"].evidence


def _coverage_rows() -> list[tuple[str, list[str], list[str]]]:
    """docs/porting.md's coverage table: (rule, cases, broken chips), names in backticks."""
    text = PORTING.read_text(encoding="utf-8")
    table = text[text.index("| rule | case | broken chips |") :].split("\n\n")[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3, line
        rows.append(
            (cells[0], re.findall(r"`([^`]+)`", cells[1]), re.findall(r"`([^`]+)`", cells[2]))
        )
    assert len(rows) > 20
    return rows


def test_every_rule_of_the_coverage_table_has_a_broken_chip_its_case_catches() -> None:
    """A rule in docs/porting.md's table without a broken chip, or with one that is not caught
    by the case beside it, fails here; so does a broken chip that no rule names."""
    names = {c.name for c in CASES}
    covered: set[str] = set()
    for rule, cases, chips in _coverage_rows():
        assert cases, rule
        assert set(cases) <= names, (rule, cases)
        matched = {m for pattern in chips for m in MUTANTS if fnmatch(m, pattern)}
        assert matched, f"rule {rule!r} has no broken chip"
        for m in matched:
            assert MUTANTS[m].case in cases, (rule, m, MUTANTS[m].case)
        covered |= matched
    assert covered == set(MUTANTS), sorted(set(MUTANTS) - covered)


def test_every_error_code_a_request_reaches_has_a_case() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    section = text[text.index("### 8.2 Error codes") : text.index("### 8.3")]
    codes = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))
    assert codes == set(CODE_CASES) | set(UNREACHABLE_CODES)


def test_a_chip_of_another_family_is_named_as_such(tmp_path: Path) -> None:
    from trustprov.conformance.family import TestFamily  # noqa: PLC0415 - one test

    family = TestFamily.load()
    with serve(blank_farm(tmp_path / "chips.farm"), idle_timeout=IDLE) as address:
        import dataclasses  # noqa: PLC0415 - one test

        other = dataclasses.replace(family, family_id=bytes(8))
        first = _by_name(run_cases(Context(address, family=other), CASES, {"manufacture.burn"}))
        again = _by_name(run_cases(Context(address), CASES, {"manufacture.burn", "boot.good"}))
    assert first["manufacture.burn"].passed
    assert not again["manufacture.burn"].passed
    assert "not the test family" in again["manufacture.burn"].evidence
    assert not again["boot.good"].passed


def test_a_second_run_on_a_locked_chip_says_it_needs_a_fresh_one(tmp_path: Path) -> None:
    with serve(blank_farm(tmp_path / "chips.farm"), idle_timeout=IDLE) as address:
        first = run_cases(Context(address), CASES, {"fig3.provision", "lock.locked"})
        again = _by_name(run_cases(Context(address), CASES, {"boot.good", "fig4.regen"}))
    assert all(r.passed for r in first), [(r.name, r.evidence) for r in first]
    assert again["boot.good"].passed  # the ROM still boots a locked chip
    assert not again["fig4.regen"].passed
    assert "needs a fresh chip" in again["fig4.regen"].evidence
