"""What the dashboard shows, read from the records store: counts, rates, stations, failures.

Invariants:

1. A lot's counts are `trustprov.line.report.lot_counts`, the very queries of `cm report`: the
   page and `cm report --json` agree by construction, not by a second implementation.
2. Incremental and indexed: the attempt log (``records``) is read forward from the last id seen
   (a primary-key range, aggregated per job, station and second by the database); the counts
   are index ranges of one job (``lot_chips_by_state``, ``results_by_outcome``), re-read only
   when the log moved (at most every ``COUNT_SHARE`` times their cost), or every ``FULL_EVERY``
   seconds (a retry of failed chips changes them without a log entry).
3. Bounded memory whatever the lot's size: chips per station and second over the last
   ``window`` seconds only, and the ``LATEST`` failures.
4. Nothing secret: the records hold UIDs, station names, result and error codes, never a key or
   an asset; error messages are not shown (a chip's text is not ours to trust), codes are.
5. Never flattering: progress is good chips (``GOOD_OUTCOMES``), never attempts; every other
   outcome is a failure, whatever its name. The rate is measured over the part of the last
   ``RATE_SPAN`` seconds in which the lot ran, not diluted by the seconds before it started.
   A lot with failures, with a station that stopped reporting, or with chips pending and no
   chip settled for ``STALL`` seconds carries an alarm; active lots come first.
"""

from __future__ import annotations

import datetime
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trustprov import __version__
from trustprov.line.records import JobRef, RecordStore, as_utc, lot_chips, records, results
from trustprov.line.report import GOOD_OUTCOMES, LotReport, lot_counts

WINDOW = 900  # seconds of history in the chart
BIN = 10  # seconds per point of the chart
RATE_SPAN = 60  # seconds over which a lot's rate (and so its ETA) is measured
STALE = 30  # seconds without an attempt after which a station with work left has stopped
STALL = 60  # seconds without a chip settled after which a lot with chips pending raises an alarm
LATEST = 12
FULL_EVERY = 10.0
COUNT_SHARE = 10


@dataclass(frozen=True)
class Failure:
    time: datetime.datetime
    lot: str
    station: str
    uid: str
    code: str


@dataclass(frozen=True)
class LotView:
    report: LotReport
    rate: float  # chips settled per second over the recent window (invariant 5)
    eta_s: float | None  # seconds until no chip is pending, at that rate
    last_progress: datetime.datetime | None = None  # its latest chip settled, if seen
    alarms: list[str] = field(default_factory=list)  # why it needs a person; empty: none
    job_id: int = 0

    @property
    def active(self) -> bool:
        return self.report.pending > 0


@dataclass(frozen=True)
class StationView:
    name: str
    last_seen: datetime.datetime | None  # its latest attempt within the window
    in_progress: int
    status: str  # "active", "idle" or "stopped"


@dataclass(frozen=True)
class Snapshot:
    generated: datetime.datetime
    records_url: str  # password hidden
    lots: list[LotView]
    stations: list[StationView]
    window_start: int  # unix second of the chart's first bin
    bin_seconds: int
    series: dict[str, list[float]]  # station -> chips/s per bin, oldest first
    failures: list[Failure] = field(default_factory=list)

    @property
    def alarms(self) -> list[tuple[str, list[str]]]:
        """(lot, why) of every lot that needs a person, in the order of the lots."""
        return [(v.report.lot, v.alarms) for v in self.lots if v.alarms]


@dataclass(frozen=True)
class Column:
    """One bucket of the report's charts: good and failed chips settled in it."""

    start: datetime.datetime
    seconds: int
    good: int
    failed: int


@dataclass
class Provenance:
    """What was provisioned with what; None where no source given says it."""

    bundle_id: str
    first_chip: datetime.datetime | None = None
    last_chip: datetime.datetime | None = None
    stations: list[str] = field(default_factory=list)
    software_versions: list[str] = field(default_factory=list)  # as the records hold them
    software_name: str | None = None  # from a stored receipt's claims
    security_version: int | None = None
    receipt_epoch: int | None = None
    epoch: int | None = None  # from the bundle file's manifest
    min_security_version: int | None = None
    authorized: str | None = None
    reconciliation: dict[str, int] | None = None
    reconciled_against: str | None = None
    trustprov_version: str = __version__


class LineView:
    """The dashboard's reader of one store; call `refresh` from one thread at a time."""

    def __init__(
        self,
        store: RecordStore,
        *,
        clock: Callable[[], float] = time.time,
        window: int = WINDOW,
        stale: float = STALE,
    ) -> None:
        self._store = store
        self._clock = clock
        self._window = window
        self._stale = stale
        self._cursor: int | None = None  # the last records.id read
        self._per_station: dict[str, dict[int, int]] = defaultdict(dict)
        self._per_job: dict[int, dict[int, int]] = defaultdict(dict)
        self._last_seen: dict[str, float] = {}
        self._last_progress: dict[int, float] = {}  # job id -> latest second a chip settled
        self._lot_claims: dict[int, dict[str, int]] = {}  # job id -> station -> chips claimed
        self._counted_at = -1e18
        self._count_cost = 0.0
        self._lots: list[tuple[JobRef, LotReport]] = []
        self._claims: dict[str, int] = {}
        self._failures: list[Failure] = []

    def refresh(self) -> Snapshot:
        now = self._clock()
        moved = self._tail(now)
        # the counts cost an index range of each lot (0.2 s for a million chips): re-read when
        # the log moved, but no more often than COUNT_SHARE times their own cost, so that
        # counting takes at most ~1/COUNT_SHARE of the dashboard's time; and every FULL_EVERY
        # seconds regardless (a retry of failed chips changes the counts without a log entry)
        since = now - self._counted_at
        if (moved and since >= COUNT_SHARE * self._count_cost) or since >= FULL_EVERY:
            started = time.perf_counter()
            self._count()
            self._count_cost = time.perf_counter() - started
            self._counted_at = now
        return self._snapshot(now)

    # -- the attempt log, forward ------------------------------------------------------------
    def _tail(self, now: float) -> bool:
        """Fold in the attempts logged since the last refresh; whether there were any. One
        aggregate over the id range (cursor, newest]: the database counts per job, station
        and second, so a dashboard started beside a busy line reads its window in one query."""
        with self._store.transaction() as c:
            if self._cursor is None:
                self._cursor = _first_id_since(c, _utc(now - self._window)) - 1
            newest = c.execute(sa.select(sa.func.max(records.c.id))).scalar()
            if newest is None or newest <= self._cursor:
                self._forget(now)
                return False
            second = _epoch_second(self._store.dialect)
            rows = c.execute(
                sa.select(records.c.job_id, records.c.station, second, sa.func.count())
                .where(
                    records.c.id > self._cursor,
                    records.c.id <= newest,
                    # written by the station that took the claim over, in the dead one's name
                    records.c.result != "interrupted",
                )
                .group_by(records.c.job_id, records.c.station, second)
            ).all()
        self._cursor = int(newest)
        for job_id, station, at, n in rows:
            sec = int(at)
            per = self._per_station[station]
            per[sec] = per.get(sec, 0) + n
            job = self._per_job[job_id]
            job[sec] = job.get(sec, 0) + n
            self._last_seen[station] = max(self._last_seen.get(station, 0.0), sec)
            self._last_progress[job_id] = max(self._last_progress.get(job_id, 0.0), sec)
        self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        """Drop the seconds that left the window (invariant 3)."""
        oldest = int(now) - self._window
        for counts in (*self._per_station.values(), *self._per_job.values()):
            for sec in [s for s in counts if s < oldest]:
                del counts[sec]

    # -- the counts, as `cm report` makes them ----------------------------------------------
    def _count(self) -> None:
        latest: dict[str, JobRef] = {}
        others: dict[str, list[str]] = defaultdict(list)
        for job in self._store.find_jobs():  # oldest first: the last of a lot is its job
            if job.lot in latest:
                others[job.lot].append(latest[job.lot].bundle_id)
            latest[job.lot] = job
        self._lots = [
            (ref, lot_counts(self._store, ref, others[lot])) for lot, ref in sorted(latest.items())
        ]
        claims: dict[str, int] = defaultdict(int)
        lot_claims: dict[int, dict[str, int]] = {}
        failures: list[Failure] = []
        with self._store.transaction() as c:
            for ref, report in self._lots:
                if report.in_progress:
                    for station, n in c.execute(
                        sa.select(lot_chips.c.station, sa.func.count())
                        .where(lot_chips.c.job_id == ref.id, lot_chips.c.state == "claimed")
                        .group_by(lot_chips.c.station)
                    ):
                        claims[station] += n
                        lot_claims.setdefault(ref.id, {})[station] = n
                if report.total.failed or report.total.bad_receipt:
                    failures.extend(latest_failures(c, ref))
        self._claims = dict(claims)
        self._lot_claims = lot_claims
        self._failures = sorted(failures, key=lambda f: f.time, reverse=True)[:LATEST]

    # -- the picture -------------------------------------------------------------------------
    def _lot_view(self, ref: JobRef, report: LotReport, now: float, stopped: set[str]) -> LotView:
        recent = [(s, n) for s, n in self._per_job.get(ref.id, {}).items() if s > now - RATE_SPAN]
        # over the seconds the lot actually ran in the window: a lot started 7 s ago at 27
        # chips/s shows 27, not 27 * 7 / 60
        span = max(now - min(s for s, _ in recent), 1.0) if recent else RATE_SPAN
        rate = sum(n for _, n in recent) / span
        eta = report.pending / rate if rate > 0 and report.pending else None
        last = self._last_progress.get(ref.id)
        alarms = []
        if report.total.failed:
            alarms.append(f"{report.total.failed} of {report.chips} chips failed")
        for name in sorted(stopped & {*report.stations, *self._lot_claims.get(ref.id, {})}):
            if report.pending:
                alarms.append(f"station {name} stopped reporting")
        if report.pending and (last is None or now - last > STALL):
            quiet = _quiet(now - last) if last is not None else f"{self._window // 60} min"
            alarms.append(f"no chip settled for {quiet}, {report.pending} pending")
        return LotView(report, rate, eta, _utc(last) if last else None, alarms, ref.id)

    def _snapshot(self, now: float) -> Snapshot:
        # a station with work left: it holds claims, or worked on a lot with chips pending
        busy = {name for _, r in self._lots if r.pending for name in r.stations}
        names = sorted(
            {*self._last_seen, *self._claims, *(s for _, r in self._lots for s in r.stations)}
        )
        stations = []
        for name in names:
            seen = self._last_seen.get(name)
            silent = seen is None or now - seen > self._stale
            claims = self._claims.get(name, 0)
            if not silent:
                status = "active"
            elif claims or name in busy:
                status = "stopped"
            else:
                status = "idle"
            stations.append(StationView(name, _utc(seen) if seen else None, claims, status))
        stopped = {s.name for s in stations if s.status == "stopped"}
        lots = [self._lot_view(ref, report, now, stopped) for ref, report in self._lots]
        # active lots first, the latest to move first among them; then the finished ones
        lots.sort(key=lambda v: (not v.active, -(self._last_progress.get(v.job_id, 0.0))))
        # whole bins only: the one still filling would draw every line dropping to the present
        start = (int(now) - self._window) // BIN * BIN + BIN
        bins = (int(now) - start) // BIN
        series = {}
        for name in names:
            points = [0.0] * bins
            for second, n in self._per_station.get(name, {}).items():
                i = (second - start) // BIN
                if 0 <= i < bins:
                    points[i] += n / BIN
            series[name] = points
        return Snapshot(
            generated=_utc(now),
            records_url=self._store.url,
            lots=lots,
            stations=stations,
            window_start=start,
            bin_seconds=BIN,
            series=series,
            failures=list(self._failures),
        )


def latest_failures(c: Connection, ref: JobRef) -> list[Failure]:
    """The job's ``LATEST`` final records that are failures, newest first."""
    return [
        Failure(as_utc(at), ref.lot, station, uid, code or "unknown")
        for at, station, uid, code in c.execute(
            sa.select(results.c.time, results.c.station, results.c.uid, results.c.error_code)
            .where(results.c.job_id == ref.id, results.c.result.not_in(GOOD_OUTCOMES))
            .order_by(results.c.time.desc())
            .limit(LATEST)
        )
    ]


def _first_id_since(c: Connection, since: datetime.datetime) -> int:
    """The first id of the attempt log logged at or after ``since`` (one more than the last id
    when none was): a binary search over primary-key lookups, so a dashboard started beside a
    log of millions reads only its window. Attempts are logged in time order, near enough: a
    batch's times are its station's, each batch written at once."""
    lo, hi = c.execute(sa.select(sa.func.min(records.c.id), sa.func.max(records.c.id))).one()
    if hi is None:
        return 1
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        at = c.execute(
            sa.select(records.c.time).where(records.c.id >= mid).order_by(records.c.id).limit(1)
        ).scalar()
        if at is not None and as_utc(at) < since:
            lo = mid + 1
        else:
            hi = mid
    return int(lo)


def _epoch_second(dialect: str) -> sa.ColumnElement[int]:
    """The unix second of an attempt, computed by the database (as `lot_report` does)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", records.c.time)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", records.c.time), sa.Integer)


def _quiet(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)
