"""Records stores for the line tests: a SQLite file, or a schema of its own on a real PostgreSQL.

PostgreSQL comes from ``TRUSTPROV_TEST_PG``, a URL without a password, and the password from
where libpq looks (``.ci/run`` starts a server and sets both: the URL, and ``PGPASSFILE``); a
URL that still carries one has it moved to ``PGPASSWORD`` for the session, since trustprov
refuses a records URL with a password on its command line. Without
a reachable server the PostgreSQL variants skip with a one-line reason, except in CI (``CI`` set):
there they fail, so CI can never pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_support import libpq_dsn
from sqlalchemy.engine import make_url

PG_ENV = "TRUSTPROV_TEST_PG"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The base URL of a reachable PostgreSQL server."""
    url = os.environ.get(PG_ENV, "")
    reason = None
    if url and make_url(url).password is not None:
        os.environ["PGPASSWORD"] = str(make_url(url).password)
        url = make_url(url).set(password=None).render_as_string(hide_password=False)
    if not url:
        reason = (
            f"no PostgreSQL server: set {PG_ENV}=postgresql://USER@HOST/DB "
            "(the password in PGPASSFILE or PGPASSWORD)"
        )
    else:
        try:
            psycopg.connect(libpq_dsn(url), connect_timeout=5).close()
        except (psycopg.Error, ValueError) as e:
            shown = make_url(url).render_as_string(hide_password=True)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            reason = f"PostgreSQL at {shown} unreachable: {first}"
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason} (CI is set: the PostgreSQL tests must run)")
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A records URL on a fresh schema of its own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_dsn(pg_server), autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(pg_server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_dsn(pg_server), autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against both stores."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url
