"""The ICM's line: blank chips reached over the wire, burned, given their identity and their
certificate, and listed in a signed lot manifest (docs/protocol.md 13.6).

The chips are the ones the boards hold (handler op ``chips``, 13.1), seated one at a time in the
first socket in service of their board, or the one chip behind ``--port``. Each chip is driven by
what it reports first (`rom.status`, `rom.identity`) and by its row in the records store
(`line.records.icm_chips`), so a run that died anywhere is resumed by running it again:

- a chip of another family, of another fab lot than ``lot`` (the lot its receipts will
  carry), or burned with this family but not by this lot (no ``started`` row), is recorded
  ``skipped`` and sent nothing more: it is never burned twice;
- ``started`` is committed before ``rom.burn``; the certificate is committed before it is sent;
  a chip whose key is not the one its row certifies is skipped (``identity-mismatch``), never
  certified again: no UID gets two certificates;
- a chip is ``made`` only once it holds its certificate and has signed a fresh challenge
  (`rom.attest`) under the certified key, naming its UID;
- a transport error (a dropped, corrupted or cut frame, a power cut) is retried from the chip's
  status, up to `ATTEMPTS` times, then the chip is ``failed`` and the lot's manifest waits for a
  later run.

The manifest lists the ``made`` chips in the order they were made, and is written (with its
signature, `roles.icm.manufacturing.signed_manifest`) only when the lot is complete: ``count``
chips made, or, without a count, every chip the boards hold made or skipped.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustprov.errors import (
    ChipRefused,
    FormatError,
    InputError,
    TransportError,
    TrustprovError,
    VerificationError,
)
from trustprov.formats.attestation import CHALLENGE_LEN, Attestation
from trustprov.formats.limits import MAX_LOT
from trustprov.formats.lot import LotChip
from trustprov.line.board_contact import read_board
from trustprov.line.records.icm_chips import IcmRecords
from trustprov.line.records.store import RecordStore
from trustprov.line.wire_socket import LinkOpener
from trustprov.link import messages
from trustprov.link.address import open_link as default_open_link
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient
from trustprov.roles.files import check_output
from trustprov.roles.icm import Icm
from trustprov.roles.icm.certs import certify, lot_template
from trustprov.roles.icm.family import utc_now
from trustprov.roles.icm.manufacturing import signed_manifest
from trustprov.roles.lots import signature_path

ATTEMPTS = 8


@dataclass(frozen=True)
class ChipAt:
    """Where one chip is reached: a board's socket (``board``, ``socket``) or a bare port."""

    address: str
    uid: bytes | None = None
    board: str | None = None
    socket: int | None = None


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


class _Skip(Exception):  # an outcome, not an error
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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


class IcmLine:
    def __init__(
        self,
        icm: Icm,
        lot: str,
        records: IcmRecords,
        *,
        open_link: LinkOpener,
        board_token: str | None,
        on_chip: Callable[[bytes, str], None] | None,
        attempts: int,
    ) -> None:
        self.icm = icm
        self.lot = lot
        self.records = records
        self._open_link = open_link
        self._token = board_token
        self._on_chip = on_chip
        self._attempts = attempts
        self._template = lot_template(icm, utc_now())
        self._burn = messages.encode_request("rom.burn", {"image": icm.immutable.to_bytes()})

    # -- one chip, with retries ----------------------------------------------------------------
    def chip(self, at: ChipAt) -> tuple[bytes | None, str, str | None]:
        """(uid, "made" / "made-before" / "skipped" / "failed", reason)."""
        last: TrustprovError | None = None
        uid = at.uid
        for _ in range(self._attempts):
            try:
                with self._seated(at) as chip:
                    uid = self._make(chip, at.uid)
                    return uid, "made", None
            except _Skip as s:
                if s.reason == "made-before":
                    return uid, "made-before", None
                if uid is not None:
                    self.records.note(uid, self.lot, "skipped", s.reason, detail=s.detail)
                return uid, "skipped", s.reason
            except ChipRefused as e:  # a refusal of the chip's own, at a step not foreseen
                if uid is not None:
                    self.records.note(uid, self.lot, "skipped", e.code, detail=e.message)
                return uid, "skipped", e.code
            except TransportError as e:
                if e.code == "unauthorized":
                    raise
                last = e  # the chip's status tells where to take it up again
        code = last.code if last is not None else "transport"
        if uid is not None:
            self.records.note(uid, self.lot, "failed", code, detail=str(last))
        return uid, "failed", code

    @contextlib.contextmanager
    def _seated(self, at: ChipAt) -> Any:
        board = None
        if at.board is not None and at.socket is not None and at.uid is not None:
            board = BoardClient(at.board, token=self._token)
            board.insert(at.socket, at.uid, replace=True)  # a reseat is a power cycle
        try:
            link = self._open_link(at.address)
            try:
                yield ChipClient(link)
            finally:
                with contextlib.suppress(Exception):
                    link.close()
        finally:
            if board is not None:
                with contextlib.suppress(TransportError):
                    board.remove(at.socket)  # type: ignore[arg-type]  # checked above
                board.close()

    # -- the steps, each taken up from what the chip and the records say -------------------------
    def _identify(self, chip: ChipClient, expected: bytes | None) -> tuple[bytes, bytes | None]:
        """The chip's UID and family from its status, if it is a chip of this lot's making."""
        status = chip.status()
        uid, family = status.get("uid"), status.get("family")
        if not isinstance(uid, bytes) or len(uid) != 16:
            raise TransportError("the chip's status has no UID")
        if expected is not None and uid != expected:
            raise TransportError(f"the board seated chip {uid.hex()}", code="misplaced")
        if family is not None and family != self.icm.family_id:
            raise _Skip("other-family", f"chip {uid.hex()} is of family {family.hex()}")
        if status.get("lot") != self.lot:  # the fab's lot is for life, and in every receipt
            raise _Skip("fab-lot", f"chip {uid.hex()} is of the fab's lot {status.get('lot')!r}")
        return uid, family

    def _make(self, chip: ChipClient, expected: bytes | None) -> bytes:
        uid, family = self._identify(chip, expected)
        row = self.records.get(uid)
        ours = row is not None and row.lot == self.lot and row.state in ("started", "made")
        if row is not None and row.state in ("started", "made") and row.lot != self.lot:
            raise _Skip("other-lot", f"chip {uid.hex()} is of the ICM's lot {row.lot}")
        if family is not None and row is not None and ours and row.state == "made":
            raise _Skip("made-before", f"chip {uid.hex()} was made by this lot before")
        if family is None:
            if row is not None and row.state == "made":
                raise _Skip("inconsistent", f"chip {uid.hex()} was made but reports blank")
            if not ours:
                self.records.start(uid, self.lot, self.icm.family_id)
            try:
                chip.send(self._burn)
            except ChipRefused as e:  # its first answer was lost: it is burned now
                if e.code != "immutable-written":
                    raise _Skip(e.code, e.message) from e
        elif not ours:
            raise _Skip("already-burned", f"chip {uid.hex()} was burned, not by lot {self.lot}")
        der = self._certified(chip, uid)
        self._check_attestation(chip, uid, der)
        seq = self.records.made(uid, self.lot)
        if self._on_chip is not None:
            self._on_chip(uid, f"#{seq}")
        return uid

    def _certified(self, chip: ChipClient, uid: bytes) -> bytes:
        """The chip's certificate, issued once and stored on the chip (invariant 3)."""
        identity = chip.call("rom.identity")
        on_chip = identity.get("certificate")
        row = self.records.get(uid)
        assert row is not None  # noqa: S101 - started above
        if isinstance(on_chip, bytes):
            if row.certificate != on_chip:
                raise _Skip("foreign-certificate", f"chip {uid.hex()} holds another certificate")
            return on_chip
        public = identity.get("public-key")
        if not isinstance(public, bytes):
            try:
                public = chip.make_identity()
            except ChipRefused as e:
                if e.code != "identity-exists":
                    raise _Skip(e.code, e.message) from e
                if row.public_key is None:  # a chip that cannot say its key, answer lost
                    raise _Skip(
                        "identity-lost", f"chip {uid.hex()} made its key; it cannot say which"
                    ) from e
                public = row.public_key
        if row.certificate is not None:
            if row.public_key != public:
                raise _Skip(
                    "identity-mismatch",
                    f"chip {uid.hex()} holds another key than the one certified for it",
                )
            der = row.certificate
        else:
            try:
                cert = certify(self.icm, self._template, uid, public)
            except FormatError as e:
                raise _Skip("bad-identity", e.message) from e
            der = cert.public_bytes(serialization.Encoding.DER)
            self.records.certify(uid, public, der)
        try:
            chip.store_certificate(der)
        except ChipRefused as e:
            if e.code != "lifecycle" or chip.certificate() != der:  # stored; its answer lost
                raise _Skip(e.code, e.message) from e
        return der

    def _check_attestation(self, chip: ChipClient, uid: bytes, der: bytes) -> None:
        challenge = os.urandom(CHALLENGE_LEN)
        key = x509.load_der_x509_certificate(der).public_key()
        try:
            token = Attestation.from_bytes(chip.attest(challenge))
            token.verify(key, challenge)  # type: ignore[arg-type]  # P-256, checked by certify
        except (FormatError, VerificationError, ChipRefused) as e:
            raise _Skip("bad-attestation", f"chip {uid.hex()}: {e}") from e
        if token.claims.uid != uid:
            raise _Skip("misplaced", f"the chip seated as {uid.hex()} signs as another")


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
    if icm.lot_key is None:
        raise InputError(
            f"{icm.path}: this ICM has no lot-signing key; make the family again with "
            "'trustprov icm init'"
        )
    if count is not None and not 1 <= count <= MAX_LOT:
        raise InputError(f"count must be 1..{MAX_LOT:,} (a lot's manifest stays under 2 GiB)")
    try:
        LotChip.check_lot_name(lot)
    except FormatError as e:
        raise InputError(e.message) from e
    manifest_path = Path(manifest_path)
    if not manifest_path.resolve().parent.is_dir():
        raise InputError(f"cannot write {manifest_path}: its directory does not exist")
    check_output(manifest_path, force=force, kind="lot-manifest")
    check_output(signature_path(manifest_path), force=force, kind="lot-signature")
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
