"""`trustprov chip conformance`: the suite's report, its JSON, and its exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conformance.broken import DEFECTS, blank_farm, serve

from .helpers import assert_error, ok, run

IDLE = "0.3"


def test_a_good_chip_passes_and_exits_0(tmp_path: Path) -> None:
    with serve(blank_farm(tmp_path / "chips.farm")) as address:
        result = ok("chip", "conformance", "--port", address, "--idle-timeout", IDLE, "--json")
    doc = json.loads(result.stdout)
    assert doc["passed"] is True
    assert doc["failed"] == []
    names = [c["name"] for c in doc["cases"]]
    assert "link.crc" in names
    assert names[-1] == "lock.locked"
    skipped = [c["name"] for c in doc["cases"] if c["result"] == "skip"]
    assert skipped == doc["skipped"] == ["link.power-cut"]  # no control of the power: named
    assert all(
        c["result"] in ("pass", "skip") and c["section"] and c["evidence"] for c in doc["cases"]
    )


def test_power_cycle_cmd_drives_the_power_cut_case(tmp_path: Path) -> None:
    """--power-cycle-cmd runs between the steps: here a command that power-cycles the socket
    through its board's handler, as a bench's relay script would."""
    with serve(blank_farm(tmp_path / "chips.farm")) as address:
        cmd = (
            f"{sys.executable} -c 'from trustprov.link.handler import BoardClient; "
            f'BoardClient("{address.handler}").power_cycle(0)\''
        )
        result = ok(
            "chip",
            "conformance",
            "--port",
            address,
            "--power-cycle-cmd",
            cmd,
            "--case",
            "manufacture.burn",
            "--case",
            "link.power-cut",
        )
    assert "pass  link.power-cut" in result.stdout, result.stdout
    assert "2 of 2 cases passed" in result.stdout


def test_a_broken_chip_fails_its_case_and_exits_1(tmp_path: Path) -> None:
    endpoint, port, case = DEFECTS["ack-before-crc"]
    with serve(blank_farm(tmp_path / "chips.farm"), endpoint, port) as address:
        result = run(
            "chip", "conformance", "--port", address, "--case", case, "--case", "link.hello"
        )
    assert result.exit_code == 1, result.output
    assert f"FAIL  {case}" in result.stdout
    assert "pass  link.hello" in result.stdout
    assert "1 of 2 cases passed" in result.stdout
    assert "Traceback" not in result.output


def test_bad_addresses_and_case_names_are_usage_errors(tmp_path: Path) -> None:
    assert_error(run("chip", "conformance", "--port", "udp://x:1"), exit_code=2, match="address")
    assert_error(
        run("chip", "conformance", "--port", "tcp://127.0.0.1:9", "--case", "no.such"),
        exit_code=2,
        match="no case",
    )


@pytest.mark.parametrize("port", ["tcp://127.0.0.1:9", "serial:///dev/no-such-port"])
def test_a_port_that_cannot_be_opened_is_one_line_before_any_case(port: str) -> None:
    """Not 27 failed cases with an empty stderr: one line saying the port cannot be opened."""
    result = run("chip", "conformance", "--port", port, "--case", "link.hello", "--json")
    assert_error(result, exit_code=1, match="cannot")
    assert result.stdout == ""


def test_code_names_the_firmware_the_chip_runs(tmp_path: Path) -> None:
    """--code FILE: the suite signs FILE as the firmware image. The virtual chip runs its code
    archive, so that archive as a file boots; any other firmware is refused code-mismatch."""
    from trustprov.formats.software import code_archive  # noqa: PLC0415 - one test

    runs, other = tmp_path / "runs.bin", tmp_path / "other.bin"
    runs.write_bytes(code_archive())
    other.write_bytes(b"a port's firmware image")
    cases = ["--case", "manufacture.burn", "--case", "boot.code-mismatch", "--case", "boot.good"]
    with serve(blank_farm(tmp_path / "chips.farm")) as address:
        good = ok("chip", "conformance", "--port", address, "--code", runs, *cases)
        bad = run("chip", "conformance", "--port", address, "--code", other, *cases)
    assert "3 of 3 cases passed" in good.stdout, good.stdout
    assert bad.exit_code == 1, bad.output
    assert "FAIL  boot.good" in bad.stdout
    assert "code-mismatch" in bad.stdout


def test_suite_burns_the_test_family_for_that_suite(tmp_path: Path) -> None:
    """--suite: every suite of 5.1 is offered (the list is written out for a fast --help), and
    a chip burned for the hybrid boots its images and refuses a downgrade."""
    import click  # noqa: PLC0415 - one test

    from trustprov.cli.conformance import conformance  # noqa: PLC0415 - one test
    from trustprov.crypto.keys import SUITES  # noqa: PLC0415 - one test

    option = next(p for p in conformance.params if p.name == "suite")
    assert isinstance(option.type, click.Choice)
    assert sorted(option.type.choices) == sorted(SUITES)
    cases = ["--case", "manufacture.burn", "--case", "boot.other-suite", "--case", "boot.good"]
    with serve(blank_farm(tmp_path / "chips.farm")) as address:
        result = ok("chip", "conformance", "--port", address, "--suite", "es256+ml-dsa-65", *cases)
    assert "3 of 3 cases passed" in result.stdout, result.stdout
    assert "ES256+ML-DSA-65 chip" in result.stdout
