"""The conformance suite passes on the virtual chip over TCP and over a serial pseudo-terminal,
and fails each deliberately broken chip on the case that names its defect.

The whole suite runs once per transport on a good chip (a `chip serve` board process); a broken
variant runs only the case that must catch it, beside two that must still pass (the suite keeps
running after a failure), served by a board in this process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from boards import BoardProcess  # tests/boards.py

from trustprov.conformance.cases import CASES
from trustprov.conformance.suite import Context, Result, run_cases
from trustprov.link.handler import BoardClient

from .broken import DEFECTS, UID, blank_farm, serve

IDLE = 0.3


def _by_name(results: list[Result]) -> dict[str, Result]:
    return {r.name: r for r in results}


def _all_pass(results: list[Result]) -> None:
    failed = [f"{r.name}: {r.evidence}" for r in results if not r.passed]
    assert not failed, failed
    assert [r.name for r in results] == [c.name for c in CASES]


def test_case_names_are_unique_and_cite_a_section() -> None:
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names)
    assert all(c.section and c.summary for c in CASES)
    # destructive cases come last: lock after everything, provisioning after the refusals
    assert names[-1] == "lock.locked"
    assert names.index("fig3.provision") > max(
        i for i, n in enumerate(names) if n.startswith("refusal.") and n != "refusal.stale-epoch"
    )


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
        _all_pass(run_cases(Context(board.sockets[0], idle_timeout=IDLE), CASES))
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
        _all_pass(run_cases(Context(port, idle_timeout=IDLE), CASES))
    finally:
        board.stop()


@pytest.mark.parametrize("variant", sorted(DEFECTS))
def test_a_broken_chip_fails_the_case_naming_its_defect(tmp_path: Path, variant: str) -> None:
    endpoint, port, case = DEFECTS[variant]
    farm = blank_farm(tmp_path / "chips.farm")
    with serve(farm, endpoint, port, idle_timeout=IDLE) as address:
        ctx = Context(address, idle_timeout=IDLE)
        results = _by_name(run_cases(ctx, CASES, {"link.hello", "manufacture.burn", case}))
    assert not results[case].passed, f"{variant} passed {case}: {results[case].evidence}"
    # the rest of the suite still runs on it: a failure stops nothing
    assert results["link.hello"].passed, results["link.hello"].evidence
    assert results["manufacture.burn"].passed, results["manufacture.burn"].evidence


@pytest.mark.parametrize("variant", sorted(DEFECTS))
def test_each_defect_case_passes_on_a_good_chip(tmp_path: Path, variant: str) -> None:
    """The same selection on a good chip in this process passes: the failure above is the
    defect's, not the selection's."""
    case = DEFECTS[variant][2]
    with serve(blank_farm(tmp_path / "chips.farm"), idle_timeout=IDLE) as address:
        results = run_cases(
            Context(address, idle_timeout=IDLE), CASES, {"link.hello", "manufacture.burn", case}
        )
    assert all(r.passed for r in results), [(r.name, r.evidence) for r in results]


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
