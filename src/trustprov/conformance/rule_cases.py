"""Refusals a chip owes before its first install, each by the rule of docs/protocol.md that
makes it (sections 4, 6.3, 6.6, 8.1-8.3, 15.3): every error code a software request can reach
has a case that provokes it and checks the code, that nothing was installed, and (through
`flow_cases._refusal`) that the refused session is gone and a right one opens again.

The faulty bundles are genuine apart from their one fault: the suite MACs them under the vector
OEM's K_AUTH (`conformance.bundles`), so a chip that skips the check the case is about accepts
them, and the case fails.
"""

from __future__ import annotations

import functools
from typing import Any

from trustprov.conformance.bundles import Plain, remac, seal_bundle
from trustprov.conformance.flow_cases import _at, _chunk_request, _digest, _flip, _refusal, _run
from trustprov.conformance.suite import Case, Context, expect, refused
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Authorization
from trustprov.link.client import ChipClient, PreparedBundle


def chain_next(ctx: Context) -> str:
    """6.3 step 1: a chunk whose own AEAD opens but whose `next` is not the chain's value."""

    def middle(chip: ChipClient, p: PreparedBundle) -> None:
        bad = _chunk_request(p, 1, lambda a: a.update(next=_flip(a["next"], 0)))  # fw, chunk 0
        _at(chip, p, [p.chunks[0]], bad, "a chunk beside a wrong next chain value")

    def last(chip: ChipClient, p: PreparedBundle) -> None:
        bad = _chunk_request(p, 0, lambda a: a.update(next=_flip(a["next"], 31)))  # aes-1: last
        _at(chip, p, [], bad, "a last chunk whose next is not the chain's end")

    return (
        f"{_refusal(ctx, {'bad-chunk'}, middle)}; last chunk: {_refusal(ctx, {'bad-chunk'}, last)}"
    )


def unauthorized(ctx: Context) -> str:
    """15.3 / 6.6 step 6a: a bundle for authorized chips opens only with the chip's own proof."""
    fam = ctx.family
    share = fam.seal("oem-share", fam.oem_share)
    with ctx.client() as chip:
        ctx.boot(chip)
        status = chip.status()
        uid, before = status["uid"], status.get("installed-digest")
        strangers = [bytes([0xA5]) * 16, bytes([0x5A]) * 16]
        strangers = [u for u in strangers if u != uid] or [bytes([0x3C]) * 16]
        others = AuthorizedSet.from_uids(strangers)
        named = AuthorizedSet.from_uids([uid, *strangers])
        outside = remac(fam, fam.vector.bundle, authorized=Authorization(others.root, len(others)))
        inside = remac(fam, fam.vector.bundle, authorized=Authorization(named.root, len(named)))
        p = PreparedBundle.prepare(inside, share, named)
        codes = {"unauthorized"}
        no_proof = refused(lambda: chip.send(p.begin), codes)
        refused(lambda: chip.send(p.begin_for(strangers[0])), codes)  # another chip's proof
        q = PreparedBundle.prepare(outside, share, others)
        refused(lambda: chip.send(q.begin_for(strangers[0])), codes)  # a set without this chip
        chip.send(p.begin_for(uid))  # its own proof: the session opens and takes every chunk
        for request in p.chunks:
            chip.send(request)
        ctx.boot(chip)
        expect(_digest(chip) == before, "installed-digest changed")
    return (
        f"no proof: {no_proof.code}; another chip's proof, and a set without this chip: "
        "unauthorized; its own proof opens the session"
    )


def swapped_kinds(ctx: Context) -> str:
    """Section 4: a sealed value opens only where its kind is expected, with its kind's key."""
    fam = ctx.family
    enc_input = fam.seal("oem-rnd-input", fam.oem_rnd_input)
    enc_rnd = fam.seal("rnd-share", fam.rnd_share)
    # right key, wrong kind: ENC(OEM_SHARE) as a value of another kind under K_OEM_SHARE
    disguised = fam.seal("rnd-share", fam.oem_share, under="oem-share")
    with ctx.client() as chip:
        ctx.boot(chip)
        before = _digest(chip)
        begin = refused(
            lambda: chip.send(ctx.prepared(enc_oem_share=disguised).begin), {"bad-share"}
        )
        codes = {"bad-sealed-value"}
        swapped = refused(lambda: chip.regen(enc_rnd, enc_input, ctx.params()), codes)
        share = fam.seal("oem-share", fam.oem_share)  # the CM's input never opens a sealing session
        refused(lambda: chip.regen(share, enc_rnd, ctx.params()), codes)
        refused(lambda: chip.regen(enc_input, share, ctx.params()), codes)
        expect(_digest(chip) == before, "installed-digest changed")
    return (
        f"oem.regen with the two values swapped: {swapped.code}; ENC(OEM_SHARE) in either "
        f"place: bad-sealed-value; a rnd-share under K_OEM_SHARE at cm.begin: {begin.code}"
    )


def sealed_lengths(ctx: Context) -> str:
    """Section 4: a sealed value that opens under its kind's key but whose plaintext is not a
    length of its kind's row (an OEM_RND_INPUT of 20 bytes, a RND_SHARE or an OEM_SHARE of 16)
    is refused as that kind's bad value, and nothing starts."""
    fam = ctx.family
    enc_input = fam.seal("oem-rnd-input", fam.oem_rnd_input)
    enc_rnd = fam.seal("rnd-share", fam.rnd_share)
    short_input = fam.seal("oem-rnd-input", fam.oem_rnd_input[:16] + bytes(4))
    short_rnd = fam.seal("rnd-share", fam.rnd_share[:16])
    short_share = fam.seal("oem-share", fam.oem_share[:16])
    codes = {"bad-sealed-value"}
    with ctx.client() as chip:
        ctx.boot(chip)
        before = _digest(chip)
        refused(lambda: chip.regen(short_input, enc_rnd, ctx.params()), codes)
        refused(lambda: chip.regen(enc_input, short_rnd, ctx.params()), codes)
        refused(lambda: chip.send(ctx.prepared(enc_oem_share=short_share).begin), {"bad-share"})
        expect(_digest(chip) == before, "installed-digest changed")
    return (
        "an OEM_RND_INPUT of 20 bytes, a RND_SHARE of 16: bad-sealed-value; "
        "an OEM_SHARE of 16: bad-share"
    )


def software_too_old(ctx: Context) -> str:
    fam = ctx.family

    def go(chip: ChipClient, _p: PreparedBundle) -> None:
        newer = remac(fam, fam.vector.bundle, min_security_version=ctx.svn + 1)
        chip.send(PreparedBundle.prepare(newer, fam.seal("oem-share", fam.oem_share)).begin)

    return f"min-svn {ctx.svn + 1} on software {ctx.svn}: " + _refusal(
        ctx, {"software-too-old"}, go
    )


def incomplete(ctx: Context) -> str:
    def go(chip: ChipClient, p: PreparedBundle) -> None:
        _run(chip, p, list(p.chunks[:-1]))

    return _refusal(ctx, {"incomplete"}, go)


def bad_asset(ctx: Context) -> str:
    """6.6 step 8: an EC key asset that opens but is no key (d = 0, d = n)."""
    fam = ctx.family
    order = _P256_N
    out = []
    for what, value in (("d = 0", bytes(32)), ("d = n", order.to_bytes(32, "big"))):
        bundle = seal_bundle(
            fam,
            [Plain("conformance-key", "key", value, key_type="ec-p256", slot=3)],
            epoch=fam.vector.epoch,
        )

        def go(chip: ChipClient, _p: PreparedBundle, b: Any = bundle) -> None:
            _run(chip, PreparedBundle.prepare(b, fam.seal("oem-share", fam.oem_share)))

        out.append(f"{what}: {_refusal(ctx, {'bad-asset'}, go)}")
    return "; ".join(out)


#: the order n of P-256 (FIPS 186-5 / SEC 2)
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def bad_request(ctx: Context) -> str:
    """8.1, 8.2: arguments a software op refuses, each `bad-request`; each refusal ends the
    session it met (8.3), so the next request of that session is `bad-sequence`."""
    fam = ctx.family
    params = ctx.params().to_args()
    rnd = fam.oem_rnd_input
    enc_in = fam.seal("oem-rnd-input", fam.oem_rnd_input)
    enc_rnd = fam.seal("rnd-share", fam.rnd_share)
    share = fam.seal("oem-share", fam.oem_share)
    no_session: list[tuple[str, str, dict[str, Any]]] = [
        ("OEM_RND_INPUT of 20 bytes", "oem.keygen", {"oem-rnd-input": bytes(20), "bundle": params}),
        ("an unknown aead", "oem.keygen", {"oem-rnd-input": rnd, "bundle": {**params, "aead": 99}}),
        (
            "chunk size 255",
            "oem.keygen",
            {"oem-rnd-input": rnd, "bundle": {**params, "chunk-size": 255}},
        ),
        (
            "AES-CCM chunk size 65,536",
            "oem.keygen",
            {"oem-rnd-input": rnd, "bundle": {**params, "aead": 31, "chunk-size": 65536}},
        ),
        ("an extra argument", "oem.keygen", {"oem-rnd-input": rnd, "bundle": params, "x": 1}),
        ("a missing argument", "oem.regen", {"enc-oem-rnd-input": enc_in, "bundle": params}),
        (
            "ENC(OEM_SHARE) of 1,025 bytes",
            "cm.begin",
            {"enc-oem-share": bytes(1025), "manifest": b"m"},
        ),
        (
            "a manifest of 32 KiB + 1",
            "cm.begin",
            {"enc-oem-share": share, "manifest": bytes(32769)},
        ),
        ("a manifest as text", "cm.begin", {"enc-oem-share": share, "manifest": "manifest"}),
    ]
    in_session: list[tuple[str, str, dict[str, Any]]] = [
        (
            "an aes-256 key of 33 bytes",
            "seal.asset",
            {"name": "k", "kind": "key", "length": 33, "key-type": "aes-256", "slot": 1},
        ),
        (
            "an unknown kind",
            "seal.asset",
            {"name": "k", "kind": "secret", "length": 4, "region": "r"},
        ),
        ("generate a raw key", "seal.generate", {"name": "k", "key-type": "raw", "slot": 1}),
        ("slot 256", "seal.generate", {"name": "k", "key-type": "aes-256", "slot": 256}),
    ]
    with ctx.client() as chip:
        ctx.boot(chip)
        before = _digest(chip)
        for what, op, args in no_session:
            e = refused(functools.partial(chip.call, op, args), {"bad-request"})
            expect(e is not None, what)
        for what, op, args in in_session:
            chip.regen(enc_in, enc_rnd, ctx.params())
            refused(functools.partial(chip.call, op, args), {"bad-request"})
            after = refused(lambda: chip.call("seal.finish", {}), {"bad-sequence"})
            expect(after.code == "bad-sequence", f"the session outlived {what}")
        chip.regen(enc_in, enc_rnd, ctx.params())
        chip.seal_asset("cfg", "config", 5, {"region": "r"})
        wrong = refused(lambda: chip.seal_chunk(0, b"four"), {"bad-request"})  # 4 of 5 bytes
        ctx.boot(chip)
        expect(_digest(chip) == before, "installed-digest changed")
    count = len(no_session) + len(in_session) + 1
    return f"{count} bad requests answered bad-request, each ending its session ({wrong.message})"


def bad_sequence(ctx: Context) -> str:
    """8.2, 8.3: requests that do not fit the session state; a refused one ends the session."""
    fam = ctx.family
    enc_in = fam.seal("oem-rnd-input", fam.oem_rnd_input)
    enc_rnd = fam.seal("rnd-share", fam.rnd_share)
    codes = {"bad-sequence"}
    with ctx.client() as chip:
        ctx.boot(chip)
        refused(lambda: chip.call("seal.finish", {}), codes)  # no sealing session
        refused(lambda: chip.call("cm.finish", {}), codes)  # no provisioning session
        chip.regen(enc_in, enc_rnd, ctx.params())
        refused(lambda: chip.regen(enc_in, enc_rnd, ctx.params()), codes)  # one is open
        chip.regen(enc_in, enc_rnd, ctx.params())  # the refusal ended it: this one opens
        refused(lambda: chip.send(ctx.prepared().begin), codes)  # the other session's kind
        chip.regen(enc_in, enc_rnd, ctx.params())
        refused(lambda: chip.call("seal.finish", {}), codes)  # none sealed
        chip.regen(enc_in, enc_rnd, ctx.params())
        chip.seal_asset("cfg", "config", 300, {"region": "r"})  # 2 chunks of 256: 1, then 0
        refused(lambda: chip.seal_chunk(0, bytes(256)), codes)  # first to last: refused
        ctx.boot(chip)
    return (
        "no session, a second session, the other session's op, nothing sealed, chunks first to last"
    )


CASES = [
    Case("refusal.chain-next", "6.3 (1.), 6.6 (7.)", "a wrong next chain value", chain_next),
    Case("refusal.unauthorized", "6.6 (6a.), 15.3", "no proof, or another chip's", unauthorized),
    Case("refusal.swapped-kinds", "4, 8.2", "sealed values of another kind", swapped_kinds),
    Case("refusal.sealed-lengths", "4, 8.2", "sealed values of a wrong length", sealed_lengths),
    Case("refusal.software-too-old", "6.6 (6.)", "min-svn above the software", software_too_old),
    Case("refusal.incomplete", "6.6, 8.2", "cm.finish before the last chunk", incomplete),
    Case("refusal.bad-asset", "6.6 (8.)", "an EC key d = 0 or d = n", bad_asset),
    Case("refusal.bad-request", "8.1, 8.2, 8.3", "arguments out of their ranges", bad_request),
    Case("refusal.bad-sequence", "8.2, 8.3", "requests out of session order", bad_sequence),
]
