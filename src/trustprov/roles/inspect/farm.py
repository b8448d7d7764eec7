"""`inspect`'s databases: a chip farm, read as any host reads chips, or else a records store.

Invariant: a farm is reached through `link.farm_link.FarmLink` and each chip's ``rom.status`` only,
never the chip model's tables; a records store through the reader the caller passes (line/ sits
above the roles). Lifecycles are counted chip by chip, one status request each.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from pathlib import Path

from trustprov.errors import InputError
from trustprov.formats.sqlite_file import read_only_uri
from trustprov.roles.inspect.description import FIRST_UIDS, DatabaseReader, Description

#: the table every chip farm has, and no records store
FARM_TABLE = "farm_meta"


def describe_database(path: Path, records: DatabaseReader | None) -> Description:
    """A chip farm, read through its chips' links; else what ``records`` makes of the file."""
    if not _may_be_a_farm(path):
        return _records(path, records)
    from trustprov.link.farm_link import FarmLink  # noqa: PLC0415 - lazy: the chips' code

    try:
        farm = FarmLink(path, read_only=True)  # a reader: read-only media will do
    except InputError:
        return _records(path, records)
    with farm:
        lots = []
        totals: Counter[str] = Counter()
        for lot in farm.lots():
            uids = farm.uids(lot)
            counts: Counter[str] = Counter()
            for uid in uids:
                with farm.connect(uid) as chip:
                    counts[str(chip.status()["lifecycle"])] += 1
            totals.update(counts)
            lots.append(
                {
                    "lot": lot,
                    "chips": len(uids),
                    "lifecycles": dict(sorted(counts.items())),
                    "first_uids": [u.hex() for u in uids[:FIRST_UIDS]],
                }
            )
    return Description(
        "farm",
        "a farm of virtual chips",
        {"chips": sum(totals.values()), "lifecycles": dict(sorted(totals.items())), "lots": lots},
        note="read through each chip's link (rom.status), as any host sees the chips",
    )


def _records(path: Path, records: DatabaseReader | None) -> Description:
    found = records(path) if records is not None else None
    if found is None:
        raise InputError(
            f"{path}: an SQLite database that is neither a chip farm nor a records store"
        ) from None
    return found


def _may_be_a_farm(path: Path) -> bool:
    """False only when the file opens as SQLite and has no farm table: the choice of a reader
    (a records store skips loading the chips' code), never a reading of what a farm holds. It
    opens as every reader does (read-only, immutable on read-only media); a file that does not
    open so goes to the farm's own checks."""
    try:
        uri = read_only_uri(path)
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1)) as db:
            row = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FARM_TABLE,)
            ).fetchone()
    except sqlite3.Error:
        return True
    return row is not None
