"""The ICM's line in the records store: one row per chip the ICM's tester has seen
(docs/protocol.md 13.6), in its own table ``icm_chips`` beside the CM's, created on first use
(SQLite or PostgreSQL, SQLAlchemy Core, as `line.records.store`).

Invariants, each kept by one transaction:

1. One row per UID, ever (primary key ``uid``): a chip belongs to at most one lot of the ICM.
2. ``started`` is written, and committed, before the line sends the chip ``rom.burn``: a chip
   whose family is this ICM's but that has no ``started`` (or ``made``) row of this lot was not
   burned by this lot, and is skipped, never burned again.
3. A certificate is stored in the row (``certificate``, with the ``public_key`` it certifies)
   and committed before it is sent to the chip, and a row's certificate is never replaced: a
   resumed chip gets the SAME certificate again, or none if its key is not that one. No UID is
   ever certified twice.
4. ``made`` (with ``seq``, the chip's place in the lot's manifest) is written only after the chip
   stored the certificate and signed a fresh challenge under its key as that UID.
5. ``skipped`` and ``failed`` rows are history: a later run looks at the chip again.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trustprov.line.records.schema import LOT_MAX, STATION_MAX
from trustprov.line.records.store import RecordStore

icm_metadata = sa.MetaData()
_TIME = sa.DateTime(timezone=True)

STATES = ("started", "made", "skipped", "failed")

icm_chips = sa.Table(
    "icm_chips",
    icm_metadata,
    sa.Column("uid", sa.String(32), primary_key=True),
    sa.Column("lot", sa.String(LOT_MAX), nullable=False),
    sa.Column("family", sa.String(16), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("seq", sa.Integer),
    sa.Column("public_key", sa.LargeBinary),
    sa.Column("certificate", sa.LargeBinary),
    sa.Column("reason", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Column("station", sa.String(STATION_MAX), nullable=False),
    sa.Column("time", _TIME, nullable=False),
    sa.CheckConstraint("state IN ('started', 'made', 'skipped', 'failed')", name="icm_chips_state"),
    sa.CheckConstraint("state <> 'made' OR certificate IS NOT NULL", name="icm_chips_made"),
    sa.Index("icm_chips_by_lot", "lot", "state", "seq"),
)


@dataclass(frozen=True)
class IcmChip:
    uid: bytes
    lot: str
    state: str
    seq: int | None
    public_key: bytes | None = field(repr=False)
    certificate: bytes | None = field(repr=False)
    reason: str | None


def _row(r: Any) -> IcmChip:
    return IcmChip(
        bytes.fromhex(r.uid), r.lot, r.state, r.seq, r.public_key, r.certificate, r.reason
    )


class IcmRecords:
    """The ICM line's rows in ``store`` (which it does not own)."""

    def __init__(self, store: RecordStore, station: str) -> None:
        self.store = store
        self.station = station[:STATION_MAX]
        if not store._read_only:
            with store.transaction() as c:
                icm_metadata.create_all(c, checkfirst=True)

    def _now(self) -> datetime.datetime:
        return self.store._now()

    def get(self, uid: bytes) -> IcmChip | None:
        with self.store.transaction() as c:
            r = c.execute(sa.select(icm_chips).where(icm_chips.c.uid == uid.hex())).first()
        return None if r is None else _row(r)

    def _put(self, c: Connection, uid: bytes, values: dict[str, Any]) -> None:
        values = {**values, "station": self.station, "time": self._now()}
        done = c.execute(sa.update(icm_chips).where(icm_chips.c.uid == uid.hex()).values(**values))
        if done.rowcount == 0:
            c.execute(sa.insert(icm_chips).values(uid=uid.hex(), **values))

    def start(self, uid: bytes, lot: str, family: bytes) -> None:
        """Invariant 2: before ``rom.burn``."""
        with self.store.transaction() as c:
            self._put(
                c,
                uid,
                {
                    "lot": lot,
                    "family": family.hex(),
                    "state": "started",
                    "reason": None,
                    "detail": None,
                },
            )

    def certify(self, uid: bytes, public_key: bytes, certificate: bytes) -> None:
        """Invariant 3: the certificate, before the chip is sent it; never replaced."""
        with self.store.transaction() as c:
            done = c.execute(
                sa.update(icm_chips)
                .where(icm_chips.c.uid == uid.hex(), icm_chips.c.certificate.is_(None))
                .values(public_key=public_key, certificate=certificate, time=self._now())
            )
            if done.rowcount != 1:
                raise RuntimeError(f"chip {uid.hex()} is not started or is certified already")

    def made(self, uid: bytes, lot: str) -> int:
        """Invariant 4: the chip's place in the lot, the next one."""
        with self.store.transaction() as c:
            row = c.execute(sa.select(icm_chips).where(icm_chips.c.uid == uid.hex())).first()
            if row is not None and row.state == "made" and row.seq is not None:
                return int(row.seq)  # made once: its place in the lot is kept
            last = c.execute(
                sa.select(sa.func.max(icm_chips.c.seq)).where(icm_chips.c.lot == lot)
            ).scalar()
            seq = (last or 0) + 1
            c.execute(
                sa.update(icm_chips)
                .where(icm_chips.c.uid == uid.hex())
                .values(state="made", seq=seq, reason=None, detail=None, time=self._now())
            )
        return seq

    def note(
        self,
        uid: bytes,
        lot: str,
        state: str,
        reason: str,
        *,
        detail: str,
        family: bytes | None = None,
    ) -> None:
        """A ``skipped`` or ``failed`` chip; a started row keeps its certificate (invariant 3)
        and stays ``started`` when it failed, so the next run resumes it."""
        with self.store.transaction() as c:
            r = c.execute(sa.select(icm_chips).where(icm_chips.c.uid == uid.hex())).first()
            if r is not None and r.state in ("started", "made"):
                if r.state == "started":
                    c.execute(
                        sa.update(icm_chips)
                        .where(icm_chips.c.uid == uid.hex())
                        .values(reason=reason, detail=detail[:500], time=self._now())
                    )
                return
            self._put(
                c,
                uid,
                {
                    "lot": lot,
                    "family": (family or b"").hex(),
                    "state": state,
                    "reason": reason,
                    "detail": detail[:500],
                },
            )

    def lot_chips(self, lot: str) -> Iterator[IcmChip]:
        """The rows of ``lot``: made ones in manifest order first, then the rest by UID."""
        with self.store.transaction() as c:
            rows = c.execute(
                sa.select(icm_chips)
                .where(icm_chips.c.lot == lot)
                .order_by(icm_chips.c.seq.is_(None), icm_chips.c.seq, icm_chips.c.uid)
            ).all()
        for r in rows:
            yield _row(r)

    def lots(self) -> list[str]:
        """Every lot of the ICM's line in the store (none if its table was never made)."""
        with self.store.transaction() as c:
            if not sa.inspect(c).has_table(icm_chips.name):
                return []
            rows = c.execute(sa.select(icm_chips.c.lot).distinct().order_by(icm_chips.c.lot))
            return [str(r[0]) for r in rows]

    def reasons(self, lot: str) -> dict[str, dict[str, int]]:
        """Skipped and failed chips of ``lot`` by reason."""
        with self.store.transaction() as c:
            rows = c.execute(
                sa.select(icm_chips.c.state, icm_chips.c.reason, sa.func.count())
                .where(icm_chips.c.lot == lot, icm_chips.c.state.in_(("skipped", "failed")))
                .group_by(icm_chips.c.state, icm_chips.c.reason)
            ).all()
        out: dict[str, dict[str, int]] = {"skipped": {}, "failed": {}}
        for state, reason, n in rows:
            out[str(state)][str(reason)] = int(n)
        return out

    def counts(self, lot: str) -> dict[str, int]:
        with self.store.transaction() as c:
            rows = c.execute(
                sa.select(icm_chips.c.state, sa.func.count())
                .where(icm_chips.c.lot == lot)
                .group_by(icm_chips.c.state)
            ).all()
        return {str(state): int(n) for state, n in rows}
