"""The messages of issue 12 (item 5), driven through every command.

Bad input goes through every command of the tree (`helpers.walk`) and every input file each
declares (`cli.artifacts.inputs`), derived from the good runs of `runs.py`:

- usage errors: one line, exit 2, naming the command's --help;
- no class name and no click "Error:" in any message, and "an integer", never "a integer";
- every input file named in its errors, and another trustprov artifact said to be what it is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import click
import pytest

from .conftest import CliWorld
from .helpers import assert_error, run
from .runs import (
    ALL,
    COMMANDS,
    LEAVES,
    RUNS,
    Argv,
    Path_,
    command_line,
    ids,
    keygen_run,
    provision_run,
    regen_run,
)


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad argument that a command takes for a path writes there, never into the checkout."""
    monkeypatch.chdir(tmp_path)


# -- usage errors and messages ------------------------------------------------------------------
CLASS_NAME = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]+)+\b|\b\w*(?:Error|Exception)\b")
#: CamelCase words that are names of standards, not of classes
STANDARD_NAMES = ("SubjectPublicKeyInfo",)
A_VOWEL = re.compile(r"\ba [aeio]\w", re.IGNORECASE)


def assert_clean(line: str) -> None:
    """No class name, no click "Error:" prefix, no "a integer"."""
    for name in STANDARD_NAMES:
        line = line.replace(name, "")
    assert not CLASS_NAME.search(line), line
    assert "Error:" not in line, line
    assert not A_VOWEL.search(line), line


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_a_usage_error_is_one_line_naming_the_help(path: Path_) -> None:
    line = assert_error(run(*path, "--no-such-option"), exit_code=2)
    command = " ".join(("trustprov", *path))
    assert line.endswith(f"; see '{command} --help'"), line
    assert "--no-such-option" in line
    assert_clean(line)


@pytest.mark.parametrize("path", LEAVES, ids=ids)
def test_a_missing_or_bad_option_is_one_clean_line(path: Path_) -> None:
    command = COMMANDS[path]
    required = [p for p in command.params if p.required]
    if required:
        assert_clean(assert_error(run(*path), exit_code=2))
    numbers = [
        p
        for p in command.params
        if isinstance(p.type, click.IntRange | click.FloatRange) and not getattr(p, "count", 0)
    ]
    for p in numbers:
        assert_clean(assert_error(run(*path, p.opts[0], "x"), exit_code=2))


@pytest.mark.parametrize("path", [p for p in LEAVES if p in RUNS], ids=ids)
def test_bad_numbers_in_a_good_run_are_clean(cw: CliWorld, tmp_path: Path, path: Path_) -> None:
    """With every other option good, a bad number is one clean line: "is not an integer"."""
    positional, options = RUNS[path](cw, tmp_path)
    for p in COMMANDS[path].params:
        if isinstance(p.type, click.IntRange | click.FloatRange) and not getattr(p, "count", 0):
            for bad in ("x", "-1"):
                line = assert_error(
                    run(*command_line(path, (positional, {**options, p.opts[0]: bad})))
                )
                assert_clean(line)
                if bad == "x":
                    assert "is not an integer" in line or "is not a number" in line, line


# -- every input file named; another artifact said to be what it is -----------------------------
def _inputs(path: Path_) -> dict[str, Any]:
    callback = COMMANDS[path].callback
    return dict(getattr(callback, "trustprov_inputs", {}))


#: file parameters that are no input artifact, per command: outputs, directories, or any file
NOT_INPUTS: dict[Path_, set[str]] = {
    ("icm", "init"): {"icm_dir"},
    ("icm", "sign-software"): {"icm_dir", "out", "code_file"},  # --code: firmware, any bytes
    ("icm", "manufacture"): {"icm_dir", "manifest", "records_password_file", "board_token_file"},
    ("icm", "report"): {"records_password_file"},
    ("oem", "keygen"): {"out"},
    ("oem", "regen"): {"out"},
    ("oem", "authorize"): {"out"},
    ("oem", "reconcile"): {"csv_path"},
    ("oem", "template"): {"out"},
    # a secret file (a password, a token) is no artifact: never sniffed for what it is
    ("cm", "provision"): {"records_password_file", "board_token_file"},
    ("cm", "report"): {"where", "csv_path", "html_path", "records_password_file"},
    ("cm", "receipts"): {"where", "out", "records_password_file"},
    ("line", "dashboard"): {"where", "records_password_file", "token_file"},
    ("chip", "conformance"): {"code_file", "board_token_file"},  # raw bytes; a secret
    ("chip", "blank"): {"farm", "tray"},  # made, or added to
    ("chip", "export"): {"tray"},  # added to
    # a directory of the chip programs' own files; a secret's first line, never quoted
    ("chip", "serve"): {"tray", "token_file"},
    ("chip", "run"): {"nvm"},  # the chip's own state, checked by the chip (test_cli_chip_programs)
    ("inspect",): {"file", "key", "ca"},  # inspect is the recogniser itself
    ("demo",): {"out"},
}


@pytest.mark.parametrize("path", LEAVES, ids=ids)
def test_every_file_parameter_is_a_declared_input_or_said_not_to_be(path: Path_) -> None:
    files = {p.name for p in COMMANDS[path].params if isinstance(p.type, click.Path)}
    declared = set(_inputs(path)) | NOT_INPUTS.get(path, set())
    assert files <= declared, f"{ids(path)}: declare {files - declared} with cli.artifacts.inputs"


#: per expected input, a file of the world that is another trustprov artifact
def _other(cw: CliWorld, what: str) -> Path:
    return cw.a.bundle if what != "a sealed bundle" else cw.a.software


#: declared inputs that a good run of `RUNS` does not read, and where they are tested
WIRE_ONLY = {
    (("cm", "provision"), "manifest"): "test_cli_wire.py (with --board)",
    (("cm", "provision"), "icm_key"): "test_cli_wire.py (with --manifest)",
}


def _declared() -> list[tuple[Path_, str]]:
    from trustprov.cli.artifacts import Expect  # noqa: PLC0415 - the table only

    return [
        (path, name)
        for path in LEAVES
        for name, spec in _inputs(path).items()
        if isinstance(spec, Expect) and path in RUNS and (path, name) not in WIRE_ONLY
    ]


def _option_of(path: Path_, name: str) -> str | None:
    param = next(p for p in COMMANDS[path].params if p.name == name)
    return param.opts[0] if isinstance(param, click.Option) else None


def _substitute(path: Path_, argv: Argv, name: str, file: Path) -> list[str | Path]:
    positional, options = argv
    option = _option_of(path, name)
    if option is None:
        return command_line(path, ([file, *positional[1:]], options))
    return command_line(path, (positional, {**options, option: file}))


@pytest.mark.parametrize(
    ("path", "name"), _declared(), ids=lambda v: ids(v) if isinstance(v, tuple) else v
)
def test_another_artifact_is_named_for_what_it_is(
    cw: CliWorld, tmp_path: Path, path: Path_, name: str
) -> None:
    expect = _inputs(path)[name]
    other = tmp_path / "given-file"
    shutil.copyfile(_other(cw, expect.what), other)
    line = assert_error(run(*_substitute(path, RUNS[path](cw, tmp_path), name, other)))
    assert f"{other}: this is " in line, line
    assert f"not {expect.what}" in line, line
    assert_clean(line)


@pytest.mark.parametrize(
    ("path", "name"), _declared(), ids=lambda v: ids(v) if isinstance(v, tuple) else v
)
def test_a_garbage_input_is_named(cw: CliWorld, tmp_path: Path, path: Path_, name: str) -> None:
    garbage = tmp_path / "given-file"
    garbage.write_bytes(bytes(range(256)) * 4)
    line = assert_error(run(*_substitute(path, RUNS[path](cw, tmp_path), name, garbage)))
    assert str(garbage) in line, line
    assert_clean(line)


def test_a_sealed_value_of_another_kind_is_named(cw: CliWorld, tmp_path: Path) -> None:
    path = ("cm", "provision")
    rnd = cw.a.oem_dir / "enc-rnd-share.cose"
    line = assert_error(
        run(*_substitute(path, provision_run(cw, tmp_path), "share", rnd)), exit_code=1
    )
    assert line == f"error: {rnd}: this is ENC(RND_SHARE), not ENC(OEM_SHARE)"


def test_regen_names_a_wrong_file_in_its_state(cw: CliWorld, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(cw.a.oem_dir, state)
    shutil.copyfile(cw.a.oem_dir / "enc-oem-share.cose", state / "enc-rnd-share.cose")
    _, options = regen_run(cw, tmp_path)
    line = assert_error(run(*command_line(("oem", "regen"), ([], {**options, "--state": state}))))
    assert f"{state / 'enc-rnd-share.cose'}: this is ENC(OEM_SHARE), not ENC(RND_SHARE)" in line


def test_an_asset_list_type_error_says_an_integer(cw: CliWorld, tmp_path: Path) -> None:
    from .helpers import write_assets  # noqa: PLC0415 - only here

    toml = write_assets(tmp_path / "a")
    toml.write_text(toml.read_text().replace("epoch = 1", 'epoch = "one"'))
    _, options = keygen_run(cw, tmp_path)
    line = assert_error(run(*command_line(("oem", "keygen"), ([], {**options, "--assets": toml}))))
    assert "an integer" in line
    assert_clean(line)


#: values no text option takes
BAD_TEXT = ("", "\x01", "x" * 300, "=SUM(A1)", "../..")


@pytest.mark.parametrize("path", [p for p in LEAVES if p in RUNS], ids=ids)
def test_bad_text_in_a_good_run_is_clean(cw: CliWorld, tmp_path: Path, path: Path_) -> None:
    """Every text option of a good run given values it cannot take: if refused, one clean line."""
    texts = [
        p
        for p in COMMANDS[path].params
        if isinstance(p, click.Option) and p.type is click.STRING and not p.is_flag
    ]
    for i, p in enumerate(texts):
        for j, bad in enumerate(BAD_TEXT):
            work = tmp_path / f"{i}-{j}"  # a fresh output for each run
            work.mkdir()
            again = RUNS[path](cw, work)
            argv = command_line(path, (again[0], {**again[1], p.opts[0]: bad}))
            result = run(*argv)
            if result.exit_code != 0:
                assert_clean(assert_error(result))


#: commands without a good run here, each given a bad value of its own
BAD_ELSEWHERE: dict[Path_, list[str]] = {
    ("chip", "serve"): ["--farm", "f", "--listen", "udp://x"],
    ("chip", "conformance"): ["--port", "udp://x"],
    ("chip", "run"): ["--nvm", "n", "--uid", "xyz", "--stdio"],
    ("line", "dashboard"): ["--records", "mysql://x/y"],
    ("oem", "template"): ["--out", "/"],
}


@pytest.mark.parametrize("path", [p for p in LEAVES if p not in RUNS], ids=ids)
def test_bad_input_to_the_other_commands_is_clean(path: Path_) -> None:
    assert path in BAD_ELSEWHERE, f"add a good run of {ids(path)} to RUNS, or a bad one here"
    assert_clean(assert_error(run(*path, *BAD_ELSEWHERE[path]), exit_code=2))
