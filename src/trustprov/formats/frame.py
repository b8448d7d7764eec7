"""Frames of the link layer (docs/protocol.md, section 12): pure bytes in, typed frames out.

Wire form of one frame: ``END || stuff(header || payload || crc) || END`` with SLIP's END = 0xC0
and escapes (0xC0 -> 0xDB 0xDC, 0xDB -> 0xDB 0xDD). ``header`` is type (1), flags (1), seq (2),
frag (2), payload length (2), all big-endian; ``crc`` is CRC-32 (ISO-HDLC, as zlib) of payload
then header (``crc32(payload || header)``), big-endian. That order lets a host that sends the
same request to many chips (a lot's software image and bundle) compute the payload's CRC and
stuffing once (`EncodedPayload`) and per frame only the 8 header bytes.

Invariants:
- `FrameDecoder.feed` never raises on any bytes. A segment that is not a whole valid frame (bad
  escape, short, CRC mismatch, unknown type, reserved flag bit, length mismatch, oversized) is
  dropped and counted in ``bad_frames``; the decoder resynchronises at the next END.
- The decoder's buffer never exceeds the encoded size of the largest frame it accepts: a longer
  run without END is dropped (counted in ``dropped_bytes``) up to the next END.
- Nothing here does I/O or keeps time; the chip endpoint and the host link own those.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from trustprov.errors import FormatError
from trustprov.formats.limits import LIMITS

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD
_END = bytes([END])
_ESC = bytes([ESC])
_ESCAPED_END = bytes([ESC, ESC_END])
_ESCAPED_ESC = bytes([ESC, ESC_ESC])

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">BBHHH")
CRC_LEN = 4
OVERHEAD = HEADER.size + CRC_LEN
SEQ_MOD = 1 << 16
MAX_FRAGMENTS = 1 << 16

FLAG_MORE = 0x01  # more fragments of this message follow
_KNOWN_FLAGS = FLAG_MORE


class FrameType(IntEnum):
    HELLO = 0x01  # host -> chip: version, link id
    HELLO_ANSWER = 0x02  # chip -> host: version, window, max frame, max message, boot id, link id
    REQUEST = 0x03  # host -> chip: one fragment of a request message
    RESPONSE = 0x04  # chip -> host: one fragment of a response message
    ACK = 0x05  # chip -> host: request fragment (seq, frag) received intact
    NAK = 0x06  # chip -> host: resend from (seq, frag), the fragment the chip expects
    RESET = 0x07  # chip -> host: this chip has no link (it was reset): say hello first
    ERROR = 0x08  # chip -> host: request refused by the link layer; payload one reason byte
    RATE = 0x09  # host -> chip: empty: which line rates? rate [4]: switch to it
    RATE_ANSWER = 0x0A  # chip -> host: its rates, the rate it switches to, or empty (no switch)


class LinkErrorReason(IntEnum):
    TOO_LARGE = 0x01  # the reassembled message would exceed the chip's max message
    TOO_MANY_FRAGMENTS = 0x02  # more than `fragment_bound` fragments
    EMPTY_FRAGMENT = 0x03  # an empty fragment with MORE: only a message's last may be empty


_TYPE_OF: dict[int, FrameType] = {int(t): t for t in FrameType}


class Frame(NamedTuple):  # a tuple: a station parses tens of frames per chip
    kind: FrameType
    seq: int = 0
    frag: int = 0
    payload: bytes = b""
    more: bool = False

    def __repr__(self) -> str:  # payloads may carry sealed material: show sizes only
        return (
            f"Frame({self.kind.name}, seq={self.seq}, frag={self.frag}, "
            f"{len(self.payload)} bytes{', more' if self.more else ''})"
        )


def fragment_bound(max_message: int, max_frame: int) -> int:
    """The most fragments one message may have on a link whose receiver takes messages of at
    most ``max_message`` bytes in frames of at most ``max_frame`` payload bytes: the largest
    message over the largest frame (docs/protocol.md 12.3), never more than `MAX_FRAGMENTS`.
    A receiver refuses a message of more; a sender that cuts smaller fragments sends smaller
    messages. Bounding the count bounds the frames (hence the work) one message may cost."""
    return max(1, min(MAX_FRAGMENTS, -(-max_message // max_frame)))


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC: poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF (as zlib)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def stuff(data: bytes) -> bytes:
    return data.replace(_ESC, _ESCAPED_ESC).replace(_END, _ESCAPED_END)


@dataclass(frozen=True)
class EncodedPayload:
    """A frame payload with its stuffing and CRC done: reusable for any seq, frag and type."""

    length: int
    stuffed: bytes
    crc: int  # zlib's running CRC-32 state after the payload

    @classmethod
    def of(cls, payload: bytes) -> EncodedPayload:
        if len(payload) > LIMITS.link_frame:
            raise ValueError("frame payload too large")
        return cls(len(payload), stuff(payload), zlib.crc32(payload))

    def __repr__(self) -> str:
        return f"EncodedPayload({self.length} bytes)"


def encode_frame(
    kind: FrameType, seq: int = 0, frag: int = 0, payload: bytes = b"", *, more: bool = False
) -> bytes:
    """The wire bytes of one frame, END markers included."""
    return frame_of(kind, seq, frag, EncodedPayload.of(payload), more=more)


def frame_of(
    kind: FrameType, seq: int, frag: int, payload: EncodedPayload, *, more: bool = False
) -> bytes:
    """`encode_frame` of an already encoded payload: costs the header, not the payload."""
    return b"".join(frame_parts(kind, seq, frag, payload, more=more))


_CRC = struct.Struct(">I")


def frame_parts(
    kind: FrameType, seq: int, frag: int, payload: EncodedPayload, *, more: bool = False
) -> tuple[bytes, bytes, bytes]:
    """A frame's wire bytes in three parts (END and the stuffed header; the stuffed payload; the
    stuffed CRC and END), so that a sender joins the frames of a window in one copy."""
    if not (0 <= seq < SEQ_MOD and 0 <= frag < MAX_FRAGMENTS):
        raise ValueError("seq and frag are 16-bit")
    header = HEADER.pack(kind, FLAG_MORE if more else 0, seq, frag, payload.length)
    crc = _CRC.pack(zlib.crc32(header, payload.crc))
    if END in header or ESC in header:  # rare: most headers need no escape
        header = stuff(header)
    if END in crc or ESC in crc:
        crc = stuff(crc)
    return _END + header, payload.stuffed, crc + _END


def encoded_size_bound(max_payload: int) -> int:
    """The most wire bytes a frame with ``max_payload`` payload bytes can take."""
    return 2 * (OVERHEAD + max_payload) + 2


def parse_body(body: bytes, max_payload: int) -> Frame:
    """One unstuffed frame body (between END markers), checked; `FormatError` if it is bad."""
    if len(body) < OVERHEAD:
        raise FormatError("frame: too short")
    payload = body[HEADER.size : -CRC_LEN]
    crc = zlib.crc32(body[: HEADER.size], zlib.crc32(payload)) & 0xFFFFFFFF
    if crc != int.from_bytes(body[-CRC_LEN:], "big"):
        raise FormatError("frame: CRC mismatch")
    kind, flags, seq, frag, length = HEADER.unpack_from(body)
    frame_type = _TYPE_OF.get(kind)
    if frame_type is None:
        raise FormatError("frame: unknown type")
    if flags & ~_KNOWN_FLAGS:
        raise FormatError("frame: reserved flag set")
    if length != len(payload) or length > max_payload:
        raise FormatError("frame: bad length")
    return Frame(frame_type, seq, frag, bytes(payload), bool(flags & FLAG_MORE))


def unstuff(segment: bytes) -> bytes:
    """Undo the escapes; `FormatError` on an ESC not followed by ESC_END or ESC_ESC."""
    escapes = segment.count(_ESC)
    if escapes and escapes != segment.count(_ESCAPED_END) + segment.count(_ESCAPED_ESC):
        raise FormatError("frame: bad escape")
    # ESC always starts a two-byte escape here, so the two replacements cannot overlap
    return segment.replace(_ESCAPED_END, _END).replace(_ESCAPED_ESC, _ESC) if escapes else segment


_new_frame = tuple.__new__  # a Frame from checked fields, without NamedTuple's Python __new__


class FrameDecoder:
    """Incremental decoder: bytes from the wire in any slicing, whole valid frames out."""

    def __init__(self, max_payload: int = LIMITS.link_frame) -> None:
        if not 0 <= max_payload <= LIMITS.link_frame:
            raise ValueError("max_payload out of range")
        self.max_payload = max_payload
        self._max_segment = encoded_size_bound(max_payload) - 2
        self._buf = bytearray()
        self._discarding = False  # inside an overlong run: skip to the next END
        self.frames = 0
        self.bad_frames = 0
        self.dropped_bytes = 0

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[Frame]:
        if END not in data:
            self._append(data)
            return []
        parts = (bytes(self._buf) + data).split(_END) if self._buf else data.split(_END)
        tail = parts.pop()
        self._buf = bytearray()
        out: list[Frame] = []
        # parse_body inlined: a station decodes tens of frames per chip, and the calls cost more
        # than the checks (the same checks, in another order: any failure only drops the frame)
        max_payload = self.max_payload
        unpack = HEADER.unpack_from
        crc32 = zlib.crc32
        for raw in parts:
            if self._discarding:
                self._discarding = False
                self.dropped_bytes += len(raw)
                continue
            if not raw:  # back-to-back END markers
                continue
            segment = raw
            if ESC in raw:
                try:
                    segment = unstuff(raw)
                except FormatError:
                    self.bad_frames += 1
                    continue
            n = len(segment) - OVERHEAD
            if n < 0:
                self.bad_frames += 1
                continue
            kind, flags, seq, frag, length = unpack(segment)
            frame_type = _TYPE_OF.get(kind)
            payload = segment[HEADER.size : -CRC_LEN]
            if (
                frame_type is None
                or flags & ~_KNOWN_FLAGS
                or length != n
                or length > max_payload
                or crc32(segment[: HEADER.size], crc32(payload)) != _CRC.unpack_from(segment, -4)[0]
            ):
                self.bad_frames += 1
                continue
            self.frames += 1
            out.append(_new_frame(Frame, (frame_type, seq, frag, payload, flags == FLAG_MORE)))
        self._append(tail)
        return out

    def _append(self, data: bytes) -> None:
        if self._discarding:
            self.dropped_bytes += len(data)
            return
        self._buf += data
        if len(self._buf) > self._max_segment:
            self.dropped_bytes += len(self._buf)
            self._buf = bytearray()
            self._discarding = True


# -- hello payloads ---------------------------------------------------------------------------
HELLO = struct.Struct(">B4s")  # version, link id
HELLO_ANSWER = struct.Struct(">BBHI4s4s")  # version, window, max frame, max message, boot, link
MIN_FRAME = 64  # smallest max frame a chip may announce (keeps fragment counts 16-bit)


@dataclass(frozen=True)
class LinkInfo:
    """What a chip announces in its hello answer."""

    version: int
    window: int  # responses the chip keeps for resending: requests a host may have unanswered
    max_frame: int  # largest frame payload the chip accepts and sends
    max_message: int  # largest reassembled request the chip accepts
    boot_id: bytes  # 4 bytes, new at every power-on: a change means the chip was reset
    link_id: bytes  # 4 bytes, echoed from the host's hello

    @property
    def first_seq(self) -> int:
        """The link's first sequence number: a hello replayed to a chip after a power cut gets
        another (its boot id changed), so the host's requests cannot run there by accident."""
        return first_seq(self.boot_id, self.link_id)

    def to_bytes(self) -> bytes:
        return HELLO_ANSWER.pack(
            self.version,
            self.window,
            self.max_frame,
            self.max_message,
            self.boot_id,
            self.link_id,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LinkInfo:
        if len(data) != HELLO_ANSWER.size:
            raise FormatError("hello answer: wrong length")
        version, window, max_frame, max_message, boot_id, link_id = HELLO_ANSWER.unpack(data)
        if window < 1 or not MIN_FRAME <= max_frame <= LIMITS.link_frame or max_message < 1:
            raise FormatError("hello answer: value out of range")
        return cls(version, window, max_frame, max_message, boot_id, link_id)


def first_seq(boot_id: bytes, link_id: bytes) -> int:
    return int.from_bytes(boot_id[:2], "big") ^ int.from_bytes(link_id[:2], "big")


def encode_hello(link_id: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    return HELLO.pack(version, link_id)


def decode_hello(data: bytes) -> tuple[int, bytes]:
    """(version, link id) of a hello payload; `FormatError` if malformed."""
    if len(data) != HELLO.size:
        raise FormatError("hello: wrong length")
    version, link_id = HELLO.unpack(data)
    return int(version), bytes(link_id)


# -- line rates (docs/protocol.md 12.7) -------------------------------------------------------
RATE = struct.Struct(">I")  # one line rate in baud
MIN_RATE = 300
MAX_RATE = 20_000_000
MAX_RATES = 16  # entries of a chip's list of rates
RATE_HOLD = 2.0  # seconds a chip waits for a valid frame at a new rate before it reverts
RATE_IDLE = 10.0  # seconds without a valid frame after which a chip is at its first rate again


def encode_rates(rates: tuple[int, ...]) -> bytes:
    """A RATE-ANSWER's list: each rate [4], strictly ascending (empty: no switch)."""
    data = b"".join(RATE.pack(r) for r in rates)
    decode_rates(data)  # a chip announces only a list any host can read
    return data


def decode_rates(data: bytes) -> tuple[int, ...]:
    """The rates of a RATE-ANSWER to the question (empty: the chip offers none); `FormatError`
    unless 1 to `MAX_RATES` rates of 4 bytes, strictly ascending, each `MIN_RATE`..`MAX_RATE`."""
    if len(data) % RATE.size or len(data) > MAX_RATES * RATE.size:
        raise FormatError("rate list: not 0 to 16 rates of 4 bytes")
    rates = tuple(r for (r,) in RATE.iter_unpack(data))
    if any(not MIN_RATE <= r <= MAX_RATE for r in rates):
        raise FormatError(f"rate list: a rate outside {MIN_RATE} to {MAX_RATE} baud")
    if any(a >= b for a, b in itertools.pairwise(rates)):
        raise FormatError("rate list: not strictly ascending")
    return rates
