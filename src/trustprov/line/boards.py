"""Provisioning a lot over the wire: the lot's chips from the ICM's lot manifest (the board holds
the farm: it is the tray), on every socket of the chip boards given, or on one serial port.

Same claims, records, resume and reports as `line.station.provision_lot`, which this drives with
a `line.wire.WireRunner` in place of its in-process workers; the same fail-fast checks too
(docs/protocol.md section 9, rule 6): the job against a chip's public status before any chip is
touched (`check_job`), then the canary chip and the stop rule (`line.wire`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from trustprov.errors import InputError, TransportError
from trustprov.formats.lot import LotManifest
from trustprov.line.board_contact import read_board
from trustprov.line.station import LotSummary, provision_lot
from trustprov.line.stopping import STOP_AFTER
from trustprov.line.wire import WireRunner
from trustprov.line.wire_socket import LinkOpener, SocketRef, WireError
from trustprov.line.worker import CHECK_CHIPS
from trustprov.link.address import open_link as default_open_link
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient
from trustprov.link.rate_switch import rate_opener
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.trust import LotTrust


def discover(handlers: Sequence[str], token: str | None = None) -> list[SocketRef]:
    """Every socket of every board, read from the boards' handlers."""
    refs: list[SocketRef] = []
    for address in handlers:
        board = read_board(address, token, who="station", error=WireError)
        for index, s in board.in_service():
            baud = s.get("baud")  # a socket that is a UART: the link's timeouts follow its rate
            rate = f"?baud={baud}" if type(baud) is int and 50 <= baud <= 20_000_000 else ""
            refs.append(SocketRef(board.socket_address(index) + rate, address, index))
    if not refs:
        raise InputError("no socket in service on the boards given")
    return refs


def check_job(
    ref: SocketRef,
    uids: Sequence[bytes],
    job: Job,
    open_link: LinkOpener,
    board_token: str | None = None,
) -> None:
    """`Job.check_lot` before any chip is touched, as over a farm (`line.worker.check_job`):
    against the status of the first chip (of a few of the lot, placed in socket ``ref``; or the
    chip on a bare port) that reports its family. A status read changes nothing on a chip; a
    chip that cannot be read is left to its own record. Raises `VerificationError`."""
    board = BoardClient(ref.handler, token=board_token) if ref.handler else None
    try:
        for uid in uids[:CHECK_CHIPS] if board is not None else [None]:
            try:
                if board is not None and uid is not None:
                    board.insert(ref.index, uid, replace=True)
                link = open_link(ref.address)
                try:
                    status = ChipClient(link).status()
                finally:
                    link.close()
            except TransportError:
                continue
            if isinstance(status.get("family"), bytes):
                job.check_lot(status)
                return
    finally:
        if board is not None:
            with contextlib.suppress(TransportError):  # the run places its own chips
                board.remove(ref.index)
            board.close()


def check_board_or_port(boards: Sequence[str], port: str | None) -> None:
    """The chips of a lot over the wire are on chip boards or behind one port: one of the two.
    The command line checks it here too, before it reads the lot manifest or the records."""
    if bool(boards) == (port is not None):
        raise InputError("with --manifest give --board (one or more) or --port, not both")


def provision_lot_wire(
    *,
    manifest: LotManifest,
    lot: str,
    job: Job,
    records_url: str,
    boards: Sequence[str] = (),
    port: str | None = None,
    station: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    open_link: LinkOpener | None = None,
    stop_after: int = STOP_AFTER,
    records_password: str | None = None,
    board_token: str | None = None,
    baud_max: int | None = None,
) -> LotSummary:
    """`provision_lot` over the wire: the chips of ``lot`` from its manifest, on the sockets of
    ``boards`` (handler addresses, each reached with ``board_token`` if given), or the one chip
    on ``port``; with ``baud_max``, each link switched after its hello to the highest rate its
    chip offers at most that (protocol.md 12.7)."""
    if manifest.lot != lot:
        raise InputError(f"the lot manifest is for lot {manifest.lot!r}, not {lot!r}")
    if manifest.family_id != job.family_id:
        raise InputError("the lot manifest is for another chip family than the bundle")
    check_board_or_port(boards, port)
    open_link = open_link or default_open_link
    if baud_max is not None:
        open_link = rate_opener(baud_max, open_link)
    uids = [c.uid for c in manifest.chips]
    if port is not None:
        runner = WireRunner([SocketRef(port)], job, open_link, lot_uids=frozenset(uids))
    else:
        runner = WireRunner(discover(boards, board_token), job, open_link, board_token=board_token)
    check_job(
        runner.sockets[0], uids, job, open_link, board_token
    )  # before the records store is opened
    return provision_lot(
        farm_path=None,
        lot=lot,
        job=job,
        records_url=records_url,
        station=station,
        on_outcome=on_outcome,
        on_start=on_start,
        lot_uids=uids,
        runner=runner.run,
        stop_after=stop_after,
        records_password=records_password,
        trust=LotTrust.of_manifest(manifest),
    )
