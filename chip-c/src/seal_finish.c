/*
 * seal.finish (protocol.md 6.1, 6.5, 8.4): the manifest of the sealing session's entries, in
 * canonical CBOR, its COSE_Mac0 under K_AUTH; refused `ram-budget` when no chip of the family
 * could install it (512 + m + 2c + 32 > 65,536). Ends the sealing session.
 */
#include <string.h>

#include "tp/cbor.h"
#include "tp/chip.h"
#include "tp_hal_crypto.h"

#include "seal_entries.h"

#define KINDS TP_SEAL_KINDS
#define KEY_TYPES TP_SEAL_KEY_TYPES
#define refuse tp_seal_refuse

static void put_asset(tp_cbor_out *o, const entry *en, size_t prefix)
{
    /* canonical key order: kind, name, slot, nonce, chunks, digest, length, region, deflate,
     * key-type */
    int key = en->kind == TP_KIND_KEY;
    tp_cbor_put_map(o, key ? 8u : en->deflate != 0u ? 8u : 7u);
    tp_cbor_put_tstr(o, "kind");
    tp_cbor_put_tstr(o, KINDS[en->kind]);
    tp_cbor_put_tstr(o, "name");
    tp_cbor_put_text(o, en->name, en->name_len);
    if (key) {
        tp_cbor_put_tstr(o, "slot");
        tp_cbor_put_uint(o, en->slot);
    }
    tp_cbor_put_tstr(o, "nonce");
    tp_cbor_put_bstr(o, en->nonce, prefix);
    tp_cbor_put_tstr(o, "chunks");
    tp_cbor_put_uint(o, en->chunks);
    tp_cbor_put_tstr(o, "digest");
    tp_cbor_put_bstr(o, en->digest, 32);
    tp_cbor_put_tstr(o, "length");
    tp_cbor_put_uint(o, en->length);
    if (key) {
        tp_cbor_put_tstr(o, "key-type");
        tp_cbor_put_tstr(o, KEY_TYPES[en->key_type]);
    } else {
        tp_cbor_put_tstr(o, "region");
        tp_cbor_put_text(o, en->region, en->region_len);
        if (en->deflate != 0u) {
            tp_cbor_put_tstr(o, "deflate");
            tp_cbor_put_uint(o, en->deflate);
        }
    }
}

void tp_seal_finish(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                    tp_result *res)
{
    static const char CONTENT_TYPE[] = "application/vnd.trustprov.manifest+cbor";
    tp_session *s = &chip->s;
    tp_image im;
    uint32_t nassets = 0;
    uint32_t ndev = 0;

    if (tp_args_names(args, nargs, NULL, 0) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "seal.finish takes no arguments");
        return;
    }
    if (!tp_seal_session_ok(chip, res)) {
        return;
    }
    for (uint32_t i = 0; i < s->sealed; i++) {
        nassets += ENTRIES[i].kind != KIND_DEVICE_KEY;
        ndev += ENTRIES[i].kind == KIND_DEVICE_KEY;
    }
    if (s->asset_open || nassets == 0u) {
        refuse(res, TP_E_BAD_SEQUENCE, "an asset is open, or none is sealed");
        return;
    }
    if (tp_rom_image(chip, &im) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    size_t prefix = s->params.aead == TP_AEAD_A256GCM ? 7u : 8u;
    uint8_t *payload = tp_ram_arena + AFTER_ENTRIES;
    tp_cbor_out p;
    tp_cbor_out_init(&p, payload, 32768u);
    /* canonical order: v, aead, epoch, assets, family, min-svn, bundle-id, authorized,
     * chunk-size, device-keys */
    tp_cbor_put_map(&p, ndev > 0u ? 10u : 9u);
    tp_cbor_put_tstr(&p, "v");
    tp_cbor_put_uint(&p, 2);
    tp_cbor_put_tstr(&p, "aead");
    tp_cbor_put_uint(&p, s->params.aead);
    tp_cbor_put_tstr(&p, "epoch");
    tp_cbor_put_uint(&p, s->params.epoch);
    tp_cbor_put_tstr(&p, "assets");
    tp_cbor_put_array(&p, nassets);
    for (uint32_t i = 0; i < s->sealed; i++) {
        if (ENTRIES[i].kind != KIND_DEVICE_KEY) {
            put_asset(&p, &ENTRIES[i], prefix);
        }
    }
    tp_cbor_put_tstr(&p, "family");
    tp_cbor_put_bstr(&p, im.family, 8);
    tp_cbor_put_tstr(&p, "min-svn");
    tp_cbor_put_uint(&p, s->params.min_svn);
    tp_cbor_put_tstr(&p, "bundle-id");
    tp_cbor_put_bstr(&p, s->bundle_id, 16);
    tp_cbor_put_tstr(&p, "authorized");
    if (s->params.authorized) {
        tp_cbor_put_array(&p, 2);
        tp_cbor_put_bstr(&p, s->params.root, 32);
        tp_cbor_put_uint(&p, s->params.count);
    } else {
        tp_cbor_put_null(&p);
    }
    tp_cbor_put_tstr(&p, "chunk-size");
    tp_cbor_put_uint(&p, s->params.chunk_size);
    if (ndev > 0u) {
        tp_cbor_put_tstr(&p, "device-keys");
        tp_cbor_put_array(&p, ndev);
        for (uint32_t i = 0; i < s->sealed; i++) {
            if (ENTRIES[i].kind == KIND_DEVICE_KEY) {
                tp_cbor_put_map(&p, 3);
                tp_cbor_put_tstr(&p, "name");
                tp_cbor_put_text(&p, ENTRIES[i].name, ENTRIES[i].name_len);
                tp_cbor_put_tstr(&p, "slot");
                tp_cbor_put_uint(&p, ENTRIES[i].slot);
                tp_cbor_put_tstr(&p, "key-type");
                tp_cbor_put_tstr(&p, "ec-p256");
            }
        }
    }
    if (p.overflow) {
        refuse(res, TP_E_BAD_REQUEST, "manifest above 32 KiB");
        return;
    }
    /* protected = {1: -65537, 3: content type, "tp-family": FAMILY_ID} */
    uint8_t prot[80];
    tp_cbor_out h;
    tp_cbor_out_init(&h, prot, sizeof(prot));
    tp_cbor_put_map(&h, 3);
    tp_cbor_put_uint(&h, 1);
    tp_cbor_put_int(&h, -65537);
    tp_cbor_put_uint(&h, 3);
    tp_cbor_put_tstr(&h, CONTENT_TYPE);
    tp_cbor_put_tstr(&h, "tp-family");
    tp_cbor_put_bstr(&h, im.family, 8);
    /* MAC_structure = ["MAC0", protected, h'', payload] */
    uint8_t heads[16];
    tp_cbor_out hd;
    tp_cbor_out_init(&hd, heads, sizeof(heads));
    tp_cbor_put_head(&hd, TP_CBOR_BSTR, h.len);
    size_t prot_head = hd.len;
    tp_cbor_put_head(&hd, TP_CBOR_BSTR, p.len);
    static const uint8_t prefix4[6] = {0x84, 0x64, 'M', 'A', 'C', '0'};
    static const uint8_t empty = 0x40;
    uint8_t tag[16];
    tp_hal_seg segs[6] = {{prefix4, sizeof(prefix4)}, {heads, prot_head}, {prot, h.len},
                          {&empty, 1},                {heads + prot_head, hd.len - prot_head},
                          {payload, p.len}};
    if (h.overflow || tp_hal_cmac(s->keys.auth, segs, 6, tag) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    /* 17([protected, {}, payload, tag]) */
    size_t m = 1u + 1u + hd.len + h.len + 1u + p.len + 1u + 16u;
    /* 8.4: what a chip reserves to install it, with the inflater's when an asset is deflated */
    size_t inflater = 0;
    for (uint32_t i = 0; i < s->sealed; i++) {
        if (ENTRIES[i].deflate != 0u) {
            inflater = TP_DEFLATE_RAM;
        }
    }
    if (TP_SESSION_RAM + m + 2u * (size_t)s->params.chunk_size + 32u + inflater >
        TP_RAM_BUDGET) {
        refuse(res, TP_E_RAM_BUDGET,
               "no chip of the family could install this bundle: its working set is above 64 KiB");
        return;
    }
    tp_cbor_put_map(ok, 1);
    tp_cbor_put_tstr(ok, "manifest");
    tp_cbor_put_head(ok, TP_CBOR_BSTR, m);
    tp_cbor_put_tag(ok, 17);
    tp_cbor_put_array(ok, 4);
    tp_cbor_put_bstr(ok, prot, h.len);
    tp_cbor_put_map(ok, 0);
    tp_cbor_put_bstr(ok, payload, p.len);
    tp_cbor_put_bstr(ok, tag, sizeof(tag));
    if (ok->overflow) {
        refuse(res, TP_E_RAM_BUDGET, "a manifest above this chip's answer buffer");
        return;
    }
    tp_software_stop(chip, 0); /* the sealing session ends */
}


