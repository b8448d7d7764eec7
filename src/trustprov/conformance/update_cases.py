"""After the first install (docs/protocol.md 6.6, 6.8, 8.3): an update that replaces the whole
installed state, in AES-CCM, with a per-device key; one OEM domain per chip; the keys a sealing
chip generates from its seed, of every type.

`fig3.update` is the suite's second install: AES-CCM (claim 6), a device key made from the
chip's TRNG, and fewer assets than the first bundle, so the chip must erase the slots and regions
the update does not name, raise its provisioning counter again, and sign a receipt for it.
"""

from __future__ import annotations

from trustprov.conformance.bundles import Plain, remac, seal_bundle
from trustprov.conformance.flow_cases import _digest
from trustprov.conformance.receipts import check_receipt
from trustprov.conformance.suite import BASE_SVN, Case, Context, expect, refused
from trustprov.crypto.aead import AES_CCM_16_128_256
from trustprov.crypto.digest import sha256
from trustprov.crypto.keys import (
    MATERIAL_LEN,
    private_key_bytes,
    private_key_from_material,
    public_key_pem,
)
from trustprov.crypto.schedule import asset_material, h_seed
from trustprov.formats.bundle import DeviceKeySpec, SignedManifest, chunk_aad, chunk_nonce
from trustprov.formats.installed import expected_installed_digest
from trustprov.link.client import PreparedBundle

UPDATE_CONFIG = b"trustprov conformance: the update's config, in AES-CCM\n" * 6  # 2 chunks
UPDATE_KEY = sha256(b"trustprov conformance: the update's aes-256 key")
DEVICE_KEY = DeviceKeySpec("conformance-device-key", "ec-p256", 9)


def update(ctx: Context) -> str:
    fam = ctx.family
    bundle = seal_bundle(
        fam,
        [
            Plain("cfg", "config", UPDATE_CONFIG, region="config"),
            Plain("aes-2", "key", UPDATE_KEY, key_type="aes-256", slot=2),
        ],
        epoch=fam.vector.epoch + 1,
        min_svn=BASE_SVN,
        aead=AES_CCM_16_128_256,
        device_keys=(DEVICE_KEY,),
    )
    ctx.secrets["the update's key 'aes-2'"] = UPDATE_KEY
    with ctx.client() as chip:
        ctx.boot(chip)
        before = chip.status()
        expect(
            before.get("installed-digest") == fam.vector.installed_digest,
            "the chip does not hold the vector bundle (run fig3.provision first)",
        )
        p = PreparedBundle.prepare(bundle, fam.seal("oem-share", fam.oem_share))
        chip.send(p.begin)
        for request in p.chunks:
            chip.send(request)
        receipt = check_receipt(ctx, chip, chip.send(p.finish), bundle, before)
        status = chip.status(digests=True)
    installed = status["installed"]
    slots, regions = set(installed["slots"]), set(installed["regions"])
    expect(slots == {2, DEVICE_KEY.slot}, f"slots {sorted(slots)} after the update, not [2, 9]")
    expect(regions == {"config"}, f"regions {sorted(regions)} after the update, not ['config']")
    expected = expected_installed_digest(bundle.manifest, fam.vector.domain_id)
    expect(status["installed-digest"] == expected, "installed-digest is not the update's")
    expect(
        installed["regions"]["config"].get("sha256") == sha256(UPDATE_CONFIG),
        "the config region does not hold the update's plaintext",
    )
    expect(status["lifecycle"] == "PROVISIONED", f"lifecycle {status['lifecycle']}")
    return (
        "AES-CCM update with a device key: only its slots 2, 9 and region 'config' remain; "
        f"installed-digest the host's; {receipt}"
    )


def domain_mismatch(ctx: Context) -> str:
    """6.6 "One OEM domain per chip": the second published OEM's genuine bundle, at an epoch
    above the installed one, on a chip holding the vector OEM's assets."""
    fam = ctx.family
    other = fam.other_oem_share
    bundle = remac(fam, fam.vector.bundle, oem_share=other, epoch=2**32 - 1)
    with ctx.client() as chip:
        ctx.boot(chip)
        before = _digest(chip)
        expect(before is not None, "the chip holds nothing (run fig3.provision first)")
        p = PreparedBundle.prepare(bundle, fam.seal("oem-share", other))
        e = refused(lambda: chip.send(p.begin), {"domain-mismatch"})
        expect(_digest(chip) == before, "installed-digest changed")
    return f"another OEM's bundle at epoch 2^32 - 1: {e.code}; nothing installed"


def generated_keys(ctx: Context) -> str:
    """Section 3: `seal.generate` of every key type gives the key its seed gives, bit for bit,
    sealed under K_ENCK (FIG. 4 from the vector OEM's values)."""
    fam = ctx.family
    keys = fam.oem_keys(fam.oem_share)
    seed = h_seed(fam.oem_rnd_input, fam.rnd_share)
    with ctx.client() as chip:
        ctx.boot(chip)
        chip.regen(
            fam.seal("oem-rnd-input", fam.oem_rnd_input),
            fam.seal("rnd-share", fam.rnd_share),
            ctx.params(),
        )
        sealed = {}
        for slot, key_type in enumerate(sorted(MATERIAL_LEN), start=20):
            sealed[key_type] = chip.seal_generate(f"gen-{key_type}", key_type, slot)
        manifest = SignedManifest.from_bytes(chip.seal_finish()).manifest
        ctx.boot(chip)
    for index, (key_type, (chunk, public)) in enumerate(sealed.items()):
        material = asset_material(seed, key_type, f"gen-{key_type}", MATERIAL_LEN[key_type])
        if key_type == "aes-256":
            value, expected_public = material, None
        else:
            private = private_key_from_material(key_type, material)
            value, expected_public = private_key_bytes(private), public_key_pem(private)
        expect(public == expected_public, f"{key_type}: not the public key its seed gives")
        ctx.secrets[f"generated key 'gen-{key_type}'"] = value
        entry = manifest.assets[index]
        nonce = chunk_nonce(entry.nonce, 0, True)
        aad = chunk_aad(manifest.bundle_id, index)
        opened = manifest.aead.open(keys.enck, nonce, chunk, aad)
        expect(opened == value, f"{key_type}: the sealed key is not the seed's")
    return f"{', '.join(sealed)}: each the seed's key, sealed under K_ENCK"


CASES_BEFORE_INSTALL = [
    Case("fig4.generated-keys", "3, 6.5", "every generated key type", generated_keys),
]
CASES_AFTER_INSTALL = [
    Case(
        "fig3.update",
        "6.2, 6.6, 6.8, 8.3",
        "an AES-CCM update replaces the whole state",
        update,
        needs="installs a second bundle (epoch 8)",
    ),
    Case("refusal.domain-mismatch", "6.6 (one domain)", "another OEM's bundle", domain_mismatch),
]
