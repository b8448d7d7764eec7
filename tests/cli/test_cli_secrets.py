"""Issue 19 item 4: no secret on a command line.

A records URL that carries a password, and the dashboard's old ``--token``, are refused with a
line that says where the secret goes instead (--records-password-file or libpq's own places;
--token-file or TRUSTPROV_DASHBOARD_TOKEN); a secret file must be private and hold one line;
no error shows a secret. The runs against a real PostgreSQL server are in
tests/line/test_line_records_secrets.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import Result

from .conftest import CliWorld
from .helpers import assert_error, listing, run
from .runs import records_url_of

SECRET = "s3cret-Pw-0123456789"  # noqa: S105 - a planted value, to be found nowhere
#: every way a URL can carry a password
URLS_WITH_A_PASSWORD = (
    f"postgresql://line:{SECRET}@127.0.0.1:1/records",
    f"postgresql://line@127.0.0.1:1/records?password={SECRET}",
    f"postgres://line:{SECRET}@127.0.0.1:1/records",
    f"postgresql://line@127.0.0.1:1/records?sslpassword={SECRET}",
)
UNREACHABLE = "postgresql://line@127.0.0.1:1/records"


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _commands(cw: CliWorld, tmp_path: Path) -> list[list[str | Path]]:
    """Every command that takes --records, without its --records."""
    return [
        [
            "cm",
            "provision",
            "--farm",
            cw.fresh_farm(tmp_path / "f"),
            "--lot",
            cw.a.cm_lot,
            "--software",
            cw.a.software,
            "--share",
            cw.a.share,
            "--bundle",
            cw.a.bundle,
        ],
        ["cm", "report"],
        ["cm", "receipts", "--out", tmp_path / "r.cbor"],
        ["line", "dashboard", "--listen", "127.0.0.1:0"],
    ]


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("url", URLS_WITH_A_PASSWORD)
def test_a_records_url_with_a_password_is_refused(cw: CliWorld, tmp_path: Path, url: str) -> None:
    for command in _commands(cw, tmp_path):
        line = assert_error(run(*command, "--records", url), exit_code=2)
        assert SECRET not in line
        for where in ("--records-password-file", "PGPASSWORD", "PGPASSFILE", "'ps'"):
            assert where in line, line
    assert "records.sqlite" not in listing(tmp_path / "f")  # nothing was started
    assert not (tmp_path / "r.cbor").exists()


@pytest.mark.parametrize(
    ("content", "mode", "why"),
    [
        (SECRET, 0o644, "other users can reach it (mode 0644)"),
        (SECRET, 0o640, "chmod 600"),
        ("", 0o600, "empty"),
        ("\n", 0o600, "empty"),
        (f"{SECRET}\nsecond line\n", 0o600, "more than one line"),
        (SECRET * 300, 0o600, "larger than 4096 bytes"),
    ],
)
def test_a_password_file_is_private_and_one_line(
    tmp_path: Path, content: str, mode: int, why: str
) -> None:
    path = private_file(tmp_path / "pw", content, mode)
    for command in (["cm", "report"], ["line", "dashboard"]):
        result = run(*command, "--records", UNREACHABLE, "--records-password-file", path)
        line = assert_error(result, exit_code=2, match=why)
        assert "--records-password-file" in line
        assert SECRET not in result.output + result.stderr


def test_a_password_file_that_is_missing_a_directory_or_not_text(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe" + SECRET.encode())
    binary.chmod(0o600)
    for path, why in ((tmp_path / "none", "no such file"), (tmp_path / "d", "a directory"),
                      (binary, "not UTF-8")):  # fmt: skip
        result = run("cm", "report", "--records", UNREACHABLE, "--records-password-file", path)
        assert_error(result, exit_code=2, match=why)
        assert SECRET not in result.stderr


def test_a_good_password_file_reaches_the_driver_and_never_an_error(tmp_path: Path) -> None:
    path = private_file(tmp_path / "pw", f"{SECRET}\n")
    result = run("cm", "report", "--records", UNREACHABLE, "--records-password-file", path)
    line = assert_error(result, exit_code=2, match="cannot connect")
    assert "postgresql+psycopg://line@127.0.0.1:1/records" in line  # the URL, as given
    assert SECRET not in result.stdout + result.stderr


def test_a_password_file_is_for_postgresql_only(cw: CliWorld, tmp_path: Path) -> None:
    path = private_file(tmp_path / "pw", SECRET)
    result = run("cm", "report", "--records", records_url_of(cw), "--records-password-file", path)
    assert_error(result, exit_code=2, match="for PostgreSQL")


# -- the dashboard's token -------------------------------------------------------------------------
def test_a_token_on_the_command_line_is_refused_with_the_new_way(
    cw: CliWorld, tmp_path: Path
) -> None:
    result = run(
        "line", "dashboard", "--records", records_url_of(cw), "--token", SECRET, "--listen",
        "127.0.0.1:0",
    )  # fmt: skip
    line = assert_error(result, exit_code=2)
    assert SECRET not in result.stderr
    assert "--token-file" in line
    assert "TRUSTPROV_DASHBOARD_TOKEN" in line


def test_a_token_file_must_be_private(cw: CliWorld, tmp_path: Path) -> None:
    path = private_file(tmp_path / "token", SECRET, 0o604)
    result = run("line", "dashboard", "--records", records_url_of(cw), "--token-file", path)
    assert_error(result, exit_code=2, match="--token-file")
    assert SECRET not in result.stderr


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux)")
def test_the_token_is_in_no_command_line_and_no_output(cw: CliWorld, tmp_path: Path) -> None:
    """What `ps` shows any user (the process's argv) holds no token; the dashboard's own lines
    do not print it either (a generated one is printed once, by design: README)."""
    token = private_file(tmp_path / "token", f"{SECRET}\n")
    for how in ("file", "environment"):
        args = ["--token-file", str(token)] if how == "file" else []
        env = {**os.environ, "TRUSTPROV_DASHBOARD_TOKEN": SECRET} if how == "environment" else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "trustprov", "line", "dashboard", "--records",
             records_url_of(cw), "--listen", "127.0.0.2:0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            lines = [proc.stderr.readline(), proc.stderr.readline()]
            assert lines[0].startswith("dashboard of"), lines
            assert "<your token>" in lines[1], lines
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and "dashboard" not in _cmdline(proc.pid):
                time.sleep(0.05)
            shown = _cmdline(proc.pid)
            assert "line dashboard" in shown
            assert SECRET not in shown
            assert SECRET not in "".join(lines)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert SECRET not in err


def _through_a_pipe(content: str) -> Result:
    read, write = os.pipe()
    try:
        os.write(write, content.encode())
        os.close(write)
        return run("cm", "report", "--records", UNREACHABLE, "--records-password-file",
                   f"/dev/fd/{read}")  # fmt: skip
    finally:
        os.close(read)


def test_a_password_from_a_pipe() -> None:
    """`--records-password-file <(pass show records)`: a pipe has no mode to check; it is read
    (an empty one is refused as empty) and its password reaches the driver."""
    assert_error(_through_a_pipe(""), exit_code=2, match="empty")
    result = _through_a_pipe(f"{SECRET}\n")
    assert_error(result, exit_code=2, match="cannot connect")
    assert SECRET not in result.stderr
