"""Attestation (docs/protocol.md 8.8): the one answer about what a chip holds that a host can
believe whatever sits between it and the chip, so a chip that gets it wrong lets a dishonest
board credit a blank chip.

`attest.malformed` runs with the boot ROM cases (it changes nothing); `attest.token` checks the
token against the chip's status and certificate, and runs after `fig3.provision`, so in the whole
suite the token must show the vector bundle installed.
"""

from __future__ import annotations

import functools
import os

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.conformance.suite import Case, Context, expect, refused
from trustprov.formats.attestation import CHALLENGE_LEN, Attestation

LIFECYCLES = {"MANUFACTURED": 1, "PROVISIONED": 2, "LOCKED": 3}  # 8.3: the numbers it signs


def malformed(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        codes = []
        bad: list[dict[str, object]] = [
            {},
            {"challenge": bytes(CHALLENGE_LEN - 1)},
            {"challenge": "x" * CHALLENGE_LEN},
            {"challenge": bytes(CHALLENGE_LEN), "nonce": b""},
        ]
        for args in bad:
            codes.append(
                refused(functools.partial(chip.call, "rom.attest", args), {"malformed"}).code
            )
    return f"no challenge, 31 bytes, text, an extra key: {', '.join(codes)}"


def token(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        status = chip.status()
        certificate = chip.certificate()
        first, second = os.urandom(CHALLENGE_LEN), os.urandom(CHALLENGE_LEN)
        tokens = [Attestation.from_bytes(chip.attest(c)) for c in (first, second)]
    expect(certificate is not None, "rom.identity answered no certificate")
    assert certificate is not None  # noqa: S101 - expect() raised otherwise
    cert = x509.load_der_x509_certificate(certificate)
    key = cert.public_key()
    expect(isinstance(key, ec.EllipticCurvePublicKey), "the certificate is not of a P-256 key")
    assert isinstance(key, ec.EllipticCurvePublicKey)  # noqa: S101 - for the type checker
    serial = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]
    expect(serial == [status["uid"].hex()], f"the certificate names {serial}, not the chip's UID")
    installed = status.get("installed") or {}
    held = (
        status.get("installed-digest"),
        installed.get("bundle-id"),
        installed.get("domain-id"),
        installed.get("epoch"),
    )
    for t, challenge in zip(tokens, (first, second), strict=True):
        expect(t.certificate == certificate, "the token's x5chain is not the chip's certificate")
        t.verify(key, challenge)  # the signature under the chip's key, then the nonce
        c = t.claims
        expect(c.uid == status["uid"], f"the token names chip {c.uid.hex()}")
        expect(c.lot == status["lot"], f"the token names lot {c.lot!r}, not {status['lot']!r}")
        signed = (c.installed_digest, c.bundle_id, c.domain_id, c.epoch)
        expect(signed == held, f"the token says {signed!r}; the status {held!r}")
        number = LIFECYCLES.get(status["lifecycle"])
        expect(c.lifecycle == number, f"lifecycle {c.lifecycle}, status {status['lifecycle']}")
    v = ctx.family.vector
    shows = "the vector bundle" if held[0] == v.installed_digest else "what the status shows"
    return (
        f"two tokens, each over its own challenge, verify under the chip's certificate and show "
        f"{shows} (counter {tokens[0].claims.counter})"
    )


CASES_BEFORE_INSTALL = [
    Case("attest.malformed", "8.1, 8.2, 8.8", "rom.attest's arguments are checked", malformed),
]
CASES_INSTALL = [
    Case(
        "attest.token",
        "8.8",
        "the chip signs what it holds over the host's challenge",
        token,
        needs="after fig3.provision, the token must show the vector bundle",
    ),
]
