"""A dishonest board: it seats another chip than the one the station asks for and rewrites the
UID in every ``rom.status`` answer to the one asked for (docs/threat-model.md T24).

Claim under attack: no chip's record says ``provisioned`` or ``already-provisioned`` unless
that very chip holds the bundle, over TCP boards and in-process (docs/protocol.md 9, rule 7).
Before the station verified what chips sign, the station recorded the chip it asked for as
provisioned (holding the swapped chip's receipt) or as already-provisioned, and it shipped
blank.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boards import BoardStarter
from helpers import Bench, world_job

from trustprov.chip.probe import Probe
from trustprov.formats.lot import LotManifest
from trustprov.line import batches
from trustprov.line.boards import provision_lot_wire
from trustprov.line.records import RecordStore
from trustprov.line.station import provision_lot
from trustprov.link import messages
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.trust import LotTrust

from .attack_helpers import report

FAST_LINK = functools.partial(open_link, timeout=0.25, max_retries=6)
GOOD = ("provisioned", "already-provisioned")


def _manifest(world: Any) -> LotManifest:
    return LotManifest.from_json((world.root / "lot.json").read_bytes())


def _records(tmp_path: Path, lot: str) -> list[tuple[str, str, str | None]]:
    with RecordStore(f"sqlite:///{tmp_path / 'records.sqlite'}", create=False) as store:
        return [(u, r, c) for u, r, c in store.results(lot)]


class _Witness:
    """Probes each chip the moment its record is written: a record that says the chip holds
    the bundle must be true of that very chip then (a later swap may fill it by chance)."""

    def __init__(self, world: Any, farm: Path) -> None:
        self.farm = farm
        self.bundle_id = world_job(world).prepared.bundle_id
        self.false: list[str] = []
        self.counts: dict[str, int] = {}

    def __call__(self, outcome: Outcome) -> None:
        self.counts[outcome.result] = self.counts.get(outcome.result, 0) + 1
        if outcome.result in GOOD:
            with Probe(self.farm) as p:
                held = p.read(outcome.uid).bundle_id
            if held != self.bundle_id:
                self.false.append(f"{outcome.uid.hex()} {outcome.result}")


def _wire(world: Any, farm: Path, tmp_path: Path, handler: str, witness: _Witness) -> Any:
    return provision_lot_wire(
        manifest=_manifest(world),
        lot=world.cm_lot,
        job=Job.load(world.software, world.share, world.bundle),
        records_url=f"sqlite:///{tmp_path / 'records.sqlite'}",
        boards=[handler],
        station="dishonest",
        open_link=FAST_LINK,
        stop_after=0,
        on_outcome=witness,
    )


def test_a_board_that_swaps_chips_and_rewrites_their_uid_records_nothing_false(
    world: Any, tmp_path: Path, start_board: BoardStarter
) -> None:
    """Provisioned: the swapped chip installs, but its receipt is not the claimed chip's."""
    farm = world.fresh_cm_farm(tmp_path)
    board = start_board(farm, sockets=1, faults="misplace=1,lie=1")
    witness = _Witness(world, farm)
    summary = _wire(world, farm, tmp_path, board.handler, witness)
    assert witness.false == []
    assert witness.counts == {"bad-receipt": summary.chips}  # every chip was another
    codes = {c for _, r, c in _records(tmp_path, world.cm_lot)}
    assert codes == {"wrong-chip"}
    report("dishonest-board-provision", chips=summary.chips, false_records=len(witness.false))


def test_a_swapped_chip_that_holds_the_bundle_does_not_settle_a_blank_one(
    world: Any, tmp_path: Path, start_board: BoardStarter
) -> None:
    """Already-provisioned: a blank chip's neighbour holds the bundle and answers for it."""
    farm = world.fresh_cm_farm(tmp_path)
    job = world_job(world)
    with Bench(farm) as b:
        uids = sorted(b.uids())
        for uid in uids[1:]:  # every chip but the first holds the bundle
            assert b.provision(uid, job).result == "provisioned"
    board = start_board(farm, sockets=1, faults="misplace=1,lie=1")
    witness = _Witness(world, farm)
    _wire(world, farm, tmp_path, board.handler, witness)
    assert witness.false == []
    final = {u: (r, c) for u, r, c in _records(tmp_path, world.cm_lot)}
    assert final[uids[0].hex()] == ("failed", "bad-attestation")
    report("dishonest-board-settle", chips=len(uids), false_records=len(witness.false))


class _LyingFarm(FarmLink):
    """In-process stand-in for a dishonest programmer: connects the next chip of the farm and
    rewrites its rom.status answers to name the chip asked for."""

    @contextlib.contextmanager
    def connect(self, uid: bytes, **kw: Any) -> Iterator[ChipClient]:
        uids = sorted(self.uids())
        other = uids[(uids.index(uid) + 1) % len(uids)]
        with super().connect(other, **kw) as client:
            yield _LyingClient(client, uid)


class _LyingClient(ChipClient):
    def __init__(self, inner: ChipClient, claimed: bytes) -> None:
        super().__init__(inner._link)
        self._claimed = claimed

    def send(self, request: bytes) -> dict[str, Any]:
        answer = super().send(request)
        if messages.decode_request(request)[0] == "rom.status":
            return {**answer, "uid": self._claimed}
        return answer


def test_the_in_process_line_checks_the_same(world: Any, tmp_path: Path, monkeypatch: Any) -> None:
    farm = world.fresh_cm_farm(tmp_path)
    job = world_job(world)
    with Bench(farm) as b:
        half = b.uids()[::2]
        for uid in half:  # every other chip holds the bundle
            assert b.provision(uid, job).result == "provisioned"
    monkeypatch.setattr(batches, "FarmLink", _LyingFarm)  # the station's own chips (jobs=1)
    witness = _Witness(world, farm)
    summary = provision_lot(
        farm_path=farm,
        lot=world.cm_lot,
        job=Job.load(world.software, world.share, world.bundle),
        records_url=f"sqlite:///{tmp_path / 'records.sqlite'}",
        jobs=1,
        station="dishonest",
        stop_after=0,
        trust=LotTrust.of_manifest(_manifest(world)),
        on_outcome=witness,
    )
    assert witness.false == []
    assert sum(witness.counts.get(r, 0) for r in GOOD) == 0  # every chip was another
    assert sum(witness.counts.values()) == summary.chips
