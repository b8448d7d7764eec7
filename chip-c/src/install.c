/*
 * FIG. 3 on the chip (protocol.md 6.6, 6.3, 15.3): cm.begin and cm.chunk.
 *
 * Invariants:
 * - cm.begin's checks run in the order of protocol.md 8.3: lifecycle, RAM for the session and
 *   the manifest, ENC(OEM_SHARE), the manifest's CMAC and payload, its family, min-svn, the
 *   proof, RAM for the chunks; nothing is decrypted before the manifest's CMAC verified.
 * - A chunk is taken only in manifest order, only if its tag's link matches the chain value
 *   the chip expects (6.3) before the AEAD opens it, and only with the plaintext length the
 *   manifest fixes. Plaintext goes to the RAM arena, never to the answer.
 * - Plaintext is staged in the NVM slot not in use (tp_nvm_stage) and committed by cm.finish in
 *   one A/B commit with the installed encoding, the lifecycle and the provisioning counter; a
 *   session that ends any other way leaves the committed state as it was.
 * - A device key is made at cm.finish from 40 bytes of the TRNG (6.8), staged into its slot and
 *   committed with the rest; only its public key leaves the chip, in the receipt.
 */
#include <string.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/ram.h"
#include "tp/receipts.h"
#include "tp_hal_crypto.h"
#include "tp_hal_inflate.h"
#include "tp_hal_trng.h"

_Static_assert(TP_HAL_INFLATE_WORK == 8192u, "TP_DEFLATE_ARENA counts an 8 KiB inflater");

static void refuse(tp_result *res, tp_code code, const char *message)
{
    res->code = code;
    res->message = message;
}

int tp_proof_verify(tp_cbor_in path, uint64_t npath, uint64_t index, uint64_t size,
                    const uint8_t uid[16], const uint8_t root[32])
{
    uint8_t r[32];
    uint8_t prefix = 0;
    if (index >= size) {
        return -1;
    }
    tp_hal_seg leaf[2] = {{&prefix, 1}, {uid, 16}};
    tp_hal_sha256(leaf, 2, r);
    uint64_t fn = index;
    uint64_t sn = size - 1u;
    for (uint64_t i = 0; i < npath; i++) {
        const uint8_t *p;
        size_t plen;
        uint8_t one = 1;
        if (tp_cbor_bstr(&path, &p, &plen) != 0 || plen != 32u || sn == 0u) {
            return -1;
        }
        if ((fn & 1u) == 1u || fn == sn) {
            tp_hal_seg node[3] = {{&one, 1}, {p, 32}, {r, 32}};
            tp_hal_sha256(node, 3, r);
            while ((fn & 1u) == 0u && fn != 0u) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            tp_hal_seg node[3] = {{&one, 1}, {r, 32}, {p, 32}};
            tp_hal_sha256(node, 3, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0u && memcmp(r, root, 32) == 0 ? 0 : -1;
}

static void cm_begin(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                     tp_result *res)
{
    tp_arg spec[3] = {{"proof", TP_ARG_ANY, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"manifest", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"enc-oem-share", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_session *s = &chip->s;
    tp_image im;
    uint8_t oem_share[32];
    size_t share_len = 0;
    uint64_t index = 0, size = 0, npath = 0, n;
    tp_cbor_in path = {NULL, 0, 0};

    if (tp_args_names(args, nargs, spec, 3) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of cm.begin");
        return;
    }
    if (chip->session != TP_SESSION_NONE) {
        refuse(res, TP_E_BAD_SEQUENCE, "a session is open");
        return;
    }
    if (tp_args_parse(args, nargs, spec, 3) != 0 || spec[2].len > 1024u ||
        spec[1].len > 32768u) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type or size");
        return;
    }
    if (spec[0].present) {
        path = spec[0].item;
        if (tp_cbor_array(&path, &n) != 0 || n != 3u || tp_cbor_uint(&path, &index) != 0 ||
            tp_cbor_uint(&path, &size) != 0 || tp_cbor_array(&path, &npath) != 0 ||
            npath > 64u) {
            refuse(res, TP_E_BAD_REQUEST, "proof: not [index, size, path of at most 64]");
            return;
        }
    }
    if (chip->nv.lifecycle == TP_LC_LOCKED) {
        refuse(res, TP_E_LIFECYCLE, "the chip is locked");
        return;
    }
    if (tp_ram_reserve(chip, TP_SESSION_RAM + (uint32_t)spec[1].len) != 0) {
        refuse(res, TP_E_RAM_BUDGET, "no RAM for the session and its manifest");
        return;
    }
    if (tp_rom_image(chip, &im) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    int opened = tp_sealed_open(spec[2].data, spec[2].len, "oem-share", im.family,
                                im.k_oem_share, oem_share, &share_len);
    if (opened == -2) {
        refuse(res, TP_E_WRONG_FAMILY, "ENC(OEM_SHARE) of another family");
        return;
    }
    if (opened != 0 || share_len != 32u) {
        tp_hal_zeroize(oem_share, sizeof(oem_share));
        refuse(res, TP_E_BAD_SHARE, "ENC(OEM_SHARE) is not a sealed OEM share of this family");
        return;
    }
    int keyed = tp_domain_keys_of(oem_share, im.hw_share, im.rom_share, im.family, &s->keys);
    tp_hal_zeroize(oem_share, sizeof(oem_share));
    if (keyed != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    /* the manifest stays in the RAM arena for the session */
    memcpy(tp_ram_arena, spec[1].data, spec[1].len);
    switch (tp_manifest_open(tp_ram_arena, spec[1].len, s->keys.auth, im.family, &s->manifest)) {
    case TP_MANIFEST_OK:
        break;
    case TP_MANIFEST_VERSION:
        refuse(res, TP_E_BUNDLE_VERSION, "bundle of another manifest version: reseal it");
        return;
    case TP_MANIFEST_FAMILY:
        refuse(res, TP_E_WRONG_FAMILY, "manifest of another family");
        return;
    default:
        refuse(res, TP_E_BAD_MANIFEST, "manifest refused: not a genuine manifest of this domain");
        return;
    }
    const tp_manifest *m = &s->manifest;
    if (m->min_svn > chip->svn) {
        refuse(res, TP_E_SOFTWARE_TOO_OLD, "bundle needs a newer software security version");
        return;
    }
    const uint8_t *held;
    uint32_t held_epoch;
    if (tp_installed_domain(chip, &held, &held_epoch) == 0) {
        if (memcmp(held, s->keys.domain_id, 16) != 0) {
            refuse(res, TP_E_DOMAIN_MISMATCH, "the chip holds assets of another OEM domain");
            return;
        }
        if (held_epoch >= m->epoch) {
            refuse(res, TP_E_STALE_EPOCH, "the chip holds this domain at an epoch as high");
            return;
        }
    }
    if (m->authorized &&
        (!spec[0].present || size != m->count ||
         tp_proof_verify(path, npath, index, size, chip->nv.uid, m->root) != 0)) {
        refuse(res, TP_E_UNAUTHORIZED, "the bundle's authorized set does not prove this chip");
        return;
    }
    /* 8.4: 2c + 32, and the inflater's 8,224 when an asset is deflated */
    if (tp_ram_reserve(chip, 2u * m->chunk_size + 32u + (m->deflated ? TP_DEFLATE_RAM : 0u)) != 0 ||
        spec[1].len + (size_t)m->chunk_size > sizeof(tp_ram_arena)) {
        refuse(res, TP_E_RAM_BUDGET, "working set above the chip's RAM");
        return;
    }
    if (m->deflated && TP_DEFLATE_ARENA(spec[1].len, (size_t)m->chunk_size) > sizeof(tp_ram_arena)) {
        refuse(res, TP_E_RAM_BUDGET, "deflated chunks of this size above this chip's RAM arena");
        return;
    }
    tp_asset a;
    if (tp_manifest_asset(m, 0, &a) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    if (tp_nvm_stage_begin(&chip->nv) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    memcpy(s->chain, a.digest, 32);
    s->asset = 0;
    s->chunk = 0;
    s->nkeys = 0;
    s->region_bytes = 0;
    s->over_capacity = 0;
    chip->session = TP_SESSION_PROVISIONING;
    tp_cbor_put_map(ok, 1);
    tp_cbor_put_tstr(ok, "assets");
    tp_cbor_put_uint(ok, m->nassets);
}

/* stages a chunk's plaintext: a key as its record [slot, length, value], a region's bytes at
 * the region's place in the installed encoding's order */
static void stage(tp_chip *chip, const tp_asset *a, const uint8_t *plain, size_t len)
{
    tp_session *s = &chip->s;
    if (a->kind == TP_KIND_KEY) {
        uint8_t record[TP_KEY_RECORD];
        memset(record, 0, sizeof(record));
        record[0] = a->slot;
        record[1] = (uint8_t)len;
        memcpy(record + 2, plain, len);
        if (tp_nvm_stage(&chip->nv, TP_AREA_KEYS, (size_t)s->nkeys * TP_KEY_RECORD, record,
                         sizeof(record)) != 0) {
            s->over_capacity = 1;
        }
        tp_hal_zeroize(record, sizeof(record));
        s->nkeys++;
        return;
    }
    if (s->chunk == 0u) {
        /* the region's offset: the lengths of the regions listed before it */
        uint64_t off = 0;
        tp_asset b;
        for (uint32_t i = 0; i < s->manifest.nassets; i++) {
            if (tp_manifest_asset(&s->manifest, i, &b) == 0 && b.kind != TP_KIND_KEY &&
                tp_region_before(&b, a)) {
                off += b.length;
            }
        }
        s->region_bytes += a->length;
        if (off + a->length > TP_MAX_REGION_BYTES) {
            s->over_capacity = 1;
        }
        s->stage_off = (uint32_t)(off > TP_MAX_REGION_BYTES ? 0u : off);
    }
    if (!s->over_capacity &&
        tp_nvm_stage(&chip->nv, TP_AREA_REGIONS,
                     s->stage_off + (size_t)s->chunk * s->manifest.chunk_size, plain, len) != 0) {
        s->over_capacity = 1;
    }
}

static void cm_finish(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                      tp_result *res)
{
    tp_session *s = &chip->s;
    const tp_manifest *m = &s->manifest;
    uint8_t digest[32];

    if (tp_args_names(args, nargs, NULL, 0) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "cm.finish takes no arguments");
        return;
    }
    if (chip->session != TP_SESSION_PROVISIONING) {
        refuse(res, TP_E_BAD_SEQUENCE, "no provisioning session is open");
        return;
    }
    if (s->asset < m->nassets) {
        refuse(res, TP_E_INCOMPLETE, "bundle incomplete: chunks are missing");
        return;
    }
    /* the installed encoding, in the arena after the manifest (its payload, then the tag) */
    uint8_t *enc = tp_ram_arena + (size_t)(m->payload - tp_ram_arena) + m->payload_len + 32u;
    size_t cap = sizeof(tp_ram_arena) - (size_t)(enc - tp_ram_arena);
    size_t enc_len = tp_installed_encode(m, s->keys.domain_id, enc,
                                         cap < TP_MAX_INSTALLED ? cap : TP_MAX_INSTALLED);
    if (enc_len == 0u || s->over_capacity) {
        refuse(res, TP_E_CAPACITY, "the installed state exceeds the chip's capacity");
        return;
    }
    /* device keys (6.8): 40 bytes of TRNG each, in manifest order, into their slots */
    for (uint32_t i = 0; i < m->ndevice_keys; i++) {
        tp_device_key k;
        uint8_t material[40];
        uint8_t record[TP_KEY_RECORD];
        uint8_t spki[91];
        memset(record, 0, sizeof(record));
        int rc = tp_manifest_device_key(m, i, &k);
        if (rc == 0) {
            rc = tp_hal_trng(material, sizeof(material));
        }
        if (rc == 0) {
            rc = tp_hal_p256_from_material(material, record + 2, spki);
            record[0] = k.slot;
            record[1] = 32;
        }
        if (rc == 0) {
            rc = tp_nvm_stage(&chip->nv, TP_AREA_KEYS, (size_t)s->nkeys * TP_KEY_RECORD, record,
                              sizeof(record));
        }
        tp_hal_zeroize(material, sizeof(material));
        tp_hal_zeroize(record, sizeof(record));
        if (rc != 0) {
            refuse(res, TP_E_INTERNAL, NULL);
            return;
        }
        s->nkeys++;
    }
    tp_hal_seg seg = {enc, enc_len};
    tp_hal_sha256(&seg, 1, digest);
    tp_persist next = chip->nv;
    if (next.lifecycle < TP_LC_PROVISIONED) {
        next.lifecycle = TP_LC_PROVISIONED;
    }
    next.prov_counter++;
    next.area_len[TP_AREA_INSTALLED] = (uint32_t)enc_len;
    next.area_len[TP_AREA_KEYS] = s->nkeys * TP_KEY_RECORD;
    next.area_len[TP_AREA_REGIONS] = (uint32_t)s->region_bytes;
    tp_blob blobs[3] = {{TP_AREA_INSTALLED, enc, enc_len},
                        {TP_AREA_KEYS, NULL, (size_t)s->nkeys * TP_KEY_RECORD},
                        {TP_AREA_REGIONS, NULL, (size_t)s->region_bytes}};
    int rc = tp_nvm_commit_staged(&chip->nv, &next, blobs, 3);
    tp_hal_zeroize(&next, sizeof(next));
    if (rc != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    /* {"epoch", "assets", "receipt", "bundle-id", "domain-id"}: canonical order */
    tp_cbor_put_map(ok, 5);
    tp_cbor_put_tstr(ok, "epoch");
    tp_cbor_put_uint(ok, m->epoch);
    tp_cbor_put_tstr(ok, "assets");
    tp_cbor_put_uint(ok, m->nassets);
    tp_cbor_put_tstr(ok, "receipt");
    if (tp_receipt(chip, m, digest, s->keys.domain_id, enc + enc_len, cap - enc_len, ok) != 0) {
        ok->overflow = 1; /* answered `internal`: the install is committed, its receipt is not */
    }
    tp_cbor_put_tstr(ok, "bundle-id");
    tp_cbor_put_bstr(ok, m->bundle_id, 16);
    tp_cbor_put_tstr(ok, "domain-id");
    tp_cbor_put_bstr(ok, s->keys.domain_id, 16);
    tp_software_stop(chip, 0); /* the session ends; the software runs on */
}

/* 6.6: the opened raw DEFLATE stream (packed, directly below plain) into exactly want bytes
 * of plain; the stream and the inflater's state are zeroized, plain too when it fails */
static int inflate_chunk(unsigned wbits, uint8_t *packed, size_t packed_len, uint8_t *plain,
                         size_t want)
{
    size_t at = ((size_t)(packed - tp_ram_arena) - TP_HAL_INFLATE_WORK) & ~(size_t)7u;
    uint8_t *work = tp_ram_arena + at;
    int rc = tp_hal_inflate(wbits, packed, packed_len, plain, want, work, TP_HAL_INFLATE_WORK);
    tp_hal_zeroize(work, TP_HAL_INFLATE_WORK);
    tp_hal_zeroize(packed, packed_len);
    if (rc != 0) {
        tp_hal_zeroize(plain, want);
    }
    return rc;
}

static void cm_chunk(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                     tp_result *res)
{
    tp_arg spec[4] = {{"data", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"next", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"asset", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"index", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_session *s = &chip->s;
    const tp_manifest *m = &s->manifest;
    static const uint8_t ZERO[32] = {0};
    static const char TAGC[] = "tp-tagc";
    uint8_t link[32];
    tp_asset a;

    if (tp_args_names(args, nargs, spec, 4) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of cm.chunk");
        return;
    }
    if (chip->session != TP_SESSION_PROVISIONING) {
        refuse(res, TP_E_BAD_SEQUENCE, "no provisioning session is open");
        return;
    }
    if (tp_args_parse(args, nargs, spec, 4) != 0 || spec[0].len > 65552u || spec[1].len != 32u ||
        spec[2].uint > 65536u || spec[3].uint > 4294967296u) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type or size");
        return;
    }
    if (s->asset >= m->nassets || spec[2].uint != s->asset || spec[3].uint != s->chunk) {
        refuse(res, TP_E_BAD_SEQUENCE, "chunks must come in manifest order");
        return;
    }
    if (tp_manifest_asset(m, s->asset, &a) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    int last = s->chunk + 1u == a.chunks;
    size_t want = last ? (size_t)(a.length - (uint64_t)(a.chunks - 1u) * m->chunk_size)
                       : m->chunk_size;
    const uint8_t *data = spec[0].data;
    size_t len = spec[0].len;
    /* 6.6: a deflated chunk's sealed plaintext is 1 .. want + 16 bytes, checked before it is
     * opened into its buffer of that size */
    if (a.deflate != 0u ? (len < 17u || len > want + 32u) : len != want + 16u) {
        refuse(res, TP_E_BAD_CHUNK, "chunk of the wrong length");
        return;
    }
    tp_hal_seg chain[3] = {{(const uint8_t *)TAGC, 7}, {data + len - 16u, 16}, {spec[1].data, 32}};
    tp_hal_sha256(chain, 3, link);
    if (tp_hal_ct_memcmp(link, s->chain, 32) != 0 ||
        (last && memcmp(spec[1].data, ZERO, 32) != 0)) {
        refuse(res, TP_E_BAD_CHUNK, "chunk does not match its chain value");
        return;
    }
    uint8_t nonce[13];
    size_t prefix = m->aead == TP_AEAD_A256GCM ? 7u : 8u;
    memcpy(nonce, a.nonce, prefix);
    nonce[prefix] = (uint8_t)(s->chunk >> 24);
    nonce[prefix + 1u] = (uint8_t)(s->chunk >> 16);
    nonce[prefix + 2u] = (uint8_t)(s->chunk >> 8);
    nonce[prefix + 3u] = (uint8_t)s->chunk;
    nonce[prefix + 4u] = (uint8_t)last;
    uint8_t aad[40];
    tp_cbor_out o;
    tp_cbor_out_init(&o, aad, sizeof(aad));
    tp_cbor_put_array(&o, 3);
    tp_cbor_put_tstr(&o, "tp-chunk");
    tp_cbor_put_bstr(&o, m->bundle_id, 16);
    tp_cbor_put_uint(&o, s->asset);
    /* the arena's end: the chunk's plaintext (c); for a deflated asset below it the sealed
     * plaintext (c + 16) and below that the inflater's work area (TP_DEFLATE_ARENA) */
    uint8_t *plain = tp_ram_arena + (sizeof(tp_ram_arena) - m->chunk_size);
    uint8_t *opened = a.deflate != 0u ? plain - (m->chunk_size + 16u) : plain;
    const uint8_t *key = a.kind == TP_KIND_KEY ? s->keys.enck : s->keys.encd;
    if (o.overflow || tp_hal_aead_open((tp_aead)m->aead, key, nonce, prefix + 5u, aad, o.len,
                                       data, len, opened) != 0) {
        refuse(res, TP_E_BAD_CHUNK, "chunk does not open");
        return;
    }
    if (a.deflate != 0u && inflate_chunk(a.deflate, opened, len - 16u, plain, want) != 0) {
        refuse(res, TP_E_BAD_CHUNK, "deflated chunk does not inflate to its length");
        return;
    }
    int bad_key = a.kind == TP_KIND_KEY &&
                  (a.key_type == TP_KEY_EC_P256 || a.key_type == TP_KEY_EC_P384) &&
                  tp_hal_ec_scalar_ok(plain, want) != 0;
    if (!bad_key) {
        stage(chip, &a, plain, want);
    }
    tp_hal_zeroize(plain, want);
    if (bad_key) {
        refuse(res, TP_E_BAD_ASSET, "EC key asset out of range");
        return;
    }
    memcpy(s->chain, spec[1].data, 32);
    s->chunk++;
    if (last) {
        s->asset++;
        s->chunk = 0;
        if (s->asset < m->nassets) {
            if (tp_manifest_asset(m, s->asset, &a) != 0) {
                refuse(res, TP_E_INTERNAL, NULL);
                return;
            }
            memcpy(s->chain, a.digest, 32);
        }
    }
    tp_cbor_put_map(ok, 0);
}

static int is_op(const uint8_t *op, size_t op_len, const char *name)
{
    return strlen(name) == op_len && memcmp(name, op, op_len) == 0;
}

int tp_install_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                        uint64_t nargs, tp_cbor_out *ok, tp_result *res)
{
    if (is_op(op, op_len, "cm.begin")) {
        cm_begin(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "cm.chunk")) {
        cm_chunk(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "cm.finish")) {
        cm_finish(chip, args, nargs, ok, res);
    } else {
        return 0;
    }
    return 1;
}
