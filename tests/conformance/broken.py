"""Deliberately broken chips (test-only), each with one defect a conformance case must catch.

A variant replaces the chip's link endpoint or its I/O port in a board served in this process,
so the suite meets it over a real TCP socket exactly as it meets a good chip. `DEFECTS` maps each
variant to the case that names its defect; the link-layer variants below it are registered in
`mutants.py`, with the rest of the broken chips.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from trustprov.board import slot
from trustprov.board.server import Board
from trustprov.chip.farm import Farm
from trustprov.chip.uart import ChipEndpoint
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.errors import ChipRefused, FormatError, TrustprovError
from trustprov.formats.frame import SEQ_MOD, Frame, FrameType, crc32, encode_frame, unstuff
from trustprov.formats.sealed import SealedValue
from trustprov.link import messages
from trustprov.link.handler import BoardClient
from trustprov.link.port import ChipPort

UID = bytes(range(16))


# -- the link layer --------------------------------------------------------------------------
class AckBeforeCrc(ChipEndpoint):
    """ACKs a fragment from its header before checking its CRC."""

    def feed(self, data: bytes) -> bytes:
        early = bytearray()
        for segment in data.split(b"\xc0"):
            try:
                body = unstuff(segment)
            except FormatError:
                continue
            if len(body) < 12 or body[0] != FrameType.REQUEST or not body[1] & 1:
                continue
            _, _, seq, frag, _ = struct.unpack(">BBHHH", body[:8])
            if crc32(body[8:-4] + body[:8]) != int.from_bytes(body[-4:]):
                early += encode_frame(FrameType.ACK, seq, frag)  # the defect
        return bytes(early) + super().feed(data)


class Unbounded(ChipEndpoint):
    """Takes any number of fragments, empty ones too (the bound of 65,536 of old)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.max_fragments = 1 << 16

    def _accept(self, frame: Frame) -> bytes:
        if frame.more and not frame.payload:
            self._expected_frag += 1  # the defect: an empty fragment taken as any other
            return encode_frame(FrameType.ACK, frame.seq, frame.frag)
        return super()._accept(frame)


class RunsDuplicates(ChipEndpoint):
    """Runs a duplicate of a message again instead of answering from its cache."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        self._requests: dict[int, bytes] = {}
        super().__init__(*a, **kw)

    def _execute(self, seq: int) -> bytes:
        self._requests[seq] = bytes(self._rx)
        return super()._execute(seq)

    def _executed_before(self, frame: Frame) -> bytes:
        if not frame.more and frame.seq in self._requests:  # the defect: run it once more
            return self._response_frames(frame.seq, self._handler(self._requests[frame.seq]))
        return super()._executed_before(frame)


# -- the link layer, for mutants.py ------------------------------------------------------------
class ManyNaks(ChipEndpoint):
    """Sends a NAK for every frame out of place, not one per position (12.3)."""

    def _nak(self) -> bytes:
        self._nak_sent = False
        return super()._nak()


class NoErrorFrames(ChipEndpoint):
    """Drops an oversized message without the ERROR frame (12.3)."""

    def _accept(self, frame: Any) -> bytes:
        out = super()._accept(frame)
        return b"" if out[1:2] == bytes([FrameType.ERROR]) else out


class KeepsLink(ChipEndpoint):
    """Keeps its link (id, sequence, cache) across a power cut (12.5)."""

    def reset(self) -> None:
        kept = {
            k: getattr(self, k, None)
            for k in ("_link_id", "_next_seq", "_hello_answer", "_cache", "boot_id")
        }
        super().reset()
        if kept["_link_id"] is not None:
            for k, v in kept.items():
                setattr(self, k, v)


class RunsWithoutHello(ChipEndpoint):
    """Runs a request that comes before any HELLO since power-on (12.3: RESET)."""

    def _request(self, frame: Any) -> bytes:
        if self._link_id is None:
            self._link_id = b"\x00\x00\x00\x00"
            self._next_seq = frame.seq
        return super()._request(frame)


class RunsLaterMessages(ChipEndpoint):
    """Runs a later message at once, as if the ones before it were lost (12.3: NAK)."""

    def _request(self, frame: Any) -> bytes:
        distance = (frame.seq - self._next_seq) % SEQ_MOD
        if self._link_id is not None and 0 < distance < SEQ_MOD - self.window:
            self._next_seq, self._expected_frag = frame.seq, 0
            self._rx.clear()
        return super()._request(frame)


class NeverIdles(ChipEndpoint):
    """Keeps a session open through any silence (12.5 idle timeout)."""

    def poll(self) -> None:
        """The defect: the timer never fires."""


class AnswersAnyHello(ChipEndpoint):
    """Answers a HELLO whose payload is not 5 bytes (12.2: ignored)."""

    def _hello(self, frame: Any) -> bytes:
        if len(frame.payload) != 5 and len(frame.payload) >= 4:
            frame = frame._replace(payload=b"\x01" + frame.payload[-4:])
        return super()._hello(frame)


class NoFragmentAcks(ChipEndpoint):
    """Takes a short fragment with MORE (under 64 bytes) silently, without its ACK (12.3): a
    length check in the wrong place. Long fragments are ACKed, so the rest of the suite runs."""

    def _accept(self, frame: Any) -> bytes:
        out = super()._accept(frame)
        short = frame.more and len(frame.payload) < 64
        return b"" if short and out[1:2] == bytes([FrameType.ACK]) else out


# -- the chip's port --------------------------------------------------------------------------
class _Port(ChipPort):
    def handle(self, request: bytes) -> bytes:
        try:
            op, args = messages.decode_request(request)
        except FormatError:
            return super().handle(request)
        return self.broken(op, args, request)

    def broken(self, _op: str, _args: dict[str, Any], request: bytes) -> bytes:
        return self.real(request)

    def real(self, request: bytes) -> bytes:
        """What a good chip answers."""
        return ChipPort.handle(self, request)

    def error_of(self, response: bytes) -> tuple[str, str] | None:
        try:
            messages.decode_response(response)
        except ChipRefused as e:
            return e.code, e.message
        return None


class AcceptsOutOfOrder(_Port):
    """Answers ok to a chunk that comes before its predecessor."""

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        response = self.real(request)
        err = self.error_of(response)
        if op == "cm.chunk" and err is not None and "order" in err[1]:
            return messages.encode_ok({})  # the defect
        return response


class SessionAfterLock(_Port):
    """Refuses `lock` under a session but keeps the session open."""

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        sw = self._software
        if op == "lock" and sw is not None and (sw._sealing or sw._provisioning):  # its own state
            return messages.encode_error("bad-sequence", "a session is open")  # session kept
        return self.real(request)


class LeakyMessage(_Port):
    """Puts the first byte of K_AUTH in the text of a refused `cm.begin`."""

    def broken(self, op: str, args: dict[str, Any], request: bytes) -> bytes:
        response = self.real(request)
        err = self.error_of(response)
        if op != "cm.begin" or err is None:
            return response
        mem = self._chip._state.immutable
        assert mem is not None
        try:
            share = SealedValue.from_bytes(args["enc-oem-share"]).open(mem.k_oem_share)
        except (TrustprovError, KeyError, TypeError):  # no share to leak from: a plain refusal
            return response
        auth = derive_keys(g_master_key(share, mem.hw_share, mem.rom_share), mem.family_id).auth
        return messages.encode_error(err[0], f"{err[1]} (k {auth[0]:02x})")  # the defect


class LeakyStatus(_Port):
    """Answers `rom.status` with a debug field holding K_OEM_SHARE."""

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        response = self.real(request)
        mem = self._chip._state.immutable
        if op != "rom.status" or mem is None:
            return response
        status = messages.decode_response(response)
        return messages.encode_ok({**status, "debug": mem.k_oem_share})  # the defect


class NoRollback(_Port):
    """Boots software below the security counter (answers as if it had)."""

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        response = self.real(request)
        err = self.error_of(response)
        if op == "rom.boot" and err is not None and err[0] == "rollback":
            return messages.encode_ok({"security-counter": self._chip.security_counter})
        return response


class ReplaysToken(_Port):
    """Answers every `rom.attest` with its first token, whatever the challenge."""

    first: bytes | None = None

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        response = self.real(request)
        if op != "rom.attest" or self.error_of(response) is not None:
            return response
        if ReplaysToken.first is None:
            ReplaysToken.first = response
        return ReplaysToken.first  # the defect


#: variant -> (endpoint class, port class, the case that must catch it)
DEFECTS: dict[str, tuple[type[ChipEndpoint], type[ChipPort], str]] = {
    "ack-before-crc": (AckBeforeCrc, ChipPort, "link.crc"),
    "runs-duplicates": (RunsDuplicates, ChipPort, "link.duplicate"),
    "unbounded-fragments": (Unbounded, ChipPort, "link.bounds"),
    "accepts-out-of-order": (ChipEndpoint, AcceptsOutOfOrder, "refusal.out-of-order"),
    "session-after-lock": (ChipEndpoint, SessionAfterLock, "lock.ends-session"),
    "leaky-message": (ChipEndpoint, LeakyMessage, "secrets.fixed-messages"),
    "leaky-status": (ChipEndpoint, LeakyStatus, "secrets.scan"),
    "no-rollback": (ChipEndpoint, NoRollback, "boot.rollback"),
    "replays-token": (ChipEndpoint, ReplaysToken, "attest.token"),
}


def blank_farm(path: Path) -> Path:
    farm = Farm(path, create=True)
    farm.add_blank(UID, "conformance")
    farm.close()
    return path


class Served(str):
    """The address of socket 0 of a board served in this process, with its handler's."""

    handler: str

    def power_cycle(self) -> None:
        """Cut and restore the chip's power through the board's handler."""
        with BoardClient(self.handler) as h:
            h.power_cycle(0)


@contextlib.contextmanager
def serve(
    farm: Path,
    endpoint: type[ChipEndpoint] = ChipEndpoint,
    port: type[ChipPort] = ChipPort,
    *,
    idle_timeout: float = 0.3,
    patches: tuple[tuple[str, Any], ...] = (),
) -> Iterator[Served]:
    """A board in this process with the chip ``UID`` in socket 0; yields the socket's address.
    ``patches`` (dotted name, replacement) hold for as long as the board runs."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(slot, "ChipEndpoint", endpoint))
        stack.enter_context(mock.patch.object(slot, "ChipPort", port))
        for target, replacement in patches:
            stack.enter_context(mock.patch(target, replacement))
        board = Board(farm, idle_timeout=idle_timeout)
        ready = board.listen_tcp("127.0.0.1", 0, 1)

        def loop() -> None:
            board.open()
            board.serve()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            with BoardClient(str(ready["handler"])) as h:
                h.insert(0, UID)
            served = Served(ready["sockets"][0])  # type: ignore[index]  # a list of addresses
            served.handler = str(ready["handler"])
            yield served
        finally:
            board.stop()
            thread.join(timeout=10)
