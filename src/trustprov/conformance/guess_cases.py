"""Cases for what a port once had to guess (docs/protocol.md 1, 8.1, 15.3): a request that is
well-formed CBOR but not canonical is `malformed`; a proof sent with a bundle that names no
authorized set is ignored.

Invariants: each request here is wrong in exactly the one way its label says (the same request
in canonical form is answered); the proof case installs nothing (a boot ends its session).
"""

from __future__ import annotations

import functools

from trustprov.conformance.flow_cases import _digest
from trustprov.conformance.suite import Case, CaseFailed, Context, expect, refused
from trustprov.errors import ChipRefused
from trustprov.formats import cbor
from trustprov.formats.authz import AuthorizedSet
from trustprov.link import messages

_OP, _ARGS = cbor.encode("op"), cbor.encode("args")


def _non_canonical() -> list[tuple[str, bytes, bytes]]:
    """(what, the request not canonical, the same request canonical)."""
    status = cbor.encode({"op": "rom.status", "args": {}})
    digests = cbor.encode({"op": "rom.status", "args": {"digests": 0}})
    attest = cbor.encode({"op": "rom.attest", "args": {"challenge": bytes(32)}})
    return [
        (
            "map keys out of order",
            b"\xa2" + _ARGS + b"\xa0" + _OP + cbor.encode("rom.status"),
            status,
        ),
        (
            "a text length in a longer head than needed",
            b"\xa2" + _OP + b"\x78\x0arom.status" + _ARGS + b"\xa0",
            status,
        ),
        (
            "a uint in a longer head than needed",
            digests[:-1] + b"\x18\x00",
            digests,
        ),
        (
            "a byte string length in a longer head than needed",
            attest[: -(32 + 2)] + b"\x59\x00\x20" + bytes(32),
            attest,
        ),
        ("a map count in a longer head than needed", b"\xb8\x02" + status[1:], status),
    ]


def non_canonical(ctx: Context) -> str:
    """Section 1 and 8.1: every request is canonical CBOR, and a chip refuses one that is not
    (`malformed`), so a request has one encoding; the canonical form of each is answered (or
    refused for its own reason, never `malformed`)."""
    with ctx.client() as chip:
        for what, request, canonical in _non_canonical():
            expect(canonical != request, what)
            e = refused(functools.partial(chip.send, request), {"malformed"})
            expect(e.code == "malformed", what)
            try:
                chip.send(canonical)
            except ChipRefused as e:  # for its own reason (a blank chip attests nothing)
                if e.code == "malformed":
                    raise CaseFailed(f"the canonical form ({what}) was refused malformed") from e
    return f"{len(_non_canonical())} requests in a form that is not canonical: malformed each"


def proof_any_chip(ctx: Context) -> str:
    """15.3: a bundle whose `authorized` is null is for any chip of the family; a proof sent
    with it (a CM that sends one to every chip) is ignored: the session opens and takes every
    chunk, whatever the proof shows."""
    fam = ctx.family
    share = fam.seal("oem-share", fam.oem_share)
    bundle = fam.vector.bundle
    expect(bundle.manifest.authorized is None, "the vector bundle names an authorized set")
    with ctx.client() as chip:
        ctx.boot(chip)
        before = _digest(chip)
        strangers = [bytes([0xA5]) * 16, bytes([0x5A]) * 16, bytes([0x3C]) * 16]
        others = AuthorizedSet.from_uids(strangers)
        p = ctx.prepared(enc_oem_share=share)
        for proof in (others.proof(strangers[1]).to_cbor(), [0, 1, []]):
            begin = messages.encode_request(
                "cm.begin",
                {"enc-oem-share": share, "manifest": bundle.signed.to_bytes(), "proof": proof},
            )
            chip.send(begin)  # any refusal here fails the case: a proof is no reason
            for request in p.chunks:
                chip.send(request)
            ctx.boot(chip)  # a boot ends the session: nothing installed
        expect(_digest(chip) == before, "installed-digest changed")
    return (
        "the vector bundle (authorized null) with another chip's proof, and with [0, 1, []]: "
        "the session opens and takes every chunk each time"
    )


#: before the burn: a blank chip answers rom.status and refuses rom.attest for its own reasons
EARLY_CASES = [
    Case(
        "rom.non-canonical", "1, 8.1", "well-formed requests not in canonical form", non_canonical
    ),
]
#: before the install
CASES_BEFORE_INSTALL = [
    Case(
        "cm.proof-any-chip",
        "15.3, 6.6 (6a.)",
        "a proof with a bundle for any chip is ignored",
        proof_any_chip,
    ),
]
