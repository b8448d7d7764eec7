"""The ICM's line over the wire (line/icm_line.py, line/icm_chip.py): blank chips on a board
burned, certified and listed once each, through faults, crashes and resumes (docs/protocol.md
13.6)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from boards import BoardStarter
from cryptography import x509

from trustprov.errors import TransportError
from trustprov.line import icm_chip
from trustprov.line.icm_line import manufacture_wire
from trustprov.line.records import RecordStore
from trustprov.line.records.icm_chips import IcmRecords
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.link.handler import BoardClient
from trustprov.roles import icm as role
from trustprov.roles.lots import load_lot_key, read_lot
from trustprov.roles.oem.desk_chip import check_chip


@pytest.fixture(scope="module")
def icm(tmp_path_factory: pytest.TempPathFactory) -> role.Icm:
    return role.init(tmp_path_factory.mktemp("icm") / "icm")


@pytest.fixture(scope="module")
def other_icm(tmp_path_factory: pytest.TempPathFactory) -> role.Icm:
    return role.init(tmp_path_factory.mktemp("icm-b") / "icm")


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:
    return _certify_counter(monkeypatch)


def _blank_farm(path: Path, n: int, lot: str, first: int = 0x10) -> list[bytes]:
    """``n`` blank chips of the fab's lot ``lot`` (the lot the ICM must make them into)."""
    uids = [bytes([first + i]) * 16 for i in range(n)]
    with FarmLink(path, create=True) as farm, farm.batch():
        for uid in uids:
            farm.add_blank(uid, lot)
    return uids


def _certify_counter(monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:
    """How many certificates the line issued per UID."""
    issued: Counter[bytes] = Counter()
    real = icm_chip.certify

    def counting(icm: role.Icm, template: Any, uid: bytes, public: bytes) -> x509.Certificate:
        issued[uid] += 1
        return real(icm, template, uid, public)

    monkeypatch.setattr(icm_chip, "certify", counting)
    return issued


def _check_lot(icm: role.Icm, manifest: Path, handler: str, expected: set[bytes]) -> list[bytes]:
    """The signed manifest lists each expected chip once, and each chip on the board holds the
    manifest's certificate, issued by the device CA, and proves it holds its key."""
    lot = read_lot(manifest, load_lot_key(icm.path / "lot-signing.pub.pem"))
    uids = [c.uid for c in lot.chips]
    assert sorted(uids) == sorted(expected)
    with BoardClient(handler) as board:
        sockets = board.status()
        address = handler.rpartition(":")[0] + f":{int(handler.rpartition(':')[2]) + 1}"
        assert sockets[0]["socket"] == 0
        for chip in lot.chips:
            board.insert(0, chip.uid, replace=True)
            link = open_link(address)
            try:
                client = ChipClient(link)
                status = check_chip(client, icm.ca_cert, "test")  # CA, subject, rom.attest
                assert status["uid"] == chip.uid
                assert client.certificate() == chip.certificate
            finally:
                link.close()
        board.remove(0)
    return uids


def test_a_board_of_blank_chips_is_made_once_each_and_resumes(
    *,
    icm: role.Icm,
    other_icm: role.Icm,
    tmp_path: Path,
    start_board: BoardStarter,
    records_url: str,
    issued: Counter[bytes],
) -> None:
    uids = _blank_farm(tmp_path / "f.farm", 4, "LA")
    uids += _blank_farm(tmp_path / "f.farm", 1, "W9", first=0x70)  # the fab's other lot
    board = start_board(tmp_path / "f.farm", sockets=2)
    # another family's ICM takes one chip first: ours must skip it, never burn it again
    other = manufacture_wire(
        other_icm, "LA", tmp_path / "lb.json", records_url=records_url,
        boards=[board.handler], count=1,
    )  # fmt: skip
    assert (other.made, other.stopped) == (1, None)
    s = manufacture_wire(
        icm, "LA", tmp_path / "la.json", records_url=f"sqlite:///{tmp_path / 'a.sqlite'}",
        boards=[board.handler],
    )  # fmt: skip
    assert (s.made, s.made_now, s.skipped, s.failed, s.stopped) == (
        3,
        3,
        {"other-family": 1, "fab-lot": 1},
        {},
        None,
    )
    theirs = {c.uid for c in read_lot(tmp_path / "lb.json").chips}
    made = _check_lot(icm, tmp_path / "la.json", board.handler, set(uids[:4]) - theirs)
    # a second run makes nothing again and lists the same chips in the same order
    again = manufacture_wire(
        icm, "LA", tmp_path / "la.json", records_url=f"sqlite:///{tmp_path / 'a.sqlite'}",
        boards=[board.handler], force=True,
    )  # fmt: skip
    assert (again.made, again.made_now) == (3, 0)
    assert [c.uid for c in read_lot(tmp_path / "la.json").chips] == made
    assert set(issued.values()) == {1}
    assert len(issued) == 4  # one by the other family, three by ours


def test_count_takes_n_chips_and_says_when_the_boards_hold_too_few(
    icm: role.Icm, tmp_path: Path, start_board: BoardStarter
) -> None:
    _blank_farm(tmp_path / "f.farm", 3, "L1")
    _blank_farm(tmp_path / "f.farm", 1, "L2", first=0x70)
    board = start_board(tmp_path / "f.farm")
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    s = manufacture_wire(
        icm, "L1", tmp_path / "l1.json", records_url=url, boards=[board.handler], count=2
    )
    assert (s.made, s.stopped) == (2, None)
    assert len(read_lot(tmp_path / "l1.json").chips) == 2
    short = manufacture_wire(
        icm, "L2", tmp_path / "l2.json", records_url=url, boards=[board.handler], count=2
    )
    assert (short.made, short.manifest) == (1, None)
    assert "only 1 of 2" in str(short.stopped)
    assert short.skipped == {"fab-lot": 3}  # L1's two made chips and its blank one
    assert not (tmp_path / "l2.json").exists()


class _Crash(BaseException):
    """A kill at one exact step (BaseException: nothing on the way catches it)."""


@pytest.mark.parametrize("step", ["burn", "make-identity", "certify", "store-certificate"])
def test_a_line_killed_at_any_step_resumes_with_every_chip_made_once(
    icm: role.Icm,
    tmp_path: Path,
    start_board: BoardStarter,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    uids = _blank_farm(tmp_path / "f.farm", 3, "L")
    board = start_board(tmp_path / "f.farm")
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    issued = _certify_counter(monkeypatch)
    counted_certify = icm_chip.certify
    calls = Counter[str]()
    real_send, real_store = ChipClient.send, ChipClient.store_certificate

    def send(self: ChipClient, request: bytes) -> dict[str, Any]:
        answer = real_send(self, request)  # the chip did it; its answer is lost with the host
        op = (
            "burn"
            if b"rom.burn" in request
            else "make-identity"
            if b"make-identity" in request
            else ""
        )
        if op == step and (calls := _bump(op)) == 2:
            raise _Crash(calls)
        return answer

    def store(self: ChipClient, der: bytes) -> None:
        real_store(self, der)
        if step == "store-certificate" and _bump(step) == 2:
            raise _Crash

    def certify(*a: Any) -> x509.Certificate:
        cert = counted_certify(*a)
        if step == "certify" and _bump(step) == 2:
            raise _Crash  # issued, not yet recorded: the next run issues it (nothing was sent)
        return cert

    def _bump(op: str) -> int:
        calls[op] += 1
        return calls[op]

    monkeypatch.setattr(ChipClient, "send", send)
    monkeypatch.setattr(ChipClient, "store_certificate", store)
    monkeypatch.setattr(icm_chip, "certify", certify)
    with pytest.raises(_Crash):
        manufacture_wire(icm, "L", tmp_path / "l.json", records_url=url, boards=[board.handler])
    assert not (tmp_path / "l.json").exists()
    # the next run (the same command) finishes the lot
    monkeypatch.setattr(ChipClient, "send", real_send)
    monkeypatch.setattr(ChipClient, "store_certificate", real_store)
    monkeypatch.setattr(icm_chip, "certify", counted_certify)
    s = manufacture_wire(icm, "L", tmp_path / "l.json", records_url=url, boards=[board.handler])
    assert (s.made, s.skipped, s.failed, s.stopped) == (3, {}, {}, None)
    _check_lot(icm, tmp_path / "l.json", board.handler, set(uids))
    recorded = sum(issued.values()) - (1 if step == "certify" else 0)  # the one never recorded
    assert recorded == 3
    assert max(issued.values()) <= 2
    if step != "certify":
        assert all(n == 1 for n in issued.values())


def test_faults_on_the_wire_make_every_chip_once(
    icm: role.Icm, tmp_path: Path, start_board: BoardStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    uids = _blank_farm(tmp_path / "f.farm", 6, "LF")
    spec = "drop=0.05,corrupt=0.05,cut=0.03,powercut=0.3,seed=11"
    board = start_board(tmp_path / "f.farm", sockets=2, faults=spec)
    issued = _certify_counter(monkeypatch)
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    for _ in range(4):  # a chip the faults beat ATTEMPTS times is failed: the rerun takes it up
        s = manufacture_wire(
            icm, "LF", tmp_path / "lf.json", records_url=url, boards=[board.handler]
        )
        assert s.skipped == {}
        if s.stopped is None:
            break
    assert (s.stopped, s.made) == (None, 6)
    board.stop()  # the faulty board's farm, checked on a board without faults
    clean = start_board(tmp_path / "f.farm")
    made = set(_check_lot(icm, tmp_path / "lf.json", clean.handler, set(uids)))
    assert made == set(uids)
    assert set(issued.values()) == {1}
    assert len(issued) == 6
    with RecordStore(url) as store:
        assert IcmRecords(store, "t").counts("LF") == {"made": 6}


def test_a_chip_that_cannot_be_reached_is_failed_not_guessed(
    icm: role.Icm, tmp_path: Path, start_board: BoardStarter
) -> None:
    _blank_farm(tmp_path / "f.farm", 1, "LX")
    board = start_board(tmp_path / "f.farm")

    def dead(_address: str) -> Any:
        raise TransportError("no answer")

    s = manufacture_wire(
        icm, "LX", tmp_path / "lx.json", records_url=f"sqlite:///{tmp_path / 'r.sqlite'}",
        boards=[board.handler], open_link=dead, attempts=2,
    )  # fmt: skip
    assert (s.made, s.manifest) == (0, None)
    assert s.failed
    assert s.stopped


def test_a_chip_made_elsewhere_is_skipped_never_burned_again(
    icm: role.Icm, tmp_path: Path, start_board: BoardStarter, issued: Counter[bytes]
) -> None:
    """A chip of this family that already has its identity (made by the farm's line, or by a
    run whose records are not these) is recorded and sent nothing that writes."""
    made = role.manufacture(icm, tmp_path / "f.farm", "LM", 2, tmp_path / "farm-lot.json")
    before = {c.uid: c.certificate for c in made.load_manifest().chips}
    board = start_board(tmp_path / "f.farm")
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    s = manufacture_wire(icm, "LM", tmp_path / "lm.json", records_url=url, boards=[board.handler])
    assert (s.made, s.skipped) == (0, {"already-burned": 2})
    assert s.stopped == "no chip made: the boards hold no blank chip"
    assert not issued
    with RecordStore(url) as store:
        rows = IcmRecords(store, "t")
        assert rows.counts("LM") == {"skipped": 2}
        assert rows.reasons("LM")["skipped"] == {"already-burned": 2}
    with BoardClient(board.handler) as h:  # each still holds its first certificate
        for uid, der in before.items():
            h.insert(0, uid, replace=True)
            link = open_link(board.sockets[0])
            try:
                assert ChipClient(link).certificate() == der
            finally:
                link.close()


def test_a_chip_two_boards_both_list_is_made_once(
    icm: role.Icm, tmp_path: Path, start_board: BoardStarter, issued: Counter[bytes]
) -> None:
    uids = _blank_farm(tmp_path / "f.farm", 3, "LD")
    boards = [start_board(tmp_path / "f.farm"), start_board(tmp_path / "f.farm")]
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    s = manufacture_wire(
        icm, "LD", tmp_path / "ld.json", records_url=url, boards=[b.handler for b in boards]
    )
    assert (s.made, s.made_now, s.skipped, s.stopped) == (3, 3, {}, None)
    assert sorted(c.uid for c in read_lot(tmp_path / "ld.json").chips) == sorted(uids)
    assert set(issued.values()) == {1}
    with RecordStore(url) as store:
        assert sorted(c.seq or 0 for c in IcmRecords(store, "t").lot_chips("LD")) == [1, 2, 3]
