"""The flow against vectors (FIG. 2, 4, 3) and every refusal of section 6.6, each checked to
leave nothing installed (`rom.status` "installed-digest" unchanged) and the chip retryable.

Refusals run before the one install the suite makes (the vector bundle, epoch 7), so "retryable"
means the right bundle's session then opens and takes every chunk; after the install, only
`stale-epoch` and the lock cases remain, and `lock` ends the suite: it cannot be undone.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from trustprov.conformance.receipts import check_receipt
from trustprov.conformance.suite import Case, CaseFailed, Context, expect, refused
from trustprov.crypto.aead import cmac_verify
from trustprov.crypto.keys import (
    MATERIAL_LEN,
    private_key_bytes,
    private_key_from_material,
    public_key_pem,
)
from trustprov.crypto.schedule import asset_material, f_oem_share, h_seed
from trustprov.formats import cbor
from trustprov.formats.bundle import SignedManifest, chunk_aad, chunk_nonce
from trustprov.formats.limits import LIMITS
from trustprov.link import messages
from trustprov.link.client import ChipClient, PreparedBundle


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _digest(chip: ChipClient) -> Any:
    return chip.status().get("installed-digest")


def _retryable(ctx: Context, chip: ChipClient) -> str:
    """The right bundle's session opens and takes every chunk; then a reboot drops it unfinished."""
    prepared = ctx.prepared()
    chip.send(prepared.begin)
    for request in prepared.chunks:
        chip.send(request)
    ctx.boot(chip)  # a new boot ends the session: nothing of it installs
    return "retry accepted every chunk"


def _refusal(
    ctx: Context, codes: set[str], provoke: Callable[[ChipClient, PreparedBundle], object]
) -> str:
    with ctx.client() as chip:
        ctx.boot(chip)
        before = _digest(chip)
        e = refused(lambda: provoke(chip, ctx.prepared()), codes)
        after = _digest(chip)
        expect(after == before, f"installed-digest changed after {e.code}: {after!r}")
        if e.code != "stale-epoch":
            chunk = refused(
                lambda: chip.send(ctx.prepared().chunks[0]), {"bad-sequence", "unknown-command"}
            )
            expect(chunk is not None, "the session outlived the refusal")
            retry = _retryable(ctx, chip)
            expect(_digest(chip) == before, "installed-digest changed during the retry")
        else:
            retry = "status answered"
        return f"{e.code} ({e.message}); nothing installed; {retry}"


def _run(chip: ChipClient, p: PreparedBundle, chunks: list[bytes] | None = None) -> None:
    chip.send(p.begin)
    for request in p.chunks if chunks is None else chunks:
        chip.send(request)
    chip.send(p.finish)


def _chunk_request(p: PreparedBundle, k: int, change: Callable[[dict[str, Any]], None]) -> bytes:
    _, args = messages.decode_request(p.chunks[k])
    change(args)
    return messages.encode_request("cm.chunk", args)


# -- FIG. 2, FIG. 4, FIG. 3 -----------------------------------------------------------------------
def keygen(ctx: Context) -> str:
    fam = ctx.family
    with ctx.client() as chip:
        ctx.boot(chip)
        out = chip.keygen(fam.oem_rnd_input, ctx.params())
        ctx.boot(chip)  # end the sealing session
    expect(
        fam.open(out["enc-oem-rnd-input"], "oem-rnd-input") == fam.oem_rnd_input,
        "ENC(OEM_RND_INPUT) does not open to the input under K_OEM_MASTER_SHARE",
    )
    rnd = fam.open(out["enc-rnd-share"], "rnd-share")
    share = fam.open(out["enc-oem-share"], "oem-share")
    expect(
        share == f_oem_share(fam.oem_rnd_input, rnd), "OEM_SHARE is not F(OEM_RND_INPUT, RND_SHARE)"
    )
    expect(rnd != fam.rnd_share, "RND_SHARE is the vector's: not drawn from the TRNG")
    return "the three sealed values open under the published keys; OEM_SHARE = F(input, RND_SHARE)"


def regen(ctx: Context) -> str:
    """FIG. 4 from the sealed vector values: the vector OEM_SHARE comes back, a generated key is
    the one the seed gives (section 3) bit for bit, and what the chip seals opens under the
    vector OEM's keys."""
    fam = ctx.family
    keys = fam.oem_keys(fam.oem_share)
    seed = h_seed(fam.oem_rnd_input, fam.rnd_share)
    expected = private_key_from_material(
        "ec-p256", asset_material(seed, "ec-p256", "signer", MATERIAL_LEN["ec-p256"])
    )
    with ctx.client() as chip:
        ctx.boot(chip)
        enc = chip.regen(
            fam.seal("oem-rnd-input", fam.oem_rnd_input),
            fam.seal("rnd-share", fam.rnd_share),
            ctx.params(),
        )
        expect(
            fam.open(enc, "oem-share") == fam.oem_share, "regenerated OEM_SHARE is not the vector's"
        )
        chip.seal_asset("conformance", "config", 5, {"region": "conformance"})
        config = chip.seal_chunk(0, b"hello")
        sealed_key, public = chip.seal_generate("signer", "ec-p256", 3)
        signed = SignedManifest.from_bytes(chip.seal_finish())
    m = signed.message
    cmac_verify(keys.auth, m.mac_structure(), m.auth)  # raises unless the vector K_AUTH
    manifest = signed.manifest
    expect(manifest.family_id == fam.family_id, "the manifest names another family")
    expect(public == public_key_pem(expected), "the generated key is not the one its seed gives")
    aead = manifest.aead
    for index, (key, chunk, plain) in enumerate(
        ((keys.encd, config, b"hello"), (keys.enck, sealed_key, private_key_bytes(expected)))
    ):
        nonce = chunk_nonce(manifest.assets[index].nonce, 0, True)
        opened = aead.open(key, nonce, chunk, chunk_aad(manifest.bundle_id, index))
        expect(opened == plain, f"asset {index} does not open to what was sealed")
    return (
        "OEM_SHARE is the vector's; the manifest verifies under K_AUTH; the generated P-256 key "
        "'signer' is the seed's, and both chunks open under K_ENCD and K_ENCK"
    )


def provision(ctx: Context) -> str:
    v = ctx.family.vector
    with ctx.client() as chip:
        ctx.boot(chip)
        status = chip.status()
        expect(
            status.get("installed-digest") != v.installed_digest,
            "the chip already holds the vector bundle: this case needs a fresh chip",
        )
        before = status
        p = ctx.prepared()
        chip.send(p.begin)
        for request in p.chunks:
            chip.send(request)
        receipt = check_receipt(ctx, chip, chip.send(p.finish), ctx.family.vector.bundle, before)
        status = chip.status()
    got = status.get("installed-digest")
    expect(
        got == v.installed_digest, f"installed-digest {got!r}, vector {v.installed_digest.hex()}"
    )
    expect(status["installed"]["domain-id"] == v.domain_id, "domain-id is not the vector's")
    expect(status["lifecycle"] == "PROVISIONED", f"lifecycle {status['lifecycle']}")
    return f"installed-digest {v.installed_digest.hex()} (vector); PROVISIONED; {receipt}"


# -- refusals (6.6) -------------------------------------------------------------------------------
def tampered_share(ctx: Context) -> str:
    def go(chip: ChipClient, _p: PreparedBundle) -> None:
        share = ctx.family.seal("oem-share", ctx.family.oem_share)
        _run(chip, PreparedBundle.prepare(ctx.family.vector.bundle, _flip(share, len(share) - 1)))

    return _refusal(ctx, {"bad-share"}, go)


def other_family(ctx: Context) -> str:
    def go(chip: ChipClient, _p: PreparedBundle) -> None:
        share = ctx.family.seal("oem-share", ctx.family.oem_share, family_id=bytes(8))
        _run(chip, PreparedBundle.prepare(ctx.family.vector.bundle, share))

    return _refusal(ctx, {"wrong-family"}, go)


def tampered_manifest(ctx: Context) -> str:
    def go(chip: ChipClient, p: PreparedBundle) -> None:
        _, args = messages.decode_request(p.begin)
        args["manifest"] = _flip(args["manifest"], len(args["manifest"]) - 1)
        chip.send(messages.encode_request("cm.begin", args))

    return _refusal(ctx, {"bad-manifest"}, go)


def _at(chip: ChipClient, p: PreparedBundle, before: list[bytes], bad: bytes, what: str) -> None:
    """Begin, the chunks ``before`` (each must be taken), then ``bad``, which must be refused."""
    chip.send(p.begin)
    for request in before:
        chip.send(request)
    chip.send(bad)
    raise CaseFailed(f"the chip accepted {what}")


def tampered_chunk(ctx: Context) -> str:
    def go(chip: ChipClient, p: PreparedBundle) -> None:
        bad = _chunk_request(p, 1, lambda a: a.update(data=_flip(a["data"], 0)))
        _at(chip, p, [p.chunks[0]], bad, "a damaged chunk")

    return _refusal(ctx, {"bad-chunk"}, go)


def out_of_order(ctx: Context) -> str:
    def go(chip: ChipClient, p: PreparedBundle) -> None:
        _at(chip, p, [p.chunks[0]], p.chunks[2], "chunk 1 of an asset before its chunk 0")

    return _refusal(ctx, {"bad-sequence"}, go)


def ram_budget(ctx: Context) -> str:
    """A manifest MACed with the vector OEM's K_AUTH whose chunk size no 64 KiB chip holds twice."""
    fam = ctx.family
    manifest = fam.vector.bundle.manifest
    big = dataclasses.replace(
        manifest,
        chunk_size=65536,
        assets=tuple(dataclasses.replace(a, chunks=1) for a in manifest.assets),
    )
    mac0 = fam.manifest_mac0(big.to_payload())

    def go(chip: ChipClient, p: PreparedBundle) -> None:
        _, args = messages.decode_request(p.begin)
        chip.send(messages.encode_request("cm.begin", {**args, "manifest": mac0}))

    return _refusal(ctx, {"ram-budget"}, go)


def manifest_version(ctx: Context) -> str:
    """The vector manifest as version 1 (the old chain over the ciphertext), MACed with the
    vector OEM's K_AUTH: genuine but of another construction, refused by its version (6.1)."""
    fam = ctx.family
    payload = cbor.decode(
        fam.vector.bundle.signed.message.body,
        limit=LIMITS.manifest,
        what="manifest",
        shape=LIMITS.manifest_shape,
    )
    payload["v"] = 1
    mac0 = fam.manifest_mac0(cbor.encode(payload))

    def go(chip: ChipClient, p: PreparedBundle) -> None:
        _, args = messages.decode_request(p.begin)
        chip.send(messages.encode_request("cm.begin", {**args, "manifest": mac0}))

    return _refusal(ctx, {"bundle-version"}, go)


def stale_epoch(ctx: Context) -> str:
    return _refusal(ctx, {"stale-epoch"}, _run)


# -- secrets ------------------------------------------------------------------------------------
def fixed_messages(ctx: Context) -> str:
    """A refusal's text must not depend on a key: the same CMAC failure under two OEM domains,
    the vector OEM's and a second published one (FIG. 4 with fixed values), so the check is
    deterministic."""
    fam = ctx.family
    texts = []
    with ctx.client() as chip:
        ctx.boot(chip)
        other = chip.regen(
            fam.seal("oem-rnd-input", fam.other_oem_rnd_input),
            fam.seal("rnd-share", fam.other_rnd_share),
            ctx.params(),
        )
        for share in (fam.seal("oem-share", fam.oem_share), other):
            ctx.boot(chip)
            p = ctx.prepared(enc_oem_share=share)
            _, args = messages.decode_request(p.begin)
            args["manifest"] = _flip(args["manifest"], len(args["manifest"]) - 1)
            begin = messages.encode_request("cm.begin", args)
            e = refused(functools.partial(chip.send, begin), {"bad-manifest"})
            texts.append(e.message)
    expect(
        texts[0] == texts[1], f"the message depends on the OEM's keys: {texts[0]!r} vs {texts[1]!r}"
    )
    return f"the same text under two OEM domains: {texts[0]!r}"


def scan(ctx: Context) -> str:
    """Every answer so far, searched for any 8 bytes of every secret, raw or as hex text."""
    needles: list[tuple[str, bytes]] = []
    for name, secret in {**ctx.family.secrets, **ctx.secrets}.items():
        for i in range(0, len(secret) - 7):
            window = secret[i : i + 8]
            needles += [
                (name, window),
                (name, window.hex().encode()),
                (name, window.hex().upper().encode()),
            ]
    blob = b"\x00".join(ctx.answers)
    for name, needle in needles:
        if needle in blob:
            raise CaseFailed(f"an answer carries bytes of {name}")
    expect(len(ctx.answers) > 0, "no answers were recorded")
    count = len(ctx.family.secrets)
    return f"{len(ctx.answers)} answers ({len(blob)} bytes), {count} secrets: none found"


# -- lock (destructive: last) -------------------------------------------------------------------
def lock_ends_session(ctx: Context) -> str:
    fam = ctx.family
    with ctx.client() as chip:
        ctx.boot(chip)
        chip.regen(
            fam.seal("oem-rnd-input", fam.oem_rnd_input),
            fam.seal("rnd-share", fam.rnd_share),
            ctx.params(),
        )
        e = refused(chip.lock, {"bad-sequence"})
        after = refused(
            lambda: chip.seal_asset("x", "config", 1, {"region": "x"}), {"bad-sequence"}
        )
        lifecycle = chip.status()["lifecycle"]
        expect(lifecycle != "LOCKED", "the chip locked under an open session")
        return f"lock under a session: {e.code}; the session is gone ({after.code}); {lifecycle}"


def locked(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.boot(chip)
        expect(
            chip.status()["lifecycle"] == "PROVISIONED",
            "lock needs a PROVISIONED chip (run fig3.provision)",
        )
        chip.lock()
        before = _digest(chip)
        e = refused(lambda: _run(chip, ctx.prepared()), {"lifecycle"})
        again = refused(chip.lock, {"lifecycle"})
        status = chip.status()
        expect(status["lifecycle"] == "LOCKED", f"lifecycle {status['lifecycle']} after lock")
        expect(
            status.get("installed-digest") == before, "installed-digest changed on a locked chip"
        )
        return f"LOCKED; cm.begin: {e.code}; lock again: {again.code}; nothing installed"


CASES_BEFORE_INSTALL = [
    Case(
        "fig2.keygen",
        "3, 4 (FIG. 2)",
        "keygen's sealed values open to F of the vector input",
        keygen,
    ),
    Case("fig4.regen", "3, 4, 6.1, 6.2 (FIG. 4)", "regen gives the vector OEM's keys", regen),
    Case("refusal.tampered-share", "4, 6.6 (2.)", "a damaged ENC(OEM_SHARE)", tampered_share),
    Case("refusal.other-family", "4, 6.6 (2.)", "ENC(OEM_SHARE) of another family", other_family),
    Case("refusal.tampered-manifest", "6.1, 6.6 (5.)", "a damaged manifest MAC", tampered_manifest),
    Case("refusal.tampered-chunk", "6.3, 6.6 (7.)", "a damaged chunk", tampered_chunk),
    Case("refusal.out-of-order", "6.6 (7.)", "a chunk before its predecessor", out_of_order),
    Case("refusal.ram-budget", "6.6 (6.)", "a manifest beyond a 64 KiB RAM", ram_budget),
    Case("refusal.manifest-version", "6.1", "a genuine manifest of v1", manifest_version),
    Case("secrets.fixed-messages", "8", "refusal texts do not depend on keys", fixed_messages),
]
CASES_INSTALL = [
    Case(
        "fig3.provision",
        "6.6, 6.7 (FIG. 3)",
        "the vector bundle installs with its digest",
        provision,
        needs="a chip that does not hold the vector bundle yet",
    ),
    Case("refusal.stale-epoch", "6.6 (6.)", "the same bundle again", stale_epoch),
    Case("secrets.scan", "8; docs/design.md property 1", "no answer carries a secret", scan),
    Case("lock.ends-session", "6.6 (lifecycle)", "lock under a session ends it", lock_ends_session),
    Case(
        "lock.locked",
        "6.6 (lifecycle)",
        "a LOCKED chip installs nothing",
        locked,
        needs="locks the chip for good: last",
    ),
]
