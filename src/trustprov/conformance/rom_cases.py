"""Boot ROM rules and the decoders' limits (docs/protocol.md sections 1, 5, 8.2, 8.3, 8.6).

Manufacturing happens once per chip, so what can only be seen on a blank chip (the order of the
manufacturing steps, a certificate for another key) is checked by `manufacture.burn` when the
chip is blank, and named as not checked otherwise; what holds for ever after (`rom.burn`,
`rom.make-identity` and `rom.store-certificate` refused once done) is checked on any chip.

The malformed requests are raw bytes, each wrong in exactly one way that section 1 names; a chip
answers each `malformed` and is still well afterwards (its next `rom.status` answers).
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.conformance.suite import Case, CaseFailed, Context, expect, refused
from trustprov.crypto.keys import load_public_key
from trustprov.formats import cbor
from trustprov.link.client import ChipClient

_STATUS_HEAD = cbor.encode("op") + cbor.encode("rom.status") + cbor.encode("args")


def _status_with(value: bytes) -> bytes:
    """A `rom.status` request whose "digests" argument is the raw CBOR ``value``."""
    return b"\xa2" + _STATUS_HEAD + b"\xa1" + cbor.encode("digests") + value


def _nested(depth: int) -> bytes:
    return b"\x81" * depth + b"\x00"


def _malformed() -> list[tuple[str, bytes]]:
    good = cbor.encode({"op": "rom.status", "args": {}})
    return [
        ("not CBOR", b"\xff"),
        ("trailing bytes", good + b"\x00"),
        ("cut short", good[:-1]),
        ("indefinite-length map", b"\xbf" + _STATUS_HEAD + b"\xa0\xff"),
        ("a third key", cbor.encode({"op": "rom.status", "args": {}, "x": 0})),
        ("no args", cbor.encode({"op": "rom.status"})),
        ("op of 33 bytes", cbor.encode({"op": "r" * 33, "args": {}})),
        ("op not text", cbor.encode({"op": 1, "args": {}})),
        ("args not a map", cbor.encode({"op": "rom.status", "args": []})),
        (
            "a repeated key",
            b"\xa2" + _STATUS_HEAD + b"\xa2" + (cbor.encode("digests") + b"\xf5") * 2,
        ),
        ("a tag", _status_with(b"\xc1\x00")),
        ("reserved additional information 28", _status_with(b"\x1c")),
        ("depth 9", _status_with(_nested(7))),
        (
            "16,385 items",
            _status_with(b"\x99" + (16385 - 7).to_bytes(2, "big") + b"\x00" * (16385 - 7)),
        ),
        ("a length past the end", _status_with(b"\x5a\x00\x01\x00\x00")),
        (
            "a boot ROM op with another argument",
            cbor.encode({"op": "rom.status", "args": {"x": 1}}),
        ),
        (
            "rom.burn of what is no immutable image",
            cbor.encode({"op": "rom.burn", "args": {"image": b"\x80"}}),
        ),
    ]


def malformed(ctx: Context) -> str:
    """Section 1's decoder rules on a link request: each one broken is `malformed`; the same
    request at the limits (depth 8, 16,384 items) is answered."""
    with ctx.client() as chip:
        for what, request in _malformed():
            e = refused(functools.partial(chip.send, request), {"malformed"})
            expect(e.code == "malformed", what)
        for what, request in (
            ("depth 8", _status_with(_nested(6))),
            (
                "16,384 items",
                _status_with(b"\x99" + (16384 - 7).to_bytes(2, "big") + b"\x00" * (16384 - 7)),
            ),
        ):
            try:
                answer = chip.send(request)
            except Exception as e:
                raise CaseFailed(f"a request at the limit ({what}) was refused: {e}") from e
            expect("uid" in answer, f"a request at the limit ({what}) was not answered")
    return f"{len(_malformed())} malformed requests: malformed; at the limits: answered"


def bad_software(ctx: Context) -> str:
    """Section 5 step 1: an image that does not parse is `bad-software`."""
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        good = ctx.image(ctx.svn)
        for what, image in (
            ("not CBOR", b"\xff\x00"),
            ("an empty image", b""),
            ("cut short", good[:-1]),
            ("trailing bytes", good + b"\x00"),
            ("untagged", good[1:] if good[0] == 0xD2 else b"\x84\x40\xa0\x40\x40"),
        ):
            e = refused(functools.partial(chip.boot, image), {"bad-software"})
            expect(e.code == "bad-software", what)
        after = refused(lambda: chip.call("cm.finish", {}), {"unknown-command"})
    return f"5 unparsable images: bad-software; then no software runs ({after.code})"


def manufacture_once(ctx: Context) -> str:
    """8.2, 8.3: the manufacturing steps, once done, are refused for good."""
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        image = ctx.family.immutable().to_bytes()
        burn = refused(lambda: chip.burn(image), {"immutable-written"})
        ident = refused(chip.make_identity, {"identity-exists"})
        cert = chip.certificate()
        expect(cert is not None, "no certificate")
        store = refused(lambda: chip.store_certificate(cert or b""), {"lifecycle"})
    return (
        f"rom.burn: {burn.code}; rom.make-identity: {ident.code}; "
        f"rom.store-certificate: {store.code}"
    )


def manufacture_steps(ctx: Context, chip: ChipClient, uid: bytes) -> str:
    """On a blank chip, the manufacturing steps in their order (called by `manufacture.burn`
    in place of a plain burn): each out of order is `lifecycle`, a certificate that is not
    DER or not for the chip's key `bad-certificate`."""
    fam = ctx.family
    lifecycle = {"lifecycle"}
    refused(chip.make_identity, lifecycle)  # before the image
    refused(lambda: chip.boot(ctx.image(ctx.svn)), lifecycle)
    chip.burn(fam.immutable().to_bytes())
    refused(lambda: chip.store_certificate(b"\x30\x00"), lifecycle)  # before the identity
    public = load_public_key(chip.make_identity())
    refused(lambda: chip.store_certificate(b"\x30\x03\x02\x01\x01"), {"bad-certificate"})
    foreign = fam.certificate(uid, ec.generate_private_key(ec.SECP256R1()).public_key())
    refused(lambda: chip.store_certificate(foreign), {"bad-certificate"})
    refused(lambda: chip.boot(ctx.image(ctx.svn)), lifecycle)  # not yet MANUFACTURED
    chip.store_certificate(fam.certificate(uid, public))
    return "steps out of order: lifecycle; a bad and a foreign certificate: bad-certificate"


CASES = [
    Case("rom.malformed", "1, 8.2, 8.3", "malformed requests; the decoders' limits", malformed),
]
#: after manufacture.burn
LATE_CASES = [
    Case("manufacture.once", "8.2, 8.3", "manufacturing steps refused once done", manufacture_once),
    Case("boot.bad-software", "5 (1.), 8.3", "an unparsable image; no software runs", bad_software),
]
