"""The ICM's line: blank chips reached over the wire, burned, given their identity and their
certificate, and listed in a signed lot manifest (docs/protocol.md 13.6).

The chips are the ones the boards hold (handler op ``chips``, 13.1), seated one at a time in the
first socket in service of their board, or the one chip behind ``--port``; each is taken to
``made`` by `IcmLine` (line/icm_chip.py, which states the per-chip rules that make a run
resumable by running it again).

Invariants:
- Everything a lot needs is checked before any chip or record is touched (`check_new_lot`, the
  family secrets unwrapped once); one line holds the records' lease for its station.
- A chip two boards both list is one chip; a chip this lot started comes first, so a resumed run
  finishes it before starting another; a chip failed on the wire (after ``ATTEMPTS`` tries)
  leaves the lot stopped, and its manifest waits for a later run.
- The manifest lists the ``made`` chips in the order they were made, and is written (with its
  signature, `roles.icm.manufacturing.signed_manifest`) only when the lot is complete: ``count``
  chips made, or, without a count, every chip the boards hold made or skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from trustprov.errors import (
    InputError,
)
from trustprov.line.board_contact import read_board
from trustprov.line.icm_chip import ChipAt, IcmLine
from trustprov.line.records.icm_chips import IcmRecords
from trustprov.line.records.store import RecordStore
from trustprov.line.wire_socket import LinkOpener
from trustprov.link.address import open_link as default_open_link
from trustprov.roles.icm import Icm
from trustprov.roles.icm.manufacturing import check_new_lot, signed_manifest
from trustprov.roles.lots import signature_path

ATTEMPTS = 8


@dataclass
class IcmLineSummary:
    lot: str
    family: str
    station: str
    records: str
    made: int = 0  # chips of the lot made, this run and before
    made_now: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by reason
    failed: dict[str, int] = field(default_factory=dict)  # by error code
    manifest: Path | None = None
    target: int | None = None
    seconds: float = 0.0
    stopped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "family": self.family,
            "station": self.station,
            "records": self.records,
            "made": self.made,
            "made_now": self.made_now,
            "skipped": dict(sorted(self.skipped.items())),
            "failed": dict(sorted(self.failed.items())),
            "manifest": None if self.manifest is None else str(self.manifest),
            "signature": None if self.manifest is None else str(signature_path(self.manifest)),
            "count": self.target,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
        }


def chips_on_boards(boards: Sequence[str], token: str | None = None) -> list[ChipAt]:
    """Every chip each board holds, each to be seated in its board's first socket in service."""
    found: list[ChipAt] = []
    for address in boards:
        board = read_board(address, token, who="line", error=InputError, chips=True)
        live = board.in_service()
        if not live:
            continue
        index = live[0][0]
        at = board.socket_address(index)
        found += [ChipAt(at, uid, address, index) for uid in board.uids]
    return found


def manufacture_wire(
    icm: Icm,
    lot: str,
    manifest_path: Path,
    *,
    records_url: str,
    boards: Sequence[str] = (),
    port: str | None = None,
    count: int | None = None,
    records_password: str | None = None,
    board_token: str | None = None,
    station: str | None = None,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_chip: Callable[[bytes, str], None] | None = None,
    open_link: LinkOpener | None = None,
    attempts: int = ATTEMPTS,
) -> IcmLineSummary:
    """Make the chips of lot ``lot`` over the wire (module docstring); resumable."""
    start = time.monotonic()
    if bool(boards) == (port is not None):
        raise InputError("give --board (one or more) or --port, not both")
    manifest_path = Path(manifest_path)
    check_new_lot(icm, lot, count, manifest_path, force=force)
    icm.immutable.to_bytes()  # unwraps the family secrets: refused before any chip or record
    chips = chips_on_boards(boards, board_token) if boards else [ChipAt(str(port))]
    station = station or f"icm-{lot}"
    with RecordStore(records_url, password=records_password) as store:
        summary = IcmLineSummary(lot, icm.family_id.hex(), station, store.url, target=count)
        with store.lease(station, wait=2.0):
            records = IcmRecords(store, station)
            line = IcmLine(
                icm,
                lot,
                records,
                open_link=open_link or default_open_link,
                board_token=board_token,
                on_chip=on_chip,
                attempts=attempts,
            )
            _run(line, chips, summary, on_start)
            if summary.stopped is None:
                _write_manifest(line, manifest_path, force, summary)
    summary.seconds = time.monotonic() - start
    return summary


def _run(
    line: IcmLine,
    chips: list[ChipAt],
    summary: IcmLineSummary,
    on_start: Callable[[int], None] | None,
) -> None:
    records = line.records
    unique: dict[bytes | None, ChipAt] = {}  # a chip two boards both list is one chip
    for c in chips:
        unique.setdefault(c.uid, c)
    chips = list(unique.values())
    states = {c.uid: records.get(c.uid) for c in chips if c.uid is not None}
    done = {
        u for u, r in states.items() if r is not None and r.lot == line.lot and r.state == "made"
    }
    summary.made = records.counts(line.lot).get("made", 0)
    # a chip this lot started comes first: a resumed run finishes it before starting another
    started = [
        c
        for c in chips
        if c.uid is not None
        and (r := states.get(c.uid)) is not None
        and r.lot == line.lot
        and r.state == "started"
    ]
    todo = started + [c for c in chips if c not in started and c.uid not in done]
    if on_start is not None:
        on_start(summary.target if summary.target is not None else len(todo))
    for at in todo:
        if summary.target is not None and summary.made >= summary.target:
            break
        _uid, outcome, reason = line.chip(at)
        if outcome == "made":
            summary.made += 1
            summary.made_now += 1
        elif outcome == "made-before":
            pass  # counted among the lot's made chips already
        elif outcome == "skipped":
            summary.skipped[reason or "skipped"] = summary.skipped.get(reason or "skipped", 0) + 1
        else:
            summary.failed[reason or "failed"] = summary.failed.get(reason or "failed", 0) + 1
    if summary.failed:
        n = sum(summary.failed.values())
        summary.stopped = f"{n} chip{'s' if n != 1 else ''} failed on the wire"
    elif summary.target is not None and summary.made < summary.target:
        summary.stopped = (
            f"only {summary.made} of {summary.target} chips made: the boards hold no more "
            "blank chips of this lot's making"
        )
    elif summary.made == 0:
        summary.stopped = "no chip made: the boards hold no blank chip"


def _write_manifest(
    line: IcmLine, manifest_path: Path, force: bool, summary: IcmLineSummary
) -> None:
    with signed_manifest(line.icm, line.lot, manifest_path, force=force) as manifest:
        for chip in line.records.lot_chips(line.lot):
            if chip.state != "made":
                break  # made ones come first, in manifest order
            assert chip.certificate is not None  # noqa: S101 - a CHECK of the table
            manifest.add(chip.uid, x509.load_der_x509_certificate(chip.certificate))
    summary.manifest = manifest_path
