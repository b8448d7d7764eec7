"""The C chip offers no rate switch (protocol.md 12.7): it drops a RATE frame as a type it does
not know and answers the NAK of 12.3, which a host takes as "no switch"; the link goes on at its
first rate."""

from __future__ import annotations

from pathlib import Path

from trustprov.formats.frame import FrameDecoder, FrameType, encode_frame
from trustprov.link.address import open_link
from trustprov.link.rate_switch import switch_rate

from .chipc import PROGRAM, ChipProcess, build

UID = "00112233445566778899aabbccddeeff"
STATUS = bytes.fromhex("a2626f706a726f6d2e7374617475736461726773a0")


def test_the_c_chip_is_not_switched_and_its_link_goes_on(tmp_path: Path) -> None:
    build()
    chip = ChipProcess(PROGRAM, ["--nvm", str(tmp_path / "c.nvm"), "--uid", UID, "--listen", "pty"])
    try:
        link = open_link(chip.port)
        try:
            first = link.stream.bytes_per_second
            assert first
            assert switch_rate(link, 3_000_000) == round(first * 10)
            assert link.stream.bytes_per_second == first
            assert b"BLANK" in link.exchange(STATUS)
            link.send_frame(encode_frame(FrameType.RATE))  # asked again, straight
            frames = FrameDecoder().feed(link.stream.read(4096, 1.0))
            assert FrameType.RATE_ANSWER not in [f.kind for f in frames]  # no list, ever
        finally:
            link.close()
    finally:
        chip.stop()
