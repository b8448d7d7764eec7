"""`inspect`'s reader of a records store: its lots and jobs, and the state of their chips.

Invariant: it only reads (the store is opened with ``create=False``, which never creates or
migrates a table); a file that is not a records store gives None, so the caller can say what the
file is instead.
"""

from __future__ import annotations

from pathlib import Path

from trustprov.errors import InputError
from trustprov.line.records import RecordStore
from trustprov.roles.inspect.description import Description


def describe_records(path: Path) -> Description | None:
    try:
        store = RecordStore(f"sqlite:///{Path(path).resolve()}", create=False)
    except InputError:
        return None
    with store:
        jobs = []
        for job in store.find_jobs():
            states = store.states(job)
            jobs.append(
                {
                    "lot": job.lot,
                    "bundle_id": job.bundle_id,
                    "chips": job.chips,
                    "done": states["done"],
                    "in_progress": states["claimed"],
                    "pending": states["pending"],
                }
            )
    return Description(
        "records",
        "a production line's records store",
        {"lots": sorted({j["lot"] for j in jobs}), "jobs": jobs},
        note="one job per lot and bundle; `trustprov cm report --records sqlite:///FILE` "
        "shows a lot's yield, failures and stations",
    )
