"""A station's lease when its PostgreSQL connection dies: the operator reads that the
connection was lost and how to resume, never a second error of releasing the lease."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import world_job
from pg_support import libpq_dsn
from sqlalchemy import exc

from trustprov.line.records import RecordsError, RecordStore
from trustprov.line.records.leases import _PgLeases
from trustprov.line.station import provision_lot
from trustprov.roles.cm import Outcome

RERUN = r"lost the connection .* Rerun the same command to resume"


class _Result:
    def scalar_one(self) -> bool:
        return True


class _DyingConnection:
    """A lease connection that works until its server session is killed."""

    def __init__(self) -> None:
        self.dead = False
        self.invalidated = False

    def _run(self) -> _Result:
        if self.dead:
            raise exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return _Result()

    def execute(self, *_args: Any) -> _Result:
        return self._run()

    def exec_driver_sql(self, *_args: Any) -> _Result:
        return self._run()

    def invalidate(self) -> None:
        self.invalidated = True

    def close(self) -> None:
        self._run()


def test_a_lost_lease_connection_is_reported_unmasked(tmp_path: Path) -> None:
    conn = _DyingConnection()
    leases = object.__new__(_PgLeases)  # a PostgreSQL lease table over the dying connection
    leases._conn = conn  # type: ignore[assignment]
    leases._scope, leases._held = "public", set()

    def run_station(store: RecordStore) -> None:
        with store.lease("s1"):
            store.check_lease()
            conn.dead = True
            store.check_lease()

    with RecordStore(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        store._leases = leases
        with pytest.raises(RecordsError, match=RERUN):
            run_station(store)
    assert conn.invalidated  # released by dropping the connection: the server drops the lock


_SESSIONS = {
    "lease": "SELECT pg_terminate_backend(pid) FROM pg_locks "
    "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
    "all": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
}


def _kill_backends(pg_url: str, which: str) -> int:
    """Terminate the station's sessions: the one holding its lease, or all of them."""
    with psycopg.connect(libpq_dsn(pg_url), autocommit=True) as c:
        return len(c.execute(_SESSIONS[which]).fetchall())


@pytest.mark.parametrize("which", sorted(_SESSIONS))
def test_a_station_whose_postgresql_sessions_are_killed_mid_lot_says_to_rerun(
    world: Any, cm_farm: Path, pg_url: str, which: str
) -> None:
    killed: list[int] = []

    def kill_once(_o: Outcome) -> None:
        if not killed:
            killed.append(_kill_backends(pg_url, which))

    job = world_job(world)
    with pytest.raises(RecordsError, match=RERUN):
        provision_lot(
            farm_path=cm_farm,
            lot=world.cm_lot,
            job=job,
            records_url=pg_url,
            station="t",
            on_outcome=kill_once,
        )
    assert killed
    assert killed[0] >= 1
    summary = provision_lot(  # the rerun the message asks for finishes the lot
        farm_path=cm_farm, lot=world.cm_lot, job=job, records_url=pg_url, station="t"
    )
    assert summary.pending == 0
    assert summary.failed == 0
