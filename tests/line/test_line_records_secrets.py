"""Issue 19 item 4 against a real PostgreSQL server: the records password comes from a password
file or from libpq's own places (PGPASSWORD, PGPASSFILE, a service file), never from the URL;
and it shows nowhere: not in the command line `ps` shows every user, not in the logs (-vv),
the errors or the JSON outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import copy_farm, provision_command
from sqlalchemy.engine import make_url

from trustprov.errors import InputError
from trustprov.line.records import (
    RecordStore,
    check_no_password,
    parse_url,
    redacted,
    sqlite_path,
)
from trustprov.line.records.schema import carries_secret

#: variables through which libpq finds a password; each run below sets the one it tests
_LIBPQ_PASSWORD_ENV = ("PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE", "PGSERVICE")


def _password(server: str) -> str:
    """The server's password, from where the test environment keeps it (.ci/run: PGPASSFILE)."""
    if os.environ.get("PGPASSWORD"):
        return os.environ["PGPASSWORD"]
    url = make_url(server)
    passfile = Path(os.environ.get("PGPASSFILE", Path.home() / ".pgpass"))
    if passfile.is_file():
        for line in passfile.read_text().splitlines():
            fields = line.split(":")
            if len(fields) == 5 and fields[3] in ("*", url.username):
                return fields[4]
    pytest.skip("the server's password is in none of PGPASSWORD, PGPASSFILE, ~/.pgpass")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LIBPQ_PASSWORD_ENV}
    env["HOME"] = "/nonexistent"  # no ~/.pgpass either: the password comes from where we say
    return {**env, **extra}


def _trustprov(
    *args: str | Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `trustprov ARGS` in a process of its own; also what `ps` shows of it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustprov", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # ended already, or no /proc: its argv is ours below
        argv = " ".join(map(str, proc.args))  # type: ignore[arg-type]  # a list of str
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), argv


def _filled(pg_url: str, password: str) -> None:
    with RecordStore(pg_url, password=password) as store:
        job = store.open_job("LOT-S", "00" * 16, ["00" * 16, "11" * 16])
        store.claim(job, "station-s", 1)


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _no_secret(password: str, *texts: str) -> None:
    for text in texts:
        assert password not in text, text


def test_the_password_from_a_file_or_from_libpq_never_from_the_url(
    pg_server: str, pg_url: str, tmp_path: Path
) -> None:
    password = _password(pg_server)
    _filled(pg_url, password)
    url = make_url(pg_url)
    assert url.password is None  # the fixture's URL holds none
    # 1. --records-password-file: the only place the password is
    pwfile = _private(tmp_path / "pw", password + "\n")
    for command in (["cm", "report", "--json", "-vv"], ["cm", "receipts", "--out", "-", "--format",
                    "jsonl", "-vv"]):  # fmt: skip
        done, argv = _trustprov(
            *command, "--records", pg_url, "--records-password-file", pwfile, env=_env()
        )
        assert done.returncode == 0, done.stderr
        _no_secret(password, argv, done.stdout, done.stderr)
    done, _ = _trustprov(
        "cm", "report", "--json", "--records", pg_url, "--records-password-file", pwfile, env=_env()
    )
    assert json.loads(done.stdout)["lot"] == "LOT-S"
    # 2. libpq's own: PGPASSWORD, a pgpass file (PGPASSFILE), a service file (PGSERVICEFILE)
    pgpass = _private(
        tmp_path / "pgpass", f"{url.host}:{url.port or 5432}:*:{url.username}:{password}\n"
    )
    service = _private(
        tmp_path / "pg_service.conf",
        f"[records]\nhost={url.host}\nport={url.port or 5432}\ndbname={url.database}\n"
        f"user={url.username}\npassword={password}\n",
    )
    options = url.query["options"]
    assert isinstance(options, str)
    by_service = make_url("postgresql:///").update_query_dict(
        {"service": "records", "options": options}
    )
    for records, env in (
        (pg_url, _env(PGPASSWORD=password)),
        (pg_url, _env(PGPASSFILE=str(pgpass))),
        (by_service.render_as_string(), _env(PGSERVICEFILE=str(service))),
    ):
        done, argv = _trustprov("cm", "report", "--json", "-vv", "--records", records, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["lot"] == "LOT-S"
        _no_secret(password, argv, done.stdout, done.stderr)
    # 3. nowhere: libpq's own one-line refusal, exit 2, and still nothing secret
    done, _ = _trustprov("cm", "report", "--records", pg_url, env=_env())
    assert done.returncode == 2
    assert done.stderr.startswith("error: records store ")
    assert "password" in done.stderr


def test_a_wrong_password_is_shown_nowhere(pg_server: str, pg_url: str, tmp_path: Path) -> None:
    password = _password(pg_server)
    wrong = "wrong-" + password[::-1] + "-Zq9"
    pwfile = _private(tmp_path / "pw", wrong)
    done, argv = _trustprov(
        "cm", "report", "--json", "-vv", "--records", pg_url, "--records-password-file", pwfile,
        env=_env(),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "password authentication failed" in done.stderr
    _no_secret(wrong, argv, done.stderr)
    _no_secret(password, argv, done.stderr)


def test_the_summary_and_dashboard_show_the_url_without_its_password(
    pg_server: str, pg_url: str
) -> None:
    """In process (a library caller may still give a URL with a password): what is shown of the
    store (`RecordStore.url`: the summary's and the dashboard's "records") hides it."""
    password = _password(pg_server)
    url = make_url(pg_url).set(password=password)
    with RecordStore(url.render_as_string(hide_password=False)) as store:
        assert password not in store.url
        assert "***" in store.url
    query = make_url(pg_url).update_query_dict({"password": password})
    with RecordStore(query.render_as_string(hide_password=False)) as store:
        assert password not in store.url


def test_every_shown_url_redacts_its_password() -> None:
    """No server needed: the URL as errors and the summary show it."""
    secret = "pw-Zq9-" + "x" * 8
    for text in (
        f"postgresql://u:{secret}@h/db",
        f"postgresql://u@h/db?password={secret}&options=-csearch_path%3Ds",
        f"postgres://u@h/db?sslpassword={secret}",
    ):
        url = parse_url(text)
        assert secret not in redacted(url)
        assert "***" in redacted(url) or "password=redacted" in redacted(url)
        assert carries_secret(url)
        with pytest.raises(InputError) as e:
            check_no_password(text)
        assert secret not in str(e.value)
        with pytest.raises(InputError) as e:
            sqlite_path(text)
        assert secret not in str(e.value)
    assert redacted(parse_url("postgresql://u@h/db?options=x")) == (
        "postgresql+psycopg://u@h/db?options=x"
    )
    check_no_password("postgresql://u@h/db?passfile=/run/pgpass")  # a path, not a secret


def test_a_station_and_a_dashboard_on_postgresql_show_the_password_nowhere(
    pg_server: str, pg_url: str, world: Any, tmp_path: Path
) -> None:
    """The long runs: `cm provision` (hours) and `line dashboard` (days), each sampled in `ps`
    while it runs, with -vv logs and --json."""
    password = _password(pg_server)
    pwfile = _private(tmp_path / "pw", password + "\n")
    farm = copy_farm(world.cm_farm, tmp_path / "cm.farm")
    argv = provision_command(
        farm=farm,
        lot=world.cm_lot,
        software=world.software,
        share=world.share,
        bundle=world.bundle,
        station="pg-station",
        jobs=1,
        records=pg_url,
    )
    done, shown = _trustprov(
        *argv[3:], "-vv", "--records-password-file", pwfile, env=_env()
    )  # argv[3:]: the command after `python -c ...`
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["provisioned"] == len(world.cm_uids())
    _no_secret(password, shown, done.stdout, done.stderr)
    token = _private(tmp_path / "token", "a-token-of-the-supervisor-0123\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustprov", "line", "dashboard", "--records", pg_url,
         "--records-password-file", str(pwfile), "--token-file", str(token), "--listen",
         "127.0.0.2:0", "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("dashboard of postgresql+psycopg://"), first
        running = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert "line\0dashboard" in running
        _no_secret(password, running, first)
        _no_secret("a-token-of-the-supervisor-0123", running, first)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    _no_secret(password, out, err)
