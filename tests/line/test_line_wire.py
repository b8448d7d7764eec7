"""The line over the wire: one station, chip boards in processes of their own, faults survived.

Every run ends checked from both sides: the records (one final record per chip, no chip
provisioned twice, nothing pending) and the chips themselves through the test-only probe (each
holds exactly the OEM's assets: none half-installed).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import helpers
import pytest
from boards import BoardStarter
from cryptography.hazmat.primitives import serialization
from helpers import assert_holds_world_assets, assert_untouched

from trustprov.chip.probe import Probe
from trustprov.formats.bundle import Bundle
from trustprov.formats.lot import LotManifest
from trustprov.line.boards import provision_lot_wire
from trustprov.line.records import RecordStore
from trustprov.line.station import LotSummary
from trustprov.line.wire_socket import WireError
from trustprov.link.address import open_link
from trustprov.link.handler import BoardClient
from trustprov.roles.cm import Job, Outcome
from trustprov.roles.oem import reconcile

World = Any  # tests/conftest.py's World (that module is not importable by name from here)
build_world = helpers._CONFTEST.build_world

# a few hundred in make test; make wire-faults runs the full 2,000
MID_CHIPS = 60
FAULT_CHIPS = int(os.environ.get("TRUSTPROV_WIRE_FAULT_CHIPS", "240"))
# the link's timeouts for loopback: a lost frame costs a quarter second, not a second
FAST_LINK = functools.partial(open_link, timeout=0.25, max_retries=6)


@pytest.fixture(scope="module")
def big_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("wire"), cm_chips=FAULT_CHIPS)


@pytest.fixture(scope="module")
def mid_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("wire-mid"), cm_chips=MID_CHIPS)


def _farm(world: World, tmp_path: Path) -> Path:
    return world.fresh_cm_farm(tmp_path)


def _run(world: World, tmp_path: Path, boards: list[str], **kw: Any) -> LotSummary:
    kw.setdefault("open_link", FAST_LINK)
    return provision_lot_wire(
        manifest=LotManifest.from_json((world.root / "lot.json").read_bytes()),
        lot=world.cm_lot,
        job=Job.load(world.software, world.share, world.bundle),
        records_url=f"sqlite:///{tmp_path / 'records.sqlite'}",
        boards=boards,
        station="wire",
        **kw,
    )


def assert_exactly_once(world: World, farm: Path, tmp_path: Path, *, recovered: int = 0) -> None:
    """Every chip holds the bundle and has one final record; only a chip whose claim a killed
    run left (``recovered`` of them) may be recorded as settled from its own status."""
    uids = world.cm_uids(farm)
    with RecordStore(f"sqlite:///{tmp_path / 'records.sqlite'}", create=False) as store:
        final = store.results(world.cm_lot)
        attempts = store.attempts(world.cm_lot)
    assert sorted(u for u, _, _ in final) == sorted(u.hex() for u in uids)  # one each
    results = Counter(r for _, r, _ in final)
    assert results["provisioned"] + results["already-provisioned"] == len(uids), results
    assert results["already-provisioned"] <= recovered
    installs = Counter(u for u, r, _ in attempts if r == "provisioned")
    twice = [u for u, n in installs.items() if n > 1]
    assert not twice, f"provisioned twice: {twice}"
    with Probe(farm) as p:
        for uid in uids:
            assert_holds_world_assets(p.read(uid), world.public_keys)


def test_a_lot_over_two_boards(world: World, tmp_path: Path, start_board: BoardStarter) -> None:
    farm = _farm(world, tmp_path)
    boards = [start_board(farm, sockets=3), start_board(farm, sockets=2)]
    seen: list[Outcome] = []
    summary = _run(world, tmp_path, [b.handler for b in boards], on_outcome=seen.append)
    assert (summary.provisioned, summary.failed, summary.pending) == (len(seen), 0, 0)
    assert summary.chips == len(world.cm_uids(farm))
    assert_exactly_once(world, farm, tmp_path)
    _assert_receipts(world, tmp_path, summary.chips)
    again = _run(world, tmp_path, [b.handler for b in boards])  # nothing left to do
    assert (again.settled_before, again.provisioned) == (summary.chips, 0)


def _assert_receipts(world: World, tmp_path: Path, chips: int) -> None:
    """Over the wire as in process, every chip's receipt is kept with its final record, and
    each is the chip's own, valid for the bundle."""
    with RecordStore(f"sqlite:///{tmp_path / 'records.sqlite'}", create=False) as store:
        receipts = [r for _, _, r in store.receipts(world.cm_lot)]
    ca = world.icm.ca_cert.public_bytes(serialization.Encoding.DER)
    ref = reconcile.reference(ca, Bundle.from_bytes(world.bundle.read_bytes()))
    result = reconcile.reconcile(receipts, ref, None, jobs=1)
    assert result.counts["valid"] == len(receipts) == chips


def test_a_misplaced_chip_is_a_recorded_error(
    world: World, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = _farm(world, tmp_path)
    board = start_board(farm, sockets=1, faults="misplace=1")  # the wrong chip every time
    summary = _run(world, tmp_path, [board.handler])
    assert summary.failed == summary.chips
    assert dict(summary.failures) == {"misplaced-chip": summary.chips}
    with Probe(farm) as p:
        for uid in world.cm_uids(farm):
            assert_untouched(p.read(uid))  # none provisioned as another chip's record


def test_a_dead_socket_is_taken_out_and_its_chip_retried_elsewhere(
    mid_world: World, tmp_path: Path, start_board: BoardStarter, caplog: pytest.LogCaptureFixture
) -> None:
    world = mid_world  # enough chips that the dead socket is given more after it died
    farm = _farm(world, tmp_path)
    board = start_board(farm, sockets=3)
    killed: list[int] = []

    def kill_socket_0(_o: Outcome) -> None:
        if not killed:
            with BoardClient(board.handler) as h:
                h.kill(0)
            killed.append(0)

    with caplog.at_level(logging.WARNING, logger="trustprov.line.wire"):
        summary = _run(world, tmp_path, [board.handler], on_outcome=kill_socket_0)
    assert killed
    assert "out of service" in caplog.text
    assert (summary.provisioned, summary.failed) == (summary.chips, 0)
    assert_exactly_once(world, farm, tmp_path)


def test_a_killed_board_stops_the_run_and_a_rerun_finishes_exactly_once(
    mid_world: World, tmp_path: Path, start_board: BoardStarter
) -> None:
    world = mid_world
    farm = _farm(world, tmp_path)
    board = start_board(farm, sockets=4)
    count = [0]

    def pull_the_plug(_o: Outcome) -> None:
        count[0] += 1
        if count[0] == 10:
            board.kill()

    with pytest.raises(WireError, match=r"stopped answering.*rerun the same command"):
        _run(world, tmp_path, [board.handler], on_outcome=pull_the_plug)
    with RecordStore(f"sqlite:///{tmp_path / 'records.sqlite'}", create=False) as store:
        assert 10 <= len(store.results(world.cm_lot)) < MID_CHIPS
    restarted = start_board(farm, sockets=4)
    summary = _run(world, tmp_path, [restarted.handler])
    assert summary.pending == 0
    assert summary.failed == 0
    assert summary.recovered > 0  # the chips in flight when the plug was pulled
    assert_exactly_once(world, farm, tmp_path, recovered=summary.recovered)


def test_faults_on_every_wire(
    big_world: World, tmp_path: Path, start_board: BoardStarter, caplog: pytest.LogCaptureFixture
) -> None:
    """1 % of frames dropped and 1 % corrupted, a power cut in 1 chip of 50, over two boards."""
    world = big_world
    farm = _farm(world, tmp_path)
    faults = "drop=0.01,corrupt=0.01,powercut=0.02,seed={}"
    boards = [start_board(farm, sockets=8, faults=faults.format(s)) for s in (1, 2)]
    with caplog.at_level(logging.INFO, logger="trustprov.line.wire"):
        summary = _run(world, tmp_path, [b.handler for b in boards])
    assert "retrying" in caplog.text  # the power cuts happened, and were survived
    assert (summary.provisioned, summary.failed, summary.pending) == (FAULT_CHIPS, 0, 0)
    assert_exactly_once(world, farm, tmp_path)


def test_duplicated_delayed_reordered_frames_and_cut_cables(
    mid_world: World, tmp_path: Path, start_board: BoardStarter, caplog: pytest.LogCaptureFixture
) -> None:
    world = mid_world
    farm = _farm(world, tmp_path)
    faults = "dup=0.02,delay=0.02:30ms,reorder=0.02,cut=0.005,seed=5"
    board = start_board(farm, sockets=4, faults=faults)
    with caplog.at_level(logging.INFO, logger="trustprov.line.wire"):
        summary = _run(world, tmp_path, [board.handler])
    assert "retrying" in caplog.text  # a cable was cut, and the chip taken up again
    assert (summary.failed, summary.pending) == (0, 0), summary.failures
    assert_exactly_once(world, farm, tmp_path)


def test_a_board_that_is_not_running_is_one_clear_error(tmp_path: Path, world: World) -> None:
    farm = _farm(world, tmp_path)
    shutil.copyfile(farm, tmp_path / "unused.farm")
    with pytest.raises(WireError, match="does not answer: start it first"):
        _run(world, tmp_path, ["tcp://127.0.0.1:9"])
