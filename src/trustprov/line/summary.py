"""What one run of one station did to a lot: counts by result and cause, and why it stopped.

Invariant: ``settled`` counts each outcome this run recorded once; ``pending`` is read from the
records store when the run ends (the lot as a whole is `line.report`'s).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from trustprov.roles.cm import Outcome


@dataclass
class LotSummary:
    """What one run of one station did to a lot (the lot as a whole: `line.report`)."""

    lot: str
    station: str
    chips: int = 0  # chips of the lot
    provisioned: int = 0  # settled by this run, per result
    already_provisioned: int = 0
    failed: int = 0
    bad_receipt: int = 0  # a receipt that did not verify (`roles.trust`): counted in failures
    failures: Counter[str] = field(default_factory=Counter)
    settled_before: int = 0  # had their final record before this run began: not touched
    retried: int = 0  # failed final records of earlier runs put back to pending by this run
    recovered: int = 0  # claims of a dead run that this run settled from the chips
    pending: int = 0  # chips of the lot with no final record when this run ended
    jobs: int = 1
    bundle_id: str = ""
    seconds: float = 0.0
    records: str = ""
    stopped: str = ""  # why this run stopped before the lot was done (one line), if it did
    signum: int | None = None  # the signal that stopped it

    def add(self, outcome: Outcome) -> None:
        if outcome.result == "provisioned":
            self.provisioned += 1
        elif outcome.result == "already-provisioned":
            self.already_provisioned += 1
        elif outcome.result == "bad-receipt":
            self.bad_receipt += 1
            self.failures[outcome.error_code or "bad-receipt"] += 1
        else:
            self.failed += 1
            self.failures[outcome.error_code or "unknown"] += 1

    @property
    def settled(self) -> int:
        return self.provisioned + self.already_provisioned + self.failed + self.bad_receipt

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "station": self.station,
            "bundle_id": self.bundle_id,
            "chips": self.chips,
            "provisioned": self.provisioned,
            "already_provisioned": self.already_provisioned,
            "failed": self.failed,
            "bad_receipt": self.bad_receipt,
            "failures": dict(sorted(self.failures.items())),
            "settled_before": self.settled_before,
            "retried": self.retried,
            "recovered": self.recovered,
            "pending": self.pending,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 3),
            "chips_per_s": round(self.settled / self.seconds, 1) if self.seconds else None,
            "records": self.records,
            "stopped": self.stopped or None,
        }
