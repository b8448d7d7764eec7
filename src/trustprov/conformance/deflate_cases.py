"""Deflated firmware (docs/protocol.md 6.1, 6.2, 6.6 step 7): a chip installs a deflated asset
byte-identical to its plaintext, and refuses with `bad-chunk`, installing nothing, every stream
that breaks a bound: a bomb, a truncated stream, bytes after the final block, a stream longer
than its chunk + 16, a distance beyond the window, a stream that is not DEFLATE.

Each faulty bundle is genuine apart from the one stream a case puts in (`bundles.Plain.streams`,
sealed and MACed under the vector OEM's keys), and every faulty stream but the one that is not
DEFLATE at all is a valid raw DEFLATE stream of its own: only the bound the case is about refuses
it. The bad stream is the second chunk, so the chip must first take a good deflated chunk.
"""

from __future__ import annotations

import zlib

from trustprov.conformance.bundles import Plain, seal_bundle
from trustprov.conformance.flow_cases import _at, _refusal
from trustprov.conformance.receipts import check_receipt
from trustprov.conformance.suite import BASE_SVN, Case, Context, expect
from trustprov.crypto.digest import sha256
from trustprov.formats import budget
from trustprov.formats.bundle import Bundle
from trustprov.formats.deflate import deflate
from trustprov.formats.installed import expected_installed_digest
from trustprov.link.client import ChipClient, PreparedBundle

CHUNK = 256
#: a firmware-like plaintext that deflates: 3 chunks of 256, 256 and 88 bytes
FIRMWARE = b"".join(b"conformance firmware word %04d; " % i for i in range(20))[:600]
#: the installed one: 7 chunks at W = 15, beside a config deflated at W = 9
INSTALL_FIRMWARE = b"".join(b"deflated firmware, line %05d\n" % i for i in range(52))
INSTALL_CONFIG = b"mode=production\nregion=eu\n" * 4


def _chunks(value: bytes, size: int = CHUNK) -> list[bytes]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def _stored(data: bytes, empty_blocks: int) -> bytes:
    """A valid raw DEFLATE stream of ``data`` (at most 65,535 bytes): ``empty_blocks`` empty
    stored blocks, then one final stored block holding ``data`` (RFC 1951 3.2.4)."""
    n = len(data)
    empty = b"\x00" + (0).to_bytes(2, "little") + (0xFFFF).to_bytes(2, "little")
    final = b"\x01" + n.to_bytes(2, "little") + (n ^ 0xFFFF).to_bytes(2, "little")
    return empty * empty_blocks + final + data


def _no_final_block(data: bytes) -> bytes:
    """Every byte of ``data`` deflated, but no block with BFINAL set (a sync flush)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def _bundle(ctx: Context, second: bytes, *, wbits: int = 15) -> Bundle:
    """The firmware deflated, its chunk 1 replaced by the stream ``second`` (of any length:
    the host's own check of a bundle's shape is not applied, the chip's is the one tested)."""
    streams = [deflate(c, wbits) for c in _chunks(FIRMWARE)]
    streams[1] = second
    plain = Plain("fw", "firmware", FIRMWARE, region="app", deflate=wbits, streams=tuple(streams))
    return seal_bundle(
        ctx.family, [plain], epoch=ctx.family.vector.epoch, min_svn=BASE_SVN, checked=False
    )


def _refuse_second(ctx: Context, bundle: Bundle, what: str) -> str:
    share = ctx.family.seal("oem-share", ctx.family.oem_share)

    def go(chip: ChipClient, _p: PreparedBundle) -> None:
        p = PreparedBundle.prepare(bundle, share)
        _at(chip, p, [p.chunks[0]], p.chunks[1], what)

    return _refusal(ctx, {"bad-chunk"}, go)


def _second() -> bytes:
    return _chunks(FIRMWARE)[1]


def bomb(ctx: Context) -> str:
    """A chunk of 256 bytes whose stream (a valid one, far shorter) inflates to 16,640."""
    stream = deflate(_second() + bytes(16384), 15)
    return _refuse_second(ctx, _bundle(ctx, stream), "a chunk that inflates past its length")


def truncated(ctx: Context) -> str:
    """Every byte of the chunk but no final block; then the chunk's stream cut in half."""
    whole = deflate(_second(), 15)
    unfinished = _refuse_second(
        ctx, _bundle(ctx, _no_final_block(_second())), "a stream without its final block"
    )
    cut = _refuse_second(ctx, _bundle(ctx, whole[: len(whole) // 2]), "a stream cut in half")
    return f"no final block: {unfinished}; cut: {cut}"


def trailing(ctx: Context) -> str:
    """The chunk's own stream followed by one zero byte."""
    stream = deflate(_second(), 15) + b"\x00"
    return _refuse_second(ctx, _bundle(ctx, stream), "a byte after the final block")


def too_long(ctx: Context) -> str:
    """A valid stream of the chunk in stored blocks, 25 bytes longer than the chunk (> 16)."""
    stream = _stored(_second(), empty_blocks=4)
    expect(len(stream) == len(_second()) + 25, "the suite's stream is not the planned length")
    return _refuse_second(ctx, _bundle(ctx, stream), "a stream longer than its chunk + 16")


def invalid(ctx: Context) -> str:
    """A block of the reserved type 3 (RFC 1951 3.2.3)."""
    return _refuse_second(ctx, _bundle(ctx, b"\x07" + bytes(15)), "a stream that is not DEFLATE")


def far_distance(ctx: Context) -> str:
    """W = 9 (a window of 512 bytes) and one chunk of 2,000 bytes whose second half repeats its
    first: a stream that copies from 1,000 bytes back."""
    block = b"".join(sha256(b"conformance far distance", bytes([i])) for i in range(32))[:1000]
    value = block + block
    stream = deflate(value, 15)
    plain = Plain("fw", "firmware", value, region="app", deflate=9, streams=(stream,))
    bundle = seal_bundle(
        ctx.family, [plain], epoch=ctx.family.vector.epoch, min_svn=BASE_SVN, chunk_size=2048
    )
    share = ctx.family.seal("oem-share", ctx.family.oem_share)

    def go(chip: ChipClient, _p: PreparedBundle) -> None:
        p = PreparedBundle.prepare(bundle, share)
        _at(chip, p, [], p.chunks[0], "a distance of 1,000 bytes in a window of 512")

    return _refusal(ctx, {"bad-chunk"}, go)


def ram_budget(ctx: Context) -> str:
    """8.4: chunks of 28 KiB fit 64 KiB beside the manifest (512 + m + 2c + 32), but not with
    the inflater's 8,224 bytes that a manifest with a deflated asset adds."""
    plain = Plain("fw", "firmware", FIRMWARE, region="app", deflate=15)
    bundle = seal_bundle(
        ctx.family, [plain], epoch=ctx.family.vector.epoch, min_svn=BASE_SVN, chunk_size=28672
    )
    m = len(bundle.signed.to_bytes())
    expect(
        budget.provisioning_ram(m, 28672)
        <= budget.CHIP_RAM
        < budget.provisioning_ram(m, 28672, deflate=True),
        "the suite's manifest does not sit between the two budgets",
    )
    share = ctx.family.seal("oem-share", ctx.family.oem_share)

    def go(chip: ChipClient, _p: PreparedBundle) -> None:
        chip.send(PreparedBundle.prepare(bundle, share).begin)

    return _refusal(ctx, {"ram-budget"}, go)


def install(ctx: Context) -> str:
    """A firmware deflated at W = 15 and a config at W = 9 install byte-identical: the region
    digests are those of the plaintexts, the installed digest the host's."""
    fam = ctx.family
    bundle = seal_bundle(
        fam,
        [
            Plain("fw", "firmware", INSTALL_FIRMWARE, region="app", deflate=15),
            Plain("cfg", "config", INSTALL_CONFIG, region="config", deflate=9),
        ],
        epoch=fam.vector.epoch + 2,
        min_svn=BASE_SVN,
    )
    sealed = sum(len(c) for asset in bundle.chunks for c in asset)
    expect(sealed < len(INSTALL_FIRMWARE), "the suite's own bundle does not deflate")
    with ctx.client() as chip:
        ctx.boot(chip)
        before = chip.status()
        p = PreparedBundle.prepare(bundle, fam.seal("oem-share", fam.oem_share))
        chip.send(p.begin)
        for request in p.chunks:
            chip.send(request)
        receipt = check_receipt(ctx, chip, chip.send(p.finish), bundle, before)
        status = chip.status(digests=True)
    regions = status["installed"]["regions"]
    for name, value in (("app", INSTALL_FIRMWARE), ("config", INSTALL_CONFIG)):
        got = regions.get(name, {})
        expect(got.get("length") == len(value), f"region {name!r}: length {got.get('length')}")
        expect(got.get("sha256") == sha256(value), f"region {name!r} is not the plaintext")
    expected = expected_installed_digest(bundle.manifest, fam.vector.domain_id)
    expect(status["installed-digest"] == expected, "installed-digest is not the host's")
    return (
        f"{len(INSTALL_FIRMWARE)} + {len(INSTALL_CONFIG)} bytes sealed as {sealed}: both "
        f"regions hold the plaintext (SHA-256), installed-digest the host's; {receipt}"
    )


CASES = [
    Case("deflate.bomb", "6.6 (7.)", "a chunk that inflates past its length", bomb),
    Case("deflate.truncated", "6.6 (7.)", "a stream with no final block, or cut", truncated),
    Case("deflate.trailing", "6.6 (7.)", "bytes after the final block", trailing),
    Case("deflate.too-long", "6.2, 6.6 (7.)", "a stream longer than its chunk + 16", too_long),
    Case("deflate.far-distance", "6.2, 6.6 (7.)", "a distance beyond 2^W (W = 9)", far_distance),
    Case("deflate.invalid", "6.6 (7.)", "a stream that is not DEFLATE", invalid),
    Case("deflate.ram-budget", "8.4", "no room for the inflater beside 28 KiB chunks", ram_budget),
]
CASES_AFTER_INSTALL = [
    Case(
        "fig3.deflate",
        "6.1, 6.2, 6.6 (7.), 6.7",
        "deflated firmware and config install byte-identical",
        install,
        needs="installs a bundle at epoch 9",
    ),
]
