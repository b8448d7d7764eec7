"""Writes a C header of raw DEFLATE streams (RFC 1951) the inflate HAL's unit tests replay.

Each case is made here with Python's zlib from fixed inputs (no randomness: incompressible bytes
are SHA-256 in counter mode) and carries what the chip must do with it (docs/protocol.md 6.6):
inflate to exactly its plaintext, or refuse it (bad-chunk). The refusals: a bomb, a stream short
of the length, truncated, without its final block, with a byte after it, with a distance beyond
2^W or beyond the bytes produced, an invalid block type, an empty stream. Each is checked here
against Python's zlib as far as it can judge it, so a case cannot silently test nothing.
Usage: deflate_h.py OUT.h
"""

import hashlib
import sys
import zlib
from pathlib import Path


def noise(n: int, label: bytes) -> bytes:
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(label + i.to_bytes(4, "big")).digest()
        i += 1
    return out[:n]


def deflate(
    data: bytes,
    wbits: int,
    level: int = 9,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
    zdict: bytes | None = None,
) -> bytes:
    if zdict is None:
        c = zlib.compressobj(level, zlib.DEFLATED, -wbits, 9, strategy)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -wbits, 9, strategy, zdict)
    return c.compress(data) + c.flush()


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"deflate_h: {what}")


def inflates(stream: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(-wbits)
    out = d.decompress(stream)
    check(d.eof, "a good stream without its final block")
    check(not d.unused_data, "a good stream with bytes after it")
    return out


# (name, W, stream, length the chip expects, plaintext when it must inflate, else None)
Case = tuple[str, int, bytes, int, bytes | None]


def good() -> list[Case]:
    text = b"".join(b"config %04d = %s\n" % (i, b"on" if i % 3 else b"off") for i in range(160))
    mixed = b"".join(noise(200, b"m%d" % (i % 5)) + b"\x00" * (i % 50) for i in range(20))[:4096]
    edge = noise(512, b"edge")
    cases: list[Case] = [
        ("text_w15", 15, deflate(text, 15), len(text), text),
        ("mixed_w9", 9, deflate(mixed, 9), len(mixed), mixed),
        ("mixed_w12", 12, deflate(mixed, 12), len(mixed), mixed),
        ("stored_w15", 15, deflate(noise(1000, b"s"), 15, level=0), 1000, noise(1000, b"s")),
        ("stored_w9", 9, deflate(noise(2000, b"s"), 9, level=0), 2000, noise(2000, b"s")),
        ("fixed_w10", 10, deflate(text, 10, strategy=zlib.Z_FIXED), len(text), text),
        ("one_byte", 9, deflate(b"A", 9), 1, b"A"),
        # a match at distance exactly 2^9 = 512: within the window of W = 9
        ("distance_512_w9", 9, deflate(edge + edge, 15), 1024, edge + edge),
    ]
    for name, wbits, stream, length, plain in cases:
        check(plain is not None and inflates(stream, wbits) == plain, name)
        check(length == len(plain or b""), name)
    check(len(cases[-1][2]) < 600, "the distance-512 case must use its match")
    return cases


def refused() -> list[Case]:
    text = b"".join(b"line %05d of a firmware image\n" % i for i in range(200))
    far = noise(1000, b"far")
    far513 = noise(513, b"far513")
    no_final = zlib.compressobj(9, zlib.DEFLATED, -9)
    no_final_stream = no_final.compress(text) + no_final.flush(zlib.Z_SYNC_FLUSH)
    prefix = noise(300, b"dict")
    cases: list[Case] = [
        ("bomb_w15", 15, deflate(b"\x00" * 65536, 15), 1000, None),
        ("bomb_w9", 9, deflate(b"\x00" * 20000, 9), 1000, None),
        ("one_more_w15", 15, deflate(text[:1001], 15), 1000, None),
        ("one_more_w9", 9, deflate(text, 9), len(text) - 1, None),
        ("short_w15", 15, deflate(text[:1000], 15), 1001, None),
        ("short_w9", 9, deflate(text, 9), len(text) + 1, None),
        ("truncated_w15", 15, deflate(text, 15)[:-3], len(text), None),
        ("truncated_w9", 9, deflate(text, 9)[:-1], len(text), None),
        ("no_final_block_w9", 9, no_final_stream, len(text), None),
        ("trailing_w15", 15, deflate(text, 15) + b"\x00", len(text), None),
        ("trailing_w9", 9, deflate(text, 9) + b"\x03", len(text), None),
        # made with a window of 2^15, declared W = 9: distances 1000 and 513 > 512
        ("too_far_1000_w9", 9, deflate(far + far, 15), 2000, None),
        ("too_far_513_w9", 9, deflate(far513 + far513, 15), 1026, None),
        # a distance into a preset dictionary: beyond the bytes produced so far
        (
            "before_start_w15",
            15,
            deflate(prefix + text, 15, zdict=prefix)[:],
            300 + len(text),
            None,
        ),
        ("block_type_3", 15, b"\x07" + deflate(text, 15)[1:], len(text), None),
        ("empty", 15, b"", 1, None),
    ]
    # each refusal is what its name says, as far as Python's zlib can tell
    check(inflates(deflate(far + far, 15), 15) == far + far, "too_far_1000 is not good at W 15")
    check(len(deflate(far + far, 15)) < 1200, "too_far_1000 must use its match")
    check(len(deflate(far513 + far513, 15)) < 700, "too_far_513 must use its match")
    check(zlib.decompressobj(-9).decompress(no_final_stream) == text, "no_final_block is short")
    check(len(inflates(cases[0][2], 15)) == 65536, "the bomb is not 64 KiB")
    return cases


def c_bytes(name: str, data: bytes) -> str:
    body = ", ".join(f"0x{b:02x}" for b in data) or "0"
    return f"static const uint8_t {name}[] = {{{body}}};"


def main() -> None:
    out = [
        "/* generated by chip-c/tools/deflate_h.py: raw DEFLATE cases of the inflate HAL */",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "typedef struct { const char *name; unsigned wbits; const uint8_t *stream;"
        " size_t stream_len; size_t length; const uint8_t *plain; } deflate_case;",
    ]
    rows = []
    for name, wbits, stream, length, plain in good() + refused():
        out.append(c_bytes(f"{name}_stream", stream))
        if plain is not None:
            out.append(c_bytes(f"{name}_plain", plain))
        rows.append(
            f'    {{"{name}", {wbits}u, {name}_stream, {len(stream)}u, {length}u, '
            f"{name + '_plain' if plain is not None else 'NULL'}}},"
        )
    out.append("static const deflate_case DEFLATE_CASES[] = {")
    out.extend(rows)
    out.append("};")
    out.append(f"#define DEFLATE_CASE_COUNT {len(rows)}u")
    out.append(f"#define DEFLATE_GOOD_COUNT {len(good())}u")
    Path(sys.argv[1]).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
