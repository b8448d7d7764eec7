"""Section 9 rule 6 over the wire, exactly as over a farm (tests/line/test_line_failfast.py): the
pre-check refuses before any chip is touched a job the lot's chips cannot verify under the suite
they report; a refusal every chip would repeat leaves one failure record (the canary's) and the
rest pending; the same failure repeated ``stop_after`` times stops the lot. Over TCP, chip boards
in processes of their own, and over a bare port."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from boards import BoardStarter
from cryptography.hazmat.primitives.asymmetric import mldsa
from helpers import Bench, assert_untouched, flip_bit

from trustprov.errors import VerificationError
from trustprov.formats.lot import LotChip, LotManifest
from trustprov.formats.software import SignedSoftware
from trustprov.line.boards import provision_lot_wire
from trustprov.line.records import RecordStore
from trustprov.line.station import LotSummary
from trustprov.link.address import open_link
from trustprov.link.handler import BoardClient
from trustprov.roles.cm import Job
from trustprov.roles.icm.software import SOFTWARE_NAME

World = Any
FAST_LINK = functools.partial(open_link, timeout=0.25, max_retries=6)


def _manifest(world: World) -> LotManifest:
    return LotManifest.from_json((world.root / "lot.json").read_bytes())


def _run(
    world: World, records: Path, job: Job, *, manifest: LotManifest | None = None, **kw: Any
) -> LotSummary:
    manifest = manifest or _manifest(world)
    return provision_lot_wire(
        manifest=manifest,
        lot=manifest.lot,
        job=job,
        records_url=f"sqlite:///{records}",
        station="wire",
        open_link=FAST_LINK,
        **kw,
    )


def _records(records: Path, lot: str) -> tuple[list[str], dict[str, int]]:
    with RecordStore(f"sqlite:///{records}", create=False) as store:
        (job,) = store.find_jobs(lot)
        return [r for _, r, _ in store.attempts(lot)], store.states(job)


def _hybrid_job(world: World) -> Job:
    """The family's own software, signed ES256+ML-DSA-65 (the family's ES256 key and an ML-DSA
    key): a genuine-looking hybrid image that chips reporting ES256 cannot verify."""
    software = SignedSoftware.from_bytes(world.software.read_bytes())
    assert software.alg == "ES256"
    hybrid = SignedSoftware.sign(
        [world.icm.signing_key, mldsa.MLDSA65PrivateKey.generate()],
        alg="ES256+ML-DSA-65",
        name=SOFTWARE_NAME,
        version=software.version,
        security_version=software.security_version,
        code=software.code,
    )
    return Job.from_bytes(hybrid.to_bytes(), world.share.read_bytes(), world.bundle.read_bytes())


def test_a_hybrid_image_for_es256_chips_is_refused_before_any_chip_over_boards(
    world: World, tmp_path: Path, start_board: BoardStarter
) -> None:
    farm = world.fresh_cm_farm(tmp_path)
    board = start_board(farm, sockets=2)
    records = tmp_path / "records.sqlite"
    with pytest.raises(VerificationError) as e:
        _run(world, records, _hybrid_job(world), boards=[board.handler])
    assert e.value.code == "bad-signature"
    assert len(e.value.message.splitlines()) == 1
    assert not records.exists()  # not even a records store: nothing was attempted
    board.stop()
    with Bench(farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))


def test_a_hybrid_image_for_es256_chips_is_refused_before_the_chip_over_a_port(
    world: World, tmp_path: Path, start_board: BoardStarter
) -> None:
    """``--port``: one chip behind a bare address (here a board's socket, the chip placed in
    it beforehand), checked before it is sent anything but ``rom.status``."""
    farm = world.fresh_cm_farm(tmp_path)
    uid = world.cm_uids(farm)[0]
    board = start_board(farm, sockets=1)
    with BoardClient(board.handler) as handler:
        handler.insert(0, uid)
    records = tmp_path / "records.sqlite"
    with pytest.raises(VerificationError) as e:
        _run(world, records, _hybrid_job(world), port=board.sockets[0])
    assert e.value.code == "bad-signature"
    assert not records.exists()
    board.stop()
    with Bench(farm) as bench:
        assert_untouched(bench.read(uid))


def test_a_refusal_every_chip_would_repeat_stops_at_the_canary_over_boards(
    world: World, tmp_path: Path, start_board: BoardStarter
) -> None:
    """ENC(OEM_SHARE) with a flipped bit in its tag: only a chip can tell, and every chip
    would. One chip tried, one failure record, the others pending; the summary says so."""
    share = world.share.read_bytes()
    share = flip_bit(share, (len(share) - 3) * 8)
    job = Job.from_bytes(world.software.read_bytes(), share, world.bundle.read_bytes())
    farm = world.fresh_cm_farm(tmp_path)
    boards = [start_board(farm, sockets=3), start_board(farm, sockets=2)]
    records = tmp_path / "records.sqlite"
    chips = len(_manifest(world).chips)
    summary = _run(world, records, job, boards=[b.handler for b in boards])
    assert (summary.provisioned, summary.failed, summary.pending) == (0, 1, chips - 1)
    (code,) = summary.failures
    assert code == "bad-share"
    assert code in summary.stopped
    assert "every chip" in summary.stopped
    attempts, states = _records(records, world.cm_lot)
    assert attempts == ["failed"]  # one failure record, not one per chip
    assert states == {"pending": chips - 1, "claimed": 0, "done": 1}
    for b in boards:
        b.stop()
    with Bench(farm) as bench:
        for uid in bench.uids():
            assert_untouched(bench.read(uid))
    # the right artifacts finish the lot, the canary's chip included
    boards = [start_board(farm, sockets=3)]
    good = _run(
        world,
        records,
        Job.load(world.software, world.share, world.bundle),
        boards=[boards[0].handler],
    )
    assert (good.retried, good.provisioned, good.failed, good.stopped) == (1, chips, 0, "")


def test_the_same_failure_repeated_stops_the_lot_over_boards(
    world: World, tmp_path: Path, start_board: BoardStarter
) -> None:
    """A lot manifest whose chips after the genuine ones are not in the board's tray: each of
    those fails with not-in-tray (a failure of that chip, not systemic); after ``stop_after`` in
    a row the lot stops, the chips no socket started go back pending, and the summary is
    true."""
    genuine = _manifest(world)
    absent = [
        LotChip(b"\xff" * 8 + i.to_bytes(8, "big"), genuine.chips[0].certificate) for i in range(40)
    ]
    manifest = LotManifest(genuine.lot, genuine.family_id, (*genuine.chips, *absent))
    farm = world.fresh_cm_farm(tmp_path)
    board = start_board(farm, sockets=2)
    records = tmp_path / "records.sqlite"
    stop_after, sockets = 4, 2
    summary = _run(
        world,
        records,
        Job.load(world.software, world.share, world.bundle),
        manifest=manifest,
        boards=[board.handler],
        stop_after=stop_after,
    )
    assert summary.failures.keys() == {"not-in-tray"}
    # each socket's task sees every outcome before it takes another chip: one socket alone
    # reaches the threshold, a success on the other may start the run again once before the
    # last genuine chip settles (as each worker process over a farm: tests/line/
    # test_line_failfast.py), so at most the threshold per socket
    assert stop_after <= summary.failed <= stop_after * sockets
    assert "in a row failed with not-in-tray" in summary.stopped
    attempts, states = _records(records, genuine.lot)
    results = Counter(attempts)
    assert results["failed"] == summary.failed
    assert results["provisioned"] == summary.provisioned
    assert len(attempts) == summary.provisioned + summary.failed  # none for a chip not tried
    settled = summary.provisioned + summary.failed
    assert states == {"pending": len(manifest.chips) - settled, "claimed": 0, "done": settled}
    assert summary.pending == len(manifest.chips) - settled >= 40 - summary.failed
