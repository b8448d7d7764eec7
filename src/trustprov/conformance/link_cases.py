"""Link-layer cases (docs/protocol.md section 12): framing, CRC, fragments, duplicates,
resynchronization, out-of-order messages, the inactivity timeout.

Each case opens its own link (a new HELLO) so it depends on no other; the chip's software state
is not the link's (12.2), so a case may boot first through a message link and then go raw.
"""

from __future__ import annotations

import time

from trustprov.conformance.raw import RawLink, describe
from trustprov.conformance.suite import Case, Context, expect, refused
from trustprov.errors import FormatError
from trustprov.formats.frame import (
    MIN_RATE,
    RATE,
    FrameType,
    LinkErrorReason,
    decode_rates,
    encode_frame,
    encode_hello,
    fragment_bound,
)
from trustprov.link import messages

STATUS = messages.encode_request("rom.status", {})
QUIET = 0.3  # seconds to listen for frames that must not come
BOUND_CHECKED = 4096  # a chip's fragment bound above this is not walked fragment by fragment


def _bad_crc(frame: bytes) -> bytes:
    """The same frame with the last byte of its CRC flipped (kept clear of the END and ESC)."""
    body = bytearray(frame[1:-1])
    for i in range(len(body) - 1, -1, -1):
        if body[i] not in (0xC0, 0xDB, 0xDC, 0xDD) and body[i] ^ 0x01 not in (0xC0, 0xDB):
            body[i] ^= 0x01
            break
    return bytes([0xC0]) + bytes(body) + bytes([0xC0])


def hello(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, answer = raw.hello(ctx.reply_timeout)
        expect(info.version == 1, f"version {info.version}, expected 1")
        expect(1 <= info.window <= 255, f"window {info.window} out of 1..255")
        expect(64 <= info.max_frame <= 65535, f"max frame {info.max_frame} out of 64..65535")
        link_id = answer[-4:]
        raw.send(encode_frame(FrameType.HELLO, payload=encode_hello(link_id)))
        again = raw.frames(ctx.reply_timeout, until=FrameType.HELLO_ANSWER)
        expect(
            [f.payload for f in again if f.kind is FrameType.HELLO_ANSWER] == [answer],
            f"a duplicate HELLO was answered {describe(again)}, not the same answer",
        )
        raw.send(encode_frame(FrameType.HELLO, payload=b"\x01\x02\x03\x04"))  # 4 bytes: ignored
        extra = raw.frames(QUIET)
        expect(not extra, f"a HELLO of 4 bytes was answered: {describe(extra)}")
        return (
            f"window {info.window}, max frame {info.max_frame}, max message {info.max_message}, "
            f"first seq {info.first_seq:04x}; duplicate answered alike; bad HELLO ignored"
        )


def crc(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        half = len(STATUS) // 2
        first = raw.request(seq, 0, STATUS[:half], more=True)
        raw.send(_bad_crc(first))
        seen = raw.frames(QUIET)
        bad = [f for f in seen if f.kind in (FrameType.ACK, FrameType.RESPONSE)]
        expect(not bad, f"a fragment with a bad CRC was acknowledged: {describe(seen)}")
        expect(
            all(f.kind is FrameType.NAK and (f.seq, f.frag) == (seq, 0) for f in seen),
            f"a bad CRC was answered {describe(seen)}; only NAK({seq:04x},0) may answer it",
        )
        raw.send(first)
        acks = raw.frames(ctx.reply_timeout, until=FrameType.ACK)
        expect(
            any(f.kind is FrameType.ACK and (f.seq, f.frag) == (seq, 0) for f in acks),
            f"the intact fragment was answered {describe(acks)}, not ACK({seq:04x},0)",
        )
        raw.send(raw.request(seq, 1, STATUS[half:]))
        answer = raw.response(seq, ctx.reply_timeout)
        expect(answer is not None, "no response after the intact fragments")
        messages.decode_response(answer or b"")
        return f"bad CRC answered {describe(seen)}; intact fragments ACKed and answered"


def fragments(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        cut = [STATUS[:5], STATUS[5:12], STATUS[12:]]
        got = []
        for k, piece in enumerate(cut[:2]):
            raw.send(raw.request(seq, k, piece, more=True))
            got += raw.frames(ctx.reply_timeout, until=FrameType.ACK)
        acks = [(f.seq, f.frag) for f in got if f.kind is FrameType.ACK]
        expect(acks == [(seq, 0), (seq, 1)], f"fragments 0, 1 answered {describe(got)}")
        raw.send(raw.request(seq, 2, cut[2]))
        answer = raw.response(seq, ctx.reply_timeout)
        expect(answer is not None, "no response to the last fragment")
        status = messages.decode_response(answer or b"")
        expect("uid" in status, "the reassembled rom.status was answered without a uid")
        return "3 fragments: ACK, ACK, RESPONSE"


def bounds(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        bound = fragment_bound(info.max_message, info.max_frame)
        raw.send(raw.request(seq, 0, STATUS[:4], more=True))
        raw.frames(ctx.reply_timeout, until=FrameType.ACK)
        raw.send(raw.request(seq, 1, b"", more=True))
        got = raw.frames(ctx.reply_timeout, until=FrameType.ERROR)
        expect(
            any(
                f.kind is FrameType.ERROR
                and (f.seq, f.frag, f.payload) == (seq, 1, bytes([LinkErrorReason.EMPTY_FRAGMENT]))
                for f in got
            ),
            f"an empty fragment with MORE was answered {describe(got)}, not ERROR({seq:04x},1,3)",
        )
        done = f"empty fragment with MORE: ERROR 3; bound {bound} fragments"
        if bound <= BOUND_CHECKED:
            raw.send(b"".join(raw.request(seq, k, STATUS[:1], more=True) for k in range(bound)))
            got = []
            while seen := raw.frames(ctx.reply_timeout, until=FrameType.ERROR):
                got += seen
                if seen[-1].kind is FrameType.ERROR:
                    break
            errors = [f for f in got if f.kind is FrameType.ERROR]
            expect(
                [(f.frag, f.payload) for f in errors]
                == [(bound - 1, bytes([LinkErrorReason.TOO_MANY_FRAGMENTS]))],
                f"fragment {bound - 1} with MORE (past the bound) was answered "
                f"{describe(errors) if errors else 'without an ERROR'}",
            )
            done += f": fragment {bound - 1} with MORE answered ERROR 2"
        raw.send(raw.request(seq, 0, STATUS))
        answer = raw.response(seq, ctx.reply_timeout)
        expect(answer is not None, "the same message, sent whole after the refusals, got no answer")
        return done + "; the message whole then answered"


def duplicate(ctx: Context) -> str:
    with ctx.client() as chip:  # booted: oem.keygen answers fresh random values on every run
        ctx.boot(chip)
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        request = messages.encode_request(
            "oem.keygen",
            {"oem-rnd-input": ctx.family.oem_rnd_input, "bundle": ctx.params().to_args()},
        )
        frames = [
            raw.request(seq, k, request[k * 64 : (k + 1) * 64], more=(k + 1) * 64 < len(request))
            for k in range(-(-len(request) // 64))
        ]
        raw.send(b"".join(frames))
        first = raw.response(seq, ctx.reply_timeout * 4)
        expect(first is not None, "no response to oem.keygen")
        raw.send(frames[-1])  # its response was "lost": the host asks again
        again = raw.response(seq, ctx.reply_timeout * 4)
        expect(again == first, "a duplicate last fragment was not answered with the same response")
        raw.send(frames[0])  # an earlier fragment of a message already run
        acks = raw.frames(ctx.reply_timeout, until=FrameType.ACK)
        expect(
            any(f.kind is FrameType.ACK and (f.seq, f.frag) == (seq, 0) for f in acks),
            f"a duplicate fragment was answered {describe(acks)}, not ACK({seq:04x},0)",
        )
        return "duplicate answered from the cache, byte for byte (run once)"


def out_of_order(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        later = (seq + 1) % 65536
        raw.send(raw.request(later, 0, STATUS))
        seen = raw.frames(QUIET)
        expect(
            not any(f.kind is FrameType.RESPONSE for f in seen),
            f"a later message was run before the one due: {describe(seen)}",
        )
        expect(
            any(f.kind is FrameType.NAK and (f.seq, f.frag) == (seq, 0) for f in seen),
            f"a later message was answered {describe(seen)}, not NAK({seq:04x},0)",
        )
        raw.send(raw.request(seq, 0, STATUS))
        expect(raw.response(seq, ctx.reply_timeout) is not None, "the due message got no answer")
        raw.send(raw.request(later, 0, STATUS))
        expect(raw.response(later, ctx.reply_timeout) is not None, "the next one got no answer")
        return f"later message NAKed ({describe(seen)}), then both run in order"


def resync(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        raw.send(b"line noise \x01\x02\xdb\x00")  # no END: joined to the next frame's start
        raw.send(b"\xc0\xc0garbage between ENDs\xc0")
        raw.send(raw.request(seq, 0, STATUS))
        answer = raw.response(seq, ctx.reply_timeout * 2)
        expect(answer is not None, "no response after noise on the line")
        return "noise dropped; the next frame was answered"


def idle_timeout(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.boot(chip)
        prepared = ctx.prepared()
        chip.send(prepared.begin)
        time.sleep(ctx.idle_timeout * 1.5 + 0.2)
        e = refused(lambda: chip.send(prepared.chunks[0]), {"bad-sequence", "unknown-command"})
        return f"after {ctx.idle_timeout * 1.5 + 0.2:.1f} s of silence: {e.code}"


def rates(ctx: Context) -> str:
    """12.7 without switching: the question is answered with a list of 12.7's form, an empty
    answer or a NAK (a chip that does not know the type), nothing else; a rate the chip does not
    offer is answered empty; the link goes on at its first rate."""
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        raw.send(encode_frame(FrameType.RATE))
        seen = raw.frames(ctx.reply_timeout, until=FrameType.RATE_ANSWER)
        answers = [f for f in seen if f.kind is FrameType.RATE_ANSWER]
        others = [f for f in seen if f.kind not in (FrameType.RATE_ANSWER, FrameType.NAK)]
        expect(not others, f"RATE was answered {describe(seen)}")
        expect(len(answers) <= 1, f"RATE was answered more than once: {describe(seen)}")
        offered: tuple[int, ...] = ()
        if answers:
            try:
                offered = decode_rates(answers[0].payload)
            except FormatError as e:
                expect(False, f"the list of rates is not 12.7's: {e.message}")
        if offered:
            absent = next(r for r in range(MIN_RATE, MIN_RATE + 32) if r not in offered)
            raw.send(encode_frame(FrameType.RATE, payload=RATE.pack(absent)))
            no = raw.frames(ctx.reply_timeout, until=FrameType.RATE_ANSWER)
            expect(
                [f.payload for f in no if f.kind is FrameType.RATE_ANSWER] == [b""],
                f"a switch to {absent} baud, not offered, was answered {describe(no)}",
            )
        raw.send(raw.request(info.first_seq, 0, STATUS))
        answer = raw.response(info.first_seq, ctx.reply_timeout)
        expect(answer is not None, "no response to rom.status after the question of rates")
        messages.decode_response(answer or b"")
        how = "NAK" if not answers else ("no list" if not offered else f"rates {list(offered)}")
        return f"the question of rates answered: {how}; the link goes on"


CASES = [
    Case("link.hello", "12.2", "HELLO answer fields; duplicate HELLO; malformed HELLO", hello),
    Case("link.crc", "12.1, 12.3", "a bad CRC is never acknowledged", crc),
    Case("link.fragments", "12.3", "fragments are ACKed, the last one answered", fragments),
    Case("link.bounds", "12.3", "no empty fragment but the last, at most K fragments", bounds),
    Case("link.resync", "12.1", "noise and junk segments are dropped", resync),
    Case("link.out-of-order", "12.3", "a later message is NAKed, not run", out_of_order),
    Case("link.rates", "12.7", "rates: a list of 12.7's form, or none; no switch unoffered", rates),
]
#: after boot: these need the software running
LATE_CASES = [
    Case("link.duplicate", "12.3", "a duplicate is answered from cache, not run", duplicate),
    Case("link.idle-timeout", "12.5", "silence ends an open session", idle_timeout),
]
