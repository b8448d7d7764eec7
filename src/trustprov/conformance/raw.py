"""Raw frames to and from a chip, for the link-layer cases: the suite plays a host that does
exactly what it is told (a bad CRC, a duplicate, a later message first), and sees every frame the
chip sends back. Built on `trustprov.formats.frame` over a `trustprov.link.stream` byte stream.

Invariant: every frame the chip sends is kept in ``answers`` (payloads), for the secret scan.
"""

from __future__ import annotations

import os
import time

from trustprov.formats.frame import (
    Frame,
    FrameDecoder,
    FrameType,
    LinkInfo,
    encode_frame,
    encode_hello,
)
from trustprov.link.address import open_stream
from trustprov.link.stream import ByteStream


class RawLink:
    def __init__(self, address: str, answers: list[bytes]) -> None:
        self.stream: ByteStream = open_stream(address)
        self._decoder = FrameDecoder()
        self._pending: list[Frame] = []
        self._answers = answers
        self.info: LinkInfo | None = None

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> RawLink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.stream.write(data)

    def frames(
        self, timeout: float, *, until: FrameType | tuple[FrameType, ...] | None = None
    ) -> list[Frame]:
        """Every frame the chip sends within ``timeout`` (or until one of type ``until``)."""
        kinds = () if until is None else until if isinstance(until, tuple) else (until,)
        out: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:  # frames decoded with the last one returned, not yet seen
                f = self._pending.pop(0)
                self._answers.append(f.payload)
                out.append(f)
                if f.kind in kinds:
                    return out
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self._pending = self._decoder.feed(self.stream.read(1 << 16, left))

    def hello(self, timeout: float) -> tuple[LinkInfo, bytes]:
        """A new link: (the chip's answer, the answer frame's payload)."""
        link_id = os.urandom(4)
        self.send(encode_frame(FrameType.HELLO, payload=encode_hello(link_id)))
        for _ in range(4):
            for f in self.frames(timeout, until=FrameType.HELLO_ANSWER):
                if f.kind is FrameType.HELLO_ANSWER and f.payload[-4:] == link_id:
                    self.info = LinkInfo.from_bytes(f.payload)
                    return self.info, f.payload
            self.send(encode_frame(FrameType.HELLO, payload=encode_hello(link_id)))
        raise TimeoutError("no hello answer")

    def request(self, seq: int, frag: int, payload: bytes, *, more: bool = False) -> bytes:
        return encode_frame(FrameType.REQUEST, seq, frag, payload, more=more)

    def response(self, seq: int, timeout: float) -> bytes | None:
        """The whole response to message ``seq``, or None if it does not come in time."""
        parts: list[bytes] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for f in self.frames(left, until=FrameType.RESPONSE):
                if f.kind is FrameType.RESPONSE and f.seq == seq and f.frag == len(parts):
                    parts.append(f.payload)
                    if not f.more:
                        return b"".join(parts)
        return None


def describe(frames: list[Frame]) -> str:
    return ", ".join(f"{f.kind.name}({f.seq:04x},{f.frag})" for f in frames) or "nothing"
