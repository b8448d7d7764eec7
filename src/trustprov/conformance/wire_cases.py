"""More link-layer rules (docs/protocol.md 12.1, 12.3, 12.5): one NAK per position, ERROR
frames at the reassembly limits, and what a power cut does to the link and the session.

`link.power-cut` needs control of the chip's power: the suite cuts it through a board's
handler, or runs ``--power-cycle-cmd`` between its steps; behind a bare port without either it
is skipped, by name, and says so.
"""

from __future__ import annotations

from trustprov.conformance.link_cases import QUIET, STATUS, _bad_crc
from trustprov.conformance.raw import RawLink, describe
from trustprov.conformance.suite import Case, CaseSkipped, Context, expect, refused
from trustprov.formats.frame import SEQ_MOD, Frame, FrameType, fragment_bound

#: fragments sent before the suite reads the chip's ACKs: at most ~1.8 KB of ACKs wait for it,
#: so a pseudo-terminal's buffer never fills and blocks the chip (and, through it, the suite)
BATCH = 128


def one_nak(ctx: Context) -> str:
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        later = (seq + 1) % SEQ_MOD
        raw.send(raw.request(later, 0, STATUS))  # a later message
        raw.send(raw.request(later, 0, STATUS))  # again
        raw.send(_bad_crc(raw.request(seq, 0, STATUS)))  # a damaged frame
        raw.send(raw.request(seq, 1, STATUS))  # a later fragment of the due message
        seen = raw.frames(QUIET)
        naks = [(f.seq, f.frag) for f in seen if f.kind is FrameType.NAK]
        expect(naks == [(seq, 0)], f"four frames past one position answered {describe(seen)}")
        expect(not any(f.kind is FrameType.RESPONSE for f in seen), "a later message ran")
        raw.send(raw.request(seq, 0, STATUS[:5], more=True))  # taken: a new position
        raw.send(raw.request(later, 0, STATUS))
        raw.send(raw.request(later, 0, STATUS))
        again = raw.frames(QUIET)
        naks = [(f.seq, f.frag) for f in again if f.kind is FrameType.NAK]
        expect(naks == [(seq, 1)], f"after a fragment was taken: {describe(again)}")
        raw.send(raw.request(seq, 1, STATUS[5:]))
        expect(raw.response(seq, ctx.reply_timeout) is not None, "the due message got no answer")
    return "one NAK for four frames at one position; one again after a fragment was taken"


def _send_until(raw: RawLink, frames: list[bytes], seq: int, timeout: float) -> list[Frame]:
    """Send ``frames`` (fragments of message ``seq``) in batches, reading the chip's answers
    between batches; stops at the chip's ERROR. Returns what the chip sent."""
    seen: list[Frame] = []
    for start in range(0, len(frames), BATCH):
        batch = frames[start : start + BATCH]
        raw.send(b"".join(batch))
        last = start + len(batch) - 1
        got = _read_until(raw, seq, last, timeout)
        seen += got
        if not got or any(f.kind is FrameType.ERROR for f in got):
            break  # the ERROR, or silence: the case fails on what it saw, not after every batch
    return seen


def _read_until(raw: RawLink, seq: int, frag: int, timeout: float) -> list[Frame]:
    """Frames until ACK(seq, frag), an ERROR, or ``timeout`` of silence."""
    out: list[Frame] = []
    while True:
        got = raw.frames(timeout, until=(FrameType.ACK, FrameType.ERROR))
        out += got
        if not got or any(
            f.kind is FrameType.ERROR
            or (f.kind is FrameType.ACK and (f.seq, f.frag) == (seq, frag))
            for f in got
        ):
            return out


def _error(seen: list[Frame], seq: int, frag: int, reason: int, what: str) -> None:
    errors = [f for f in seen if f.kind is FrameType.ERROR]
    expect(bool(errors), f"{what}: no ERROR frame ({len(seen)} frames, last {describe(seen[-3:])})")
    e = errors[0]
    expect(
        (e.seq, e.frag, e.payload) == (seq, frag, bytes([reason])),
        f"{what}: ERROR({e.seq:04x},{e.frag}) reason {e.payload.hex()}, expected "
        f"ERROR({seq:04x},{frag}) reason {reason:02x}",
    )
    expect(not any(f.kind is FrameType.RESPONSE for f in seen), f"{what}: the message was run")


def error_frames(ctx: Context) -> str:
    """12.3: a fragment that takes a message above `max message` is ERROR reason 1; the partial
    message is dropped and the chip expects fragment 0 of the same message again. The checks
    are in order: a chip whose max message is K whole frames (K the fragment bound) meets
    fragment K - 1 with MORE before any byte above max message, and answers ERROR reason 2
    there. (ERROR reason 2 on its own, and 3, are `link.bounds`.)"""
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        size, total = info.max_frame, info.max_message + 1
        count = -(-total // size)
        bound = fragment_bound(info.max_message, info.max_frame)
        frag, reason = (count - 1, 1) if count <= bound else (bound - 1, 2)
        big = [
            raw.request(seq, k, bytes(min(size, total - k * size)), more=True)
            for k in range(frag + 1)
        ]
        _error(_send_until(raw, big, seq, ctx.reply_timeout), seq, frag, reason, "too large")
        raw.send(raw.request(seq, 0, STATUS))
        expect(raw.response(seq, ctx.reply_timeout) is not None, f"no answer after ERROR {reason}")
    return (
        f"{total} bytes in frames of {size}: ERROR reason {reason} at fragment {frag}; the "
        "message then ran from fragment 0"
    )


def power_cut(ctx: Context) -> str:
    """12.5, 8.3 "Power-on": after a power cut the chip has no link (RESET to any request, a
    new boot id), no software and no session, and what it committed is as it was."""
    if ctx.power_cycle is None:
        raise CaseSkipped(
            "no control of the chip's power: run it through a board's handler or give "
            "--power-cycle-cmd"
        )
    with ctx.client() as chip:
        ctx.boot(chip)
        before = chip.status()
        p = ctx.prepared()
        chip.send(p.begin)  # a session, open when the power goes
        chip.send(p.chunks[0])
    with RawLink(ctx.address, ctx.answers) as raw:
        info, _ = raw.hello(ctx.reply_timeout)
        seq = info.first_seq
        raw.send(raw.request(seq, 0, STATUS))
        expect(raw.response(seq, ctx.reply_timeout) is not None, "no answer before the cut")
        ctx.power_cycle()
        seq = (seq + 1) % SEQ_MOD
        raw.send(raw.request(seq, 0, STATUS))
        seen = raw.frames(ctx.reply_timeout, until=FrameType.RESET)
        expect(
            any(f.kind is FrameType.RESET and (f.seq, f.frag) == (seq, 0) for f in seen),
            f"a request after the power cut was answered {describe(seen)}, not RESET",
        )
        expect(not any(f.kind is FrameType.RESPONSE for f in seen), "a request ran with no link")
        fresh, _ = raw.hello(ctx.reply_timeout)
        expect(fresh.boot_id != info.boot_id, "the same boot id after a power cut")
    with ctx.client() as chip:
        e = refused(lambda: chip.send(p.chunks[1]), {"unknown-command"})
        after = chip.status()
    for key in ("installed-digest", "lifecycle", "security-counter"):
        expect(after.get(key) == before.get(key), f"{key} changed across the power cut")
    return f"RESET on the old link; a new boot id; the session is gone ({e.code}); state kept"


CASES = [
    Case("link.one-nak", "12.3", "at most one NAK per position", one_nak),
    Case("link.error-frames", "12.3", "ERROR frames at max message", error_frames),
]
#: after boot: it opens a session before the cut
LATE_CASES = [
    Case(
        "link.power-cut",
        "12.5, 8.3",
        "RESET after a power cut; the session is gone",
        power_cut,
        needs="control of the chip's power (a board's handler or --power-cycle-cmd)",
    ),
]
