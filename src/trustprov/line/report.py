"""A lot as the records store sees it: yield, failures by cause, stations, throughput, pending.

Read-only. Counts come from the final records (`results`) and the chips' states (`lot_chips`),
never from the attempt log, so a resumed or shared lot counts every chip exactly once.

The yield is of the chips done (those with a final record), never of the lot: a lot with most of
its chips pending has no "100 %" yield, so every rendering of it (`yield_line`, the dashboard,
the HTML report) says "of the chips done" and shows the pending share beside it.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from trustprov.errors import InputError
from trustprov.line.records import JobRef, RecordStore, as_utc, lot_chips, results
from trustprov.roles.files import STDOUT, check_output, output_file

#: the final outcomes of a chip that holds the bundle; every other outcome (failed, and any the
#: line adds later) counts as not good, everywhere: totals, failures by cause, the dashboard
GOOD_OUTCOMES = ("provisioned", "already-provisioned")
# bucket widths for the throughput table, in seconds; the smallest giving <= MAX_BUCKETS rows
_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
MAX_BUCKETS = 24
CSV_COLUMNS = (
    "uid",
    "lot",
    "bundle_id",
    "state",
    "station",
    "software_version",
    "result",
    "error_code",
    "error",
    "duration_us",
    "time",
)


@dataclass(frozen=True)
class Bucket:
    start: datetime.datetime
    seconds: int
    chips: int

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "seconds": self.seconds,
            "chips": self.chips,
            "chips_per_s": round(self.chips / self.seconds, 1),
        }


@dataclass
class StationCounts:
    provisioned: int = 0
    already_provisioned: int = 0
    failed: int = 0
    bad_receipt: int = 0  # the chip answered a receipt that did not verify (roles.trust)

    @property
    def chips(self) -> int:
        return self.provisioned + self.already_provisioned + self.failed + self.bad_receipt

    def add(self, result: str, n: int) -> None:
        if result == GOOD_OUTCOMES[0]:
            self.provisioned += n
        elif result == GOOD_OUTCOMES[1]:
            self.already_provisioned += n
        elif result == "bad-receipt":
            self.bad_receipt += n
        else:
            self.failed += n

    def to_json(self) -> dict[str, int]:
        return {
            "chips": self.chips,
            "provisioned": self.provisioned,
            "already_provisioned": self.already_provisioned,
            "failed": self.failed,
            "bad_receipt": self.bad_receipt,
        }


@dataclass
class LotReport:
    lot: str
    bundle_id: str
    chips: int
    pending: int = 0  # no final record: waiting, or claimed (in progress)
    in_progress: int = 0  # of which claimed by a station
    total: StationCounts = field(default_factory=StationCounts)
    failures: dict[str, int] = field(default_factory=dict)
    stations: dict[str, StationCounts] = field(default_factory=dict)
    throughput: list[Bucket] = field(default_factory=list)
    other_bundles: list[str] = field(default_factory=list)
    #: station -> final outcome as recorded -> chips (the dashboard's metrics, per outcome)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def good(self) -> int:
        """Chips holding the bundle according to their final records."""
        return self.total.provisioned + self.total.already_provisioned

    @property
    def yield_percent(self) -> float | None:
        """Good chips as a share of the chips done (with a final record); None before any."""
        settled = self.total.chips
        return round(100 * self.good / settled, 2) if settled else None

    @property
    def pending_percent(self) -> float:
        """The lot's chips not done yet, as a share of the lot."""
        return round(100 * self.pending / self.chips, 2) if self.chips else 0.0

    def yield_line(self) -> str:
        """The yield as a person must read it: of the chips done, with the share still pending."""
        done = self.total.chips
        if not done:
            return f"yield -: no chip done yet, {self.pending} of {self.chips} pending"
        pending = f"; {self.pending_percent} % of the lot pending" if self.pending else ""
        return f"yield {self.yield_percent} % of the {done} chips done ({self.good} good){pending}"

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "bundle_id": self.bundle_id,
            "chips": self.chips,
            "provisioned": self.total.provisioned,
            "already_provisioned": self.total.already_provisioned,
            "failed": self.total.failed,
            "bad_receipt": self.total.bad_receipt,
            "pending": self.pending,
            "in_progress": self.in_progress,
            "yield_percent": self.yield_percent,  # of the chips done, not of the lot
            "done": self.total.chips,
            "pending_percent": self.pending_percent,
            "failures": dict(sorted(self.failures.items())),
            "stations": {name: s.to_json() for name, s in sorted(self.stations.items())},
            "throughput": [b.to_json() for b in self.throughput],
            "other_bundles": self.other_bundles,
        }


def find_job(
    store: RecordStore, lot: str | None, bundle: str | None = None
) -> tuple[JobRef, list[str]]:
    """The job of ``lot`` (or of the only lot of the store; with ``bundle``, of the only lot
    that bundle was applied to) and the lot's other bundles. The latest job by default; with
    ``bundle`` (a bundle id in hex, or a unique prefix of one) the job of that bundle, an
    earlier one included."""
    found = store.find_jobs(lot)
    if not found:
        where = f"no lot {lot!r}" if lot is not None else "no lot"
        raise InputError(f"{where} in the records at {store.url}")
    if bundle is not None:
        found = _of_bundle(store, found, lot, bundle.lower())
    lots = sorted({j.lot for j in found})
    if len(lots) > 1:
        shown = ", ".join(lots[:10]) + (", ..." if len(lots) > 10 else "")
        raise InputError(f"the records hold {len(lots)} lots ({shown}); choose one with --lot")
    if bundle is not None:
        ref = found[-1]
        others = [j.bundle_id for j in store.find_jobs(ref.lot) if j.id != ref.id]
        return ref, others
    return found[-1], [j.bundle_id for j in found[:-1]]


def _of_bundle(
    store: RecordStore, jobs: list[JobRef], lot: str | None, bundle: str
) -> list[JobRef]:
    """The jobs of ``bundle`` among ``jobs``: at most one per lot (a bundle is applied to a lot
    once), and exactly one bundle id matching."""
    matching = [j for j in jobs if j.bundle_id.startswith(bundle)]
    ids = sorted({j.bundle_id for j in matching})
    where = f"lot {lot!r}" if lot is not None else "any lot"
    if not ids:
        held = ", ".join(sorted({j.bundle_id for j in jobs})[:10])
        raise InputError(
            f"no bundle {bundle} for {where} in the records at {store.url} (they hold {held})"
        )
    if len(ids) > 1:
        raise InputError(f"--bundle {bundle} matches {len(ids)} bundles; give more of its id")
    return matching


def lot_report(store: RecordStore, lot: str | None = None, bundle: str | None = None) -> LotReport:
    """The report of a lot's latest job, or with ``bundle`` of that bundle's job (`find_job`)."""
    ref, others = find_job(store, lot, bundle)
    report = lot_counts(store, ref, others)
    mine = results.c.job_id == ref.id
    if store.dialect == "postgresql":
        second = sa.cast(sa.func.floor(sa.extract("epoch", results.c.time)), sa.BigInteger)
    else:
        second = sa.cast(sa.func.strftime("%s", results.c.time), sa.Integer)
    good = results.c.result.in_(GOOD_OUTCOMES)  # a failed chip is no throughput
    with store.transaction() as c:
        per_second = [
            (int(s), n)
            for s, n in c.execute(
                sa.select(second, sa.func.count())
                .where(mine, good)
                .group_by(second)
                .order_by(second)
            )
        ]
    report.throughput = buckets(per_second)
    return report


def lot_counts(store: RecordStore, ref: JobRef, others: list[str] | None = None) -> LotReport:
    """The report of job ``ref`` without its throughput: the counts alone, which the live
    dashboard reads every refresh (each query an index range of the job: ``lot_chips_by_state``
    and ``results_by_outcome``), so its numbers are the report's by construction."""
    report = LotReport(ref.lot, ref.bundle_id, ref.chips, other_bundles=others or [])
    mine = results.c.job_id == ref.id
    with store.transaction() as c:
        for state, n in c.execute(
            sa.select(lot_chips.c.state, sa.func.count())
            .where(lot_chips.c.job_id == ref.id)
            .group_by(lot_chips.c.state)
        ):
            if state != "done":
                report.pending += n
            if state == "claimed":
                report.in_progress = n
        for result, station, n in c.execute(
            sa.select(results.c.result, results.c.station, sa.func.count())
            .where(mine)
            .group_by(results.c.result, results.c.station)
        ):
            report.stations.setdefault(station, StationCounts()).add(result, n)
            report.total.add(result, n)
            report.outcomes.setdefault(station, {})[result] = n
        for code, n in c.execute(
            sa.select(results.c.error_code, sa.func.count())
            .where(mine, results.c.result.not_in(GOOD_OUTCOMES))
            .group_by(results.c.error_code)
        ):
            report.failures[code or "unknown"] = n
    return report


def bucket_width(span: int) -> int:
    """The seconds per bucket that cut ``span`` seconds into at most MAX_BUCKETS buckets."""
    return next((w for w in _WIDTHS if math.ceil(span / w) <= MAX_BUCKETS), _WIDTHS[-1])


def buckets(per_second: list[tuple[int, int]]) -> list[Bucket]:
    """Chips settled per second (unix time) -> at most MAX_BUCKETS even buckets, gaps included
    (a gap is a stopped line)."""
    if not per_second:
        return []
    first, last = per_second[0][0], per_second[-1][0]
    span = last - first + 1
    width = bucket_width(span)
    counts = [0] * math.ceil(span / width)
    for second, n in per_second:
        counts[(second - first) // width] += n
    out = []
    for i, n in enumerate(counts):
        start = first + i * width
        seconds = min(width, last + 1 - start)
        out.append(Bucket(datetime.datetime.fromtimestamp(start, datetime.UTC), seconds, n))
    return out


def write_csv(
    store: RecordStore,
    lot: str | None,
    path: Path,
    *,
    force: bool = False,
    bundle: str | None = None,
) -> int:
    """One row per chip of the lot (of the job of ``bundle``, if given): its final record, or
    its state if it has none. Written atomically (``-``: to standard output); returns the rows
    written. An existing file is replaced only with ``force``."""
    ref, _ = find_job(store, lot, bundle)
    path = Path(path)
    if str(path) != STDOUT:
        if not path.resolve().parent.is_dir():
            raise InputError(f"cannot write {path}: {path.resolve().parent} does not exist")
        check_output(path, force=force, kind="csv")
    q = (
        sa.select(
            lot_chips.c.uid,
            lot_chips.c.state,
            sa.func.coalesce(results.c.station, lot_chips.c.station),
            results.c.software_version,
            results.c.result,
            results.c.error_code,
            results.c.error,
            results.c.duration_us,
            results.c.time,
        )
        .select_from(
            lot_chips.outerjoin(
                results,
                sa.and_(results.c.job_id == lot_chips.c.job_id, results.c.uid == lot_chips.c.uid),
            )
        )
        .where(lot_chips.c.job_id == ref.id)
        .order_by(lot_chips.c.uid)
        .execution_options(yield_per=5000)
    )
    n = 0
    with output_file(path, force=force, stdout=True, kind="csv") as raw:
        f = io.TextIOWrapper(raw, newline="", encoding="utf-8")
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        with store.transaction() as c:
            for uid, state, station, version, result, code, error, us, at in c.execute(q):
                out.writerow(
                    [
                        uid,
                        ref.lot,
                        ref.bundle_id,
                        state,
                        _cell(station or ""),
                        _cell(version or ""),
                        result or "",
                        _cell(code or ""),
                        _cell(error or ""),
                        "" if us is None else us,
                        as_utc(at).isoformat() if at is not None else "",
                    ]
                )
                n += 1
        f.flush()
        f.detach()  # atomic_file syncs, closes and renames the file itself
    return n


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A text cell that a spreadsheet shows as text: one that would start a formula (a station
    name, a software version or a chip's message is not ours to trust) gets a leading
    apostrophe, as OWASP advises against CSV injection."""
    return "'" + text if text.startswith(_FORMULA_START) else text
