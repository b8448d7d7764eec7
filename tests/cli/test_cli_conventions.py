"""The output conventions and messages of issue 12 (items 4 and 5), the same on every command.

Every test here is driven by the command tree (`helpers.walk`), not by a list of names: a new
command is covered at once, and fails until it follows the conventions or the tables below say
why it is exempt. `RUNS` holds one good invocation per command with a result; the bad-input and
wrong-file tests are derived from it.

- `--json` on every command with a result; with it, stdout holds one JSON object and nothing
  else (status, progress and logs go to stderr);
- -v/-vv/-q/--debug on every command, root and subcommands; -vv logs each chip, -v does not;
- usage errors: one line, exit 2, naming the command's --help;
- no class name and no click "Error:" in any message, and "an integer", never "a integer";
- every input file named in its errors, and another trustprov artifact said to be what it is.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from .conftest import CliWorld
from .helpers import assert_error, copy_farm, describe, leaf_commands, ok, run, walk

Path_ = tuple[str, ...]
#: positional arguments, then options (option -> value, or a list of values for a repeatable)
Argv = tuple[list[str | Path], dict[str, Any]]

LEAVES = sorted(leaf_commands())
ALL = [p for p, _ in walk()]
COMMANDS = dict(walk())


def _ids(path: Path_) -> str:
    return " ".join(path) or "trustprov"


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in p.opts}


def _argv(path: Path_, argv: Argv, *extra: str | Path) -> list[str | Path]:
    positional, options = argv
    out: list[str | Path] = [*path, *positional]
    for opt, value in options.items():
        for v in value if isinstance(value, list) else [value]:
            out += [opt] if v is True else [opt, v]
    return [*out, *extra]


# -- one good run of every command with a result --------------------------------------------------
def _provision(cw: CliWorld, t: Path) -> Argv:
    farm = cw.fresh_farm(t / "cm")
    return [], {
        "--farm": farm,
        "--lot": cw.a.cm_lot,
        "--software": cw.a.software,
        "--share": cw.a.share,
        "--bundle": cw.a.bundle,
    }


def _keygen(cw: CliWorld, t: Path) -> Argv:
    return [], {
        "--farm": copy_farm(cw.a.oem_farm, t / "oem"),
        "--chip": cw.a.oem_uid,
        "--software": cw.a.software,
        "--assets": cw.assets_toml,
        "--out": t / "out",
    }


def _regen(cw: CliWorld, t: Path) -> Argv:
    from .helpers import write_assets  # noqa: PLC0415 - only this run needs it

    _, options = _keygen(cw, t)
    return [], {**options, "--state": cw.a.oem_dir, "--assets": write_assets(t / "a2", epoch=2)}


def _records(cw: CliWorld) -> str:
    return f"sqlite:///{cw.provisioned_farm.parent / 'records.sqlite'}"


RUNS: dict[Path_, Callable[[CliWorld, Path], Argv]] = {
    ("icm", "init"): lambda _cw, t: ([t / "icm"], {}),
    ("icm", "sign-software"): lambda cw, t: ([], {"--icm": cw.a.icm, "--out": t / "sw.cose"}),
    ("icm", "manufacture"): lambda cw, t: (
        [],
        {
            "--icm": cw.a.icm,
            "--farm": t / "f.farm",
            "--lot": "L",
            "--count": "2",
            "--manifest": t / "lot.json",
        },
    ),
    ("oem", "verify-software"): lambda cw, _t: ([cw.a.software], {"--key": cw.a.pubkey}),
    ("oem", "keygen"): _keygen,
    ("oem", "regen"): _regen,
    ("oem", "authorize"): lambda cw, t: (
        [],
        {
            "--lot": cw.a.lot_json,
            "--out": t / "auth.cbor",
            "--icm-key": cw.a.icm / "lot-signing.pub.pem",
        },
    ),
    ("oem", "reconcile"): lambda cw, t: (
        [],
        {
            "--ca": cw.a.icm / "device-ca.pem",
            "--bundle": cw.a.bundle,
            "--receipts": _receipts(cw, t),
        },
    ),
    ("cm", "provision"): _provision,
    ("cm", "report"): lambda cw, _t: ([], {"--records": _records(cw)}),
    ("cm", "receipts"): lambda cw, t: ([], {"--records": _records(cw), "--out": t / "r.cbor"}),
    ("chip", "show"): lambda cw, _t: ([], {"--farm": cw.a.cm_farm, "--chip": cw.a.cm_uids[0]}),
    ("inspect",): lambda cw, _t: ([cw.a.bundle], {}),
    ("demo",): lambda _cw, t: ([], {"--chips": "2", "--out": t / "demo"}),
}


def _receipts(cw: CliWorld, t: Path) -> Path:
    out = t / "receipts.cbor"
    ok("cm", "receipts", "--records", _records(cw), "--out", out, record=False)
    return out


#: commands without a result of their own, and why they take no --json
NO_RESULT: dict[Path_, str] = {
    ("chip", "serve"): "a server; it prints its ports as one JSON line, always",
    ("line", "dashboard"): "a web server; its page is the output",
    ("oem", "template"): "its output is the asset list itself (TOML)",
}
#: commands with --json whose good run needs more than this world (a chip behind a port)
RUN_ELSEWHERE: dict[Path_, str] = {
    ("chip", "conformance"): "test_cli_conformance.py runs it against a chip board with --json",
}


@pytest.mark.parametrize("path", LEAVES, ids=_ids)
def test_every_command_with_a_result_takes_json(path: Path_) -> None:
    if path in NO_RESULT:
        assert "--json" not in _options(COMMANDS[path]), f"{_ids(path)}: drop it from NO_RESULT"
        return
    assert "--json" in _options(COMMANDS[path]), f"{_ids(path)} has a result but no --json"


@pytest.mark.parametrize("path", [p for p in LEAVES if p not in NO_RESULT], ids=_ids)
def test_json_is_one_object_on_stdout_and_nothing_else(
    cw: CliWorld, tmp_path: Path, path: Path_
) -> None:
    if path in RUN_ELSEWHERE:
        pytest.skip(RUN_ELSEWHERE[path])
    assert path in RUNS, f"add a good run of {_ids(path)} to RUNS"
    result = ok(*_argv(path, RUNS[path](cw, tmp_path), "--json"))
    doc = json.loads(result.stdout)  # the whole of stdout: one document
    assert isinstance(doc, dict), describe(result)
    assert "{" not in result.stderr, describe(result)  # no data on stderr


# -- -v/-vv/-q/--debug -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL, ids=_ids)
def test_every_command_takes_the_common_options(path: Path_) -> None:
    assert {"-v", "--verbose", "-q", "--quiet", "--debug"} <= _options(COMMANDS[path])


def test_vv_logs_each_chip_and_v_does_not(cw: CliWorld, tmp_path: Path) -> None:
    path = ("cm", "provision")
    v = ok(*_argv(path, _provision(cw, tmp_path / "1"), "-v"))
    vv = ok("-v", *_argv(path, _provision(cw, tmp_path / "2"), "-v"))  # root and command add up
    for uid in cw.a.cm_uids:
        assert f"chip {uid}: provisioned" in vv.stderr, describe(vv)
        assert uid not in v.stderr, describe(v)
    assert "DEBUG" in vv.stderr
    assert "INFO" in v.stderr, describe(v)
    assert "DEBUG" not in v.stderr, describe(v)


def test_vv_logs_each_chip_made(cw: CliWorld, tmp_path: Path) -> None:
    path = ("icm", "manufacture")
    result = ok(*_argv(path, RUNS[path](cw, tmp_path), "-vv"))
    uids = [c["uid"] for c in json.loads((tmp_path / "lot.json").read_text())["chips"]]
    for uid in uids:
        assert f"chip {uid}: made" in result.stderr, describe(result)


def test_q_silences_status_not_data(cw: CliWorld, tmp_path: Path) -> None:
    path = ("cm", "receipts")
    for d in ("1", "2", "3"):
        (tmp_path / d).mkdir()
    loud = ok(*_argv(path, RUNS[path](cw, tmp_path / "1")))
    quiet = ok(*_argv(path, RUNS[path](cw, tmp_path / "2"), "-q"))
    assert "receipts written" in loud.stderr
    assert quiet.stderr == ""
    assert_error(run(*_argv(path, RUNS[path](cw, tmp_path / "3"), "-q", "-v")), exit_code=2)


def test_a_bug_is_one_line_and_debug_shows_its_traceback(
    cw: CliWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustprov.roles import oem as role  # noqa: PLC0415 - patched for this test only

    def bug(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("SECRET-LOOKING DETAIL")

    monkeypatch.setattr(role, "verify_software", bug)
    path = ("oem", "verify-software")
    plain = run(*_argv(path, RUNS[path](cw, tmp_path)))
    line = assert_error(plain, exit_code=1, match="internal error")
    assert "--debug" in line
    assert "SECRET-LOOKING" not in line
    debug = run(*_argv(path, RUNS[path](cw, tmp_path), "--debug"))
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr
    assert "RuntimeError" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("error: internal error")


def test_debug_shows_the_traceback_of_an_error_too(tmp_path: Path) -> None:
    result = run("--debug", "chip", "show", "--farm", tmp_path / "none.farm", "--chip", "00" * 16)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")


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


@pytest.mark.parametrize("path", ALL, ids=_ids)
def test_a_usage_error_is_one_line_naming_the_help(path: Path_) -> None:
    line = assert_error(run(*path, "--no-such-option"), exit_code=2)
    assert f"see 'trustprov {' '.join(path)} --help'".replace("  ", " ") in line.replace(
        "trustprov  ", "trustprov "
    )
    assert_clean(line)


@pytest.mark.parametrize("path", LEAVES, ids=_ids)
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


@pytest.mark.parametrize("path", [p for p in LEAVES if p in RUNS], ids=_ids)
def test_bad_numbers_in_a_good_run_are_clean(cw: CliWorld, tmp_path: Path, path: Path_) -> None:
    """With every other option good, a bad number is one clean line: "is not an integer"."""
    positional, options = RUNS[path](cw, tmp_path)
    for p in COMMANDS[path].params:
        if isinstance(p.type, click.IntRange | click.FloatRange) and not getattr(p, "count", 0):
            for bad in ("x", "-1"):
                line = assert_error(run(*_argv(path, (positional, {**options, p.opts[0]: bad}))))
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
    ("icm", "sign-software"): {"icm_dir", "out"},
    ("icm", "manufacture"): {"icm_dir", "manifest"},
    ("oem", "keygen"): {"out"},
    ("oem", "regen"): {"out"},
    ("oem", "authorize"): {"out"},
    ("oem", "reconcile"): {"csv_path"},
    ("oem", "template"): {"out"},
    ("cm", "report"): {"where", "csv_path", "html_path"},
    ("cm", "receipts"): {"where", "out"},
    ("line", "dashboard"): {"where"},
    ("chip", "conformance"): {"code_file"},  # the chip's code: raw bytes, any content
    ("inspect",): {"file", "key", "ca"},  # inspect is the recogniser itself
    ("demo",): {"out"},
}


@pytest.mark.parametrize("path", LEAVES, ids=_ids)
def test_every_file_parameter_is_a_declared_input_or_said_not_to_be(path: Path_) -> None:
    files = {p.name for p in COMMANDS[path].params if isinstance(p.type, click.Path)}
    declared = set(_inputs(path)) | NOT_INPUTS.get(path, set())
    assert files <= declared, f"{_ids(path)}: declare {files - declared} with cli.artifacts.inputs"


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
        return _argv(path, ([file, *positional[1:]], options))
    return _argv(path, (positional, {**options, option: file}))


@pytest.mark.parametrize(
    ("path", "name"), _declared(), ids=lambda v: _ids(v) if isinstance(v, tuple) else v
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
    ("path", "name"), _declared(), ids=lambda v: _ids(v) if isinstance(v, tuple) else v
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
        run(*_substitute(path, _provision(cw, tmp_path), "share", rnd)), exit_code=1
    )
    assert line == f"error: {rnd}: this is ENC(RND_SHARE), not ENC(OEM_SHARE)"


def test_regen_names_a_wrong_file_in_its_state(cw: CliWorld, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(cw.a.oem_dir, state)
    shutil.copyfile(cw.a.oem_dir / "enc-oem-share.cose", state / "enc-rnd-share.cose")
    _, options = _regen(cw, tmp_path)
    line = assert_error(run(*_argv(("oem", "regen"), ([], {**options, "--state": state}))))
    assert f"{state / 'enc-rnd-share.cose'}: this is ENC(OEM_SHARE), not ENC(RND_SHARE)" in line


def test_an_asset_list_type_error_says_an_integer(cw: CliWorld, tmp_path: Path) -> None:
    from .helpers import write_assets  # noqa: PLC0415 - only here

    toml = write_assets(tmp_path / "a")
    toml.write_text(toml.read_text().replace("epoch = 1", 'epoch = "one"'))
    _, options = _keygen(cw, tmp_path)
    line = assert_error(run(*_argv(("oem", "keygen"), ([], {**options, "--assets": toml}))))
    assert "an integer" in line
    assert_clean(line)


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
    """As the README says: eval "$(_TRUSTPROV_COMPLETE=bash_source trustprov)"."""
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


#: values no text option takes
BAD_TEXT = ("", "\x01", "x" * 300, "=SUM(A1)", "../..")


@pytest.mark.parametrize("path", [p for p in LEAVES if p in RUNS], ids=_ids)
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
            argv = _argv(path, (again[0], {**again[1], p.opts[0]: bad}))
            result = run(*argv)
            if result.exit_code != 0:
                assert_clean(assert_error(result))


#: commands without a good run here, each given a bad value of its own
BAD_ELSEWHERE: dict[Path_, list[str]] = {
    ("chip", "serve"): ["--farm", "f", "--listen", "udp://x"],
    ("chip", "conformance"): ["--port", "udp://x"],
    ("line", "dashboard"): ["--records", "mysql://x/y"],
    ("oem", "template"): ["--out", "/"],
}


@pytest.mark.parametrize("path", [p for p in LEAVES if p not in RUNS], ids=_ids)
def test_bad_input_to_the_other_commands_is_clean(path: Path_) -> None:
    assert path in BAD_ELSEWHERE, f"add a good run of {_ids(path)} to RUNS, or a bad one here"
    assert_clean(assert_error(run(*path, *BAD_ELSEWHERE[path]), exit_code=2))


def test_one_chip_is_one_chip(cw: CliWorld, tmp_path: Path) -> None:
    positional, options = RUNS["icm", "manufacture"](cw, tmp_path)
    out = ok(*_argv(("icm", "manufacture"), (positional, {**options, "--count": "1"}))).stdout
    assert "lot L: 1 chip of family" in out
    shown = ok("chip", "show", "--farm", tmp_path / "f.farm", "--lot", "L").stdout
    assert shown.startswith("lot L: 1 chip\n")
