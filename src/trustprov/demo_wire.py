"""`trustprov demo --wire`: FIG. 1 to FIG. 4 with every chip reached only through the wire.

Blank chips from the fab (`chip blank`) on boards that are processes of their own (`chip
serve`): the OEM's chip on a pseudo-terminal, the CM's lot as chip programs (`chip run --stdio`,
one state file each) seated by a TCP board. The ICM makes both over the wire (`line.icm_line`),
the OEM seals its bundle on its chip behind the pty after checking it against the device CA
(`roles.oem.desk_chip`), the CM's station provisions the lot through the board (`line.boards`), and
the OEM reconciles the receipts against the chips it authorized. No chip is touched but over a
link: the probe of `demo.py` is not used (the receipts, verified under each chip's certificate,
are the check).

Invariant: every board this starts is stopped (SIGTERM, then SIGKILL) when the run ends, however
it ends.
"""

from __future__ import annotations

import contextlib
import json
import select
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustprov.demo import CM_LOT, OEM_LOT, mark, write_sample_assets
from trustprov.errors import InputError, TransportError
from trustprov.line.boards import provision_lot_wire
from trustprov.line.icm_line import IcmLineSummary, manufacture_wire
from trustprov.line.receipts import export_receipts
from trustprov.line.records import RecordStore
from trustprov.line.station import LotSummary
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.lots import read_lot
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem import reconcile
from trustprov.roles.oem.authorize import authorize
from trustprov.roles.oem.reconcile import Reconciliation

READY_TIMEOUT = 60.0
SOCKETS = 4
TRUSTPROV = [sys.executable, "-m", "trustprov"]
CHIP_PROGRAM = " ".join(shlex.quote(a) for a in TRUSTPROV) + (
    " chip run --nvm {nvm} --uid {uid} --lot {lot} --stdio"
)


@dataclass
class WireDemoResult:
    oem_chip: IcmLineSummary
    made: IcmLineSummary
    summary: LotSummary
    reconciliation: Reconciliation

    def to_json(self) -> dict[str, Any]:
        r = self.reconciliation
        return {
            **self.summary.to_json(),
            "wire": True,
            "manufactured": self.made.made,
            "receipts": {**r.counts, "missing": len(r.missing)},
            "missing_chips": [u.hex() for u in r.missing[:20]],
        }


class _Board:
    """`trustprov chip serve ARGS` as a process; its first stdout line is its addresses."""

    def __init__(self, args: list[str], log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own program, arguments of our own
            [*TRUSTPROV, *args], stdout=subprocess.PIPE, stderr=self._log
        )
        assert self.proc.stdout is not None  # noqa: S101 - PIPE
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise TransportError(f"a board did not start (see {log})", code="board-down")
        self.ready: dict[str, Any] = json.loads(line)

    @property
    def handler(self) -> str:
        return str(self.ready["handler"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@contextlib.contextmanager
def _board(args: list[str], log: Path) -> Iterator[_Board]:
    board = _Board(args, log)
    try:
        yield board
    finally:
        board.stop()


def _trustprov(*args: str) -> dict[str, Any]:
    """A `trustprov ... --json` command of the chip side (blank chips); its JSON answer."""
    done = subprocess.run(  # noqa: S603 - our own program, arguments of our own
        [*TRUSTPROV, *args, "--json"], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise InputError(f"trustprov {args[0]} {args[1]}: {done.stderr.decode(errors='replace')}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def run_wire(
    out: Path,
    *,
    chips: int = 20,
    jobs: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    icm_keys: str | None = None,
) -> WireDemoResult:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not empty; give a new directory")
    out.mkdir(parents=True, exist_ok=True)
    assets = asset_list.load(write_sample_assets(out / "assets"))
    logs = out / "boards"
    logs.mkdir()
    # FIG. 1, the ICM: the family and its signed software
    family = icm.init(out / "icm", keys=icm_keys)
    software = out / "icm" / "provisioning-software.cose"
    icm.sign_software(family, software)
    ca = out / "icm" / "device-ca.pem"
    icm_records = f"sqlite:///{out / 'icm' / 'records.sqlite'}"
    # the fab's blank chips: one for the OEM's desk, a lot for the CM, as chip programs
    (out / "oem-chip").mkdir()
    desk = out / "oem-chip" / "chip.farm"
    desk_uid = _trustprov("chip", "blank", "--farm", str(desk), "--count", "1", "--lot", OEM_LOT)[
        "chips"
    ][0]
    (out / "cm").mkdir()
    tray = out / "cm" / "tray"
    _trustprov("chip", "blank", "--tray", str(tray), "--count", str(chips), "--lot", CM_LOT)
    desk_args = ["chip", "serve", "--farm", str(desk), "--chip", desk_uid, "--listen", "pty"]
    lot_args = ["chip", "serve", "--exec", CHIP_PROGRAM, "--tray", str(tray)]
    lot_args += ["--listen", "tcp://127.0.0.1:0", "--sockets", str(SOCKETS)]
    with (
        _board(desk_args, logs / "oem-desk.log") as desk_board,
        _board(lot_args, logs / "cm-board.log") as board,
    ):
        port = str(desk_board.ready["port"])
        # the ICM's tester makes the OEM's chip (behind the pty) and the CM's lot (on the board)
        oem_chip = manufacture_wire(
            family, OEM_LOT, out / "oem-chip" / "lot.json", records_url=icm_records, port=port
        )
        made = manufacture_wire(
            family, CM_LOT, out / "cm" / "lot.json", records_url=icm_records,
            boards=[board.handler], count=chips,
        )  # fmt: skip
        for m in (oem_chip, made):
            if m.stopped:
                raise TransportError(f"the ICM's line stopped: {m.stopped}")
        # FIG. 2, the OEM: the software, the lot authorized, the bundle sealed on its desk chip
        oem.verify_software(software, out / "icm" / "prov-signing.pub.pem")
        auth = out / "cm" / "authorized.cbor"
        authorize([out / "cm" / "lot.json"], auth, out / "icm" / "lot-signing.pub.pem")
        oem.keygen(
            None, None, port=port, ca=ca, software_path=software, assets=assets,
            out=out / "oem", auth=auth,
        )  # fmt: skip
        # FIG. 3, the CM: the lot provisioned through the board
        job = Job.load(
            software, out / "oem" / "enc-oem-share.cose", out / "oem" / "bundle.cbor", auth
        )
        records = f"sqlite:///{out / 'cm' / 'records.sqlite'}"
        summary = provision_lot_wire(
            manifest=read_lot(out / "cm" / "lot.json"),
            lot=CM_LOT,
            job=job,
            records_url=records,
            boards=[board.handler],
            on_start=on_start,
            on_outcome=on_outcome,
        )
    # CM -> OEM: the receipts, reconciled against the authorized chips under the device CA
    with RecordStore(records, create=False) as store:
        export_receipts(store, CM_LOT, out / "cm" / "receipts.cbor", "cbor-seq")
    reconciliation = reconcile.run(
        auth=auth,
        ca=ca,
        bundle=out / "oem" / "bundle.cbor",
        receipts=out / "cm" / "receipts.cbor",
        jobs=jobs,
    )
    result = WireDemoResult(oem_chip, made, summary, reconciliation)
    (out / "cm" / "report.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    mark(out)
    return result
