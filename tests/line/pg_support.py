"""PostgreSQL helpers of the line's tests, in a module of its own name: every test directory has
a ``conftest``, so ``from conftest import`` finds whichever conftest was imported first."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def libpq_dsn(url: str) -> str:
    """The libpq form of a (SQLAlchemy-style) PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
