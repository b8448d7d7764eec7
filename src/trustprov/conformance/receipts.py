"""What a chip's receipt must say after an install (docs/protocol.md 6.8): signed by the chip's
identity key under the certificate it stores, over exactly what it committed, with its
provisioning counter raised by one per install.

The suite checks a receipt as the OEM's reconciliation does, field by field, against what the
chip reports (`rom.status`, `rom.identity`) and what the suite sent (the bundle): a chip that
signs with another key, signs values it did not commit, or does not raise its counter fails the
case that installed.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from trustprov.conformance.suite import CaseFailed, Context, expect
from trustprov.crypto.digest import sha256
from trustprov.errors import TrustprovError
from trustprov.formats.bundle import Bundle
from trustprov.formats.receipt import Receipt
from trustprov.link.client import ChipClient

PROVISIONED = 2  # the lifecycle's number in a receipt (8.3)


def check_receipt(
    ctx: Context,
    chip: ChipClient,
    answer: dict[str, Any],
    bundle: Bundle,
    before: dict[str, Any],
) -> str:
    """Check ``answer`` (cm.finish's) for ``bundle`` on ``chip``, whose `rom.status` before the
    install was ``before``; returns the evidence."""
    m = bundle.manifest
    status = chip.status(digests=True)
    installed = status.get("installed") or {}
    for field, value in (("bundle-id", m.bundle_id), ("epoch", m.epoch), ("assets", len(m.assets))):
        expect(answer.get(field) == value, f"cm.finish answered {field} {answer.get(field)!r}")
    expect(answer.get("domain-id") == installed.get("domain-id"), "cm.finish's domain-id")
    try:
        receipt = Receipt.from_bytes(answer["receipt"])
    except (TrustprovError, KeyError, TypeError) as e:
        raise CaseFailed(f"cm.finish answered no receipt that parses: {e}") from e
    certificate = chip.certificate()
    expect(receipt.certificate == certificate, "the receipt carries another certificate")
    key = x509.load_der_x509_certificate(certificate or b"").public_key()
    try:
        receipt.verify(key)  # type: ignore[arg-type]  # the chip's P-256 key
    except TrustprovError as e:
        raise CaseFailed("the receipt does not verify under the chip's certificate") from e
    c = receipt.claims
    want = {
        "uid": (c.uid, status["uid"]),
        "lot": (c.lot, status["lot"]),
        "bundle id": (c.bundle_id, m.bundle_id),
        "manifest digest": (c.manifest_digest, sha256(bundle.signed.message.body)),
        "installed digest": (c.installed_digest, status.get("installed-digest")),
        "domain id": (c.domain_id, installed.get("domain-id")),
        "epoch": (c.epoch, m.epoch),
        "security version": (c.security_version, ctx.svn),
        "lifecycle": (c.lifecycle, PROVISIONED),
    }
    for name, (got, expected) in want.items():
        expect(got == expected, f"the receipt's {name} is {got!r}, not {expected!r}")
    if ctx.counters:
        expected_counter = ctx.counters[-1] + 1
    elif before.get("installed") is None:
        expected_counter = 1  # the chip's first install
    else:
        expected_counter = max(c.counter, 1)  # a chip installed before this run: unknown
    expect(
        c.counter == expected_counter,
        f"the receipt's provisioning counter is {c.counter}, not {expected_counter}",
    )
    ctx.counters.append(c.counter)
    slots = installed.get("slots") or {}
    named = {(d.slot, d.name) for d in m.device_keys}
    expect({(d.slot, d.name) for d in c.device_keys} == named, "the receipt's device keys")
    for d in c.device_keys:
        public = (slots.get(d.slot) or {}).get("public-key")
        expect(public == d.public_key, f"device key slot {d.slot}: not the key the chip holds")
    return f"receipt verifies under the chip's certificate, counter {c.counter}"
