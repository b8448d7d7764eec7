/*
 * The manifest of protocol.md 6.1. Invariants in include/tp/manifest.h.
 */
#include "tp/manifest.h"

#include <string.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/cose.h"
#include "tp_hal_crypto.h"

#define MANIFEST_MAX 32768u
#define MANIFEST_ITEMS 4096u
#define MANIFEST_DEPTH 6u
static const char CONTENT_TYPE[] = "application/vnd.trustprov.manifest+cbor";

static int text_in(const uint8_t *s, size_t n, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static const char *const KINDS[] = {"key", "certificate", "firmware", "config"};
static const char *const KEY_TYPES[] = {"aes-256", "ec-p256", "ec-p384", "ed25519", "raw"};

/* one asset map at in; advances in past it */
static int parse_asset(tp_cbor_in *in, const tp_manifest *m, tp_asset *a)
{
    uint64_t n;
    tp_arg spec[10] = {
        {"name", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"kind", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"slot", TP_ARG_UINT, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"nonce", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"chunks", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"digest", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"length", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"region", TP_ARG_TSTR, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"key-type", TP_ARG_TSTR, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"deflate", TP_ARG_UINT, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
    };
    tp_cbor_in start = *in;
    memset(a, 0, sizeof(*a));
    if (tp_cbor_map(&start, &n) != 0 || tp_args_parse(&start, n, spec, 10) != 0 ||
        tp_cbor_skip(in) != 0) {
        return -1;
    }
    int kind = text_in(spec[1].data, spec[1].len, KINDS, 4);
    uint64_t length = spec[6].uint;
    uint64_t chunks = length == 0u ? 1u : (length + m->chunk_size - 1u) / m->chunk_size;
    if (!tp_name_ok(spec[0].data, spec[0].len) || kind < 0 ||
        spec[3].len != (m->aead == TP_AEAD_A256GCM ? 7u : 8u) || spec[5].len != 32u ||
        length < 1u || length > ((uint64_t)1 << 40) || spec[4].uint != chunks) {
        return -1;
    }
    a->name = spec[0].data;
    a->name_len = spec[0].len;
    a->kind = (uint8_t)kind;
    a->nonce = spec[3].data;
    a->digest = spec[5].data;
    a->length = length;
    a->chunks = (uint32_t)chunks;
    /* 6.1: "deflate": W (9..15) on a firmware or config asset only, chunks of at most 65,520
     * bytes; keys are never compressed */
    if (spec[9].present) {
        if ((kind != TP_KIND_FIRMWARE && kind != TP_KIND_CONFIG) ||
            spec[9].uint < TP_DEFLATE_MIN_W || spec[9].uint > TP_DEFLATE_MAX_W ||
            m->chunk_size > TP_DEFLATE_MAX_CHUNK) {
            return -1;
        }
        a->deflate = (uint8_t)spec[9].uint;
    }
    if (kind == TP_KIND_KEY) {
        int type = spec[8].present ? text_in(spec[8].data, spec[8].len, KEY_TYPES, 5) : -1;
        static const uint64_t LENGTH[4] = {32, 32, 48, 32};
        if (type < 0 || !spec[2].present || spec[2].uint > 255u || spec[7].present ||
            chunks != 1u) {
            return -1;
        }
        if (type == TP_KEY_RAW ? (length != 16u && length != 24u && length != 32u &&
                                  length != 48u && length != 64u)
                               : length != LENGTH[type]) {
            return -1;
        }
        a->key_type = (uint8_t)type;
        a->slot = (uint8_t)spec[2].uint;
    } else {
        if (!spec[7].present || spec[2].present || spec[8].present ||
            !tp_name_ok(spec[7].data, spec[7].len)) {
            return -1;
        }
        a->region = spec[7].data;
        a->region_len = spec[7].len;
    }
    return 0;
}

static int same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

int tp_manifest_device_key(const tp_manifest *m, uint32_t index, tp_device_key *k)
{
    tp_cbor_in in = m->device_keys;
    uint64_t n;
    tp_arg spec[3] = {{"name", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"slot", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"key-type", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    if (index >= m->ndevice_keys) {
        return -1;
    }
    for (uint32_t i = 0; i < index; i++) {
        if (tp_cbor_skip(&in) != 0) {
            return -1;
        }
    }
    if (tp_cbor_map(&in, &n) != 0 || tp_args_parse(&in, n, spec, 3) != 0 ||
        !tp_name_ok(spec[0].data, spec[0].len) || spec[1].uint > 255u ||
        !same(spec[2].data, spec[2].len, (const uint8_t *)"ec-p256", 7)) {
        return -1;
    }
    k->name = spec[0].data;
    k->name_len = spec[0].len;
    k->slot = (uint8_t)spec[1].uint;
    return 0;
}

/* names, slots and regions unique across assets and device keys; notes any deflated asset */
static int unique(tp_manifest *m)
{
    tp_asset a, b;
    for (uint32_t i = 0; i < m->nassets; i++) {
        if (tp_manifest_asset(m, i, &a) != 0) {
            return -1;
        }
        if (a.deflate != 0u) {
            m->deflated = 1;
        }
        for (uint32_t j = i + 1u; j < m->nassets; j++) {
            if (tp_manifest_asset(m, j, &b) != 0 || same(a.name, a.name_len, b.name, b.name_len) ||
                (a.kind == TP_KIND_KEY && b.kind == TP_KIND_KEY && a.slot == b.slot) ||
                (a.kind != TP_KIND_KEY && b.kind != TP_KIND_KEY &&
                 same(a.region, a.region_len, b.region, b.region_len))) {
                return -1;
            }
        }
    }
    tp_device_key k, l;
    for (uint32_t i = 0; i < m->ndevice_keys; i++) {
        if (tp_manifest_device_key(m, i, &k) != 0) {
            return -1;
        }
        for (uint32_t j = 0; j < m->nassets; j++) {
            if (tp_manifest_asset(m, j, &a) != 0 || same(a.name, a.name_len, k.name, k.name_len) ||
                (a.kind == TP_KIND_KEY && a.slot == k.slot)) {
                return -1;
            }
        }
        for (uint32_t j = i + 1u; j < m->ndevice_keys; j++) {
            if (tp_manifest_device_key(m, j, &l) != 0 ||
                same(l.name, l.name_len, k.name, k.name_len) || l.slot == k.slot) {
                return -1;
            }
        }
    }
    return 0;
}

static int parse_payload(tp_manifest *m)
{
    tp_cbor_in in;
    uint64_t n;
    tp_arg spec[10] = {
        {"v", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"aead", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"epoch", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"assets", TP_ARG_ANY, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"family", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"min-svn", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"bundle-id", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"authorized", TP_ARG_ANY, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"chunk-size", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"device-keys", TP_ARG_ANY, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
    };
    tp_cbor_in_init(&in, m->payload, m->payload_len);
    if (tp_cbor_map(&in, &n) != 0 || tp_args_parse(&in, n, spec, 10) != 0) {
        return -1;
    }
    if ((spec[1].uint != TP_AEAD_A256GCM && spec[1].uint != TP_AEAD_CCM_16_128_256) ||
        spec[2].uint > 0xffffffffu || spec[4].len != 8u || spec[5].uint > 0xffffffffu ||
        spec[6].len != 16u || spec[8].uint < 256u ||
        spec[8].uint > (spec[1].uint == TP_AEAD_A256GCM ? 65536u : 65535u)) {
        return -1;
    }
    m->aead = (uint8_t)spec[1].uint;
    m->epoch = (uint32_t)spec[2].uint;
    m->family = spec[4].data;
    m->min_svn = (uint32_t)spec[5].uint;
    m->bundle_id = spec[6].data;
    m->chunk_size = (uint32_t)spec[8].uint;
    tp_cbor_in auth = spec[7].item;
    if (tp_cbor_null(&auth) != 0) {
        size_t root_len;
        uint64_t count;
        if (tp_cbor_array(&auth, &n) != 0 || n != 2u ||
            tp_cbor_bstr(&auth, &m->root, &root_len) != 0 || root_len != 32u ||
            tp_cbor_uint(&auth, &count) != 0 || count < 1u || count > 16777216u) {
            return -1;
        }
        m->authorized = 1;
        m->count = (uint32_t)count;
    }
    m->assets = spec[3].item;
    if (tp_cbor_array(&m->assets, &n) != 0 || n < 1u || n > TP_MAX_ASSETS) {
        return -1;
    }
    m->nassets = (uint32_t)n;
    if (spec[9].present) {
        m->device_keys = spec[9].item;
        if (tp_cbor_array(&m->device_keys, &n) != 0 || n < 1u || n + m->nassets > TP_MAX_ASSETS) {
            return -1;
        }
        m->ndevice_keys = (uint32_t)n;
    }
    return unique(m);
}

int tp_manifest_asset(const tp_manifest *m, uint32_t index, tp_asset *a)
{
    tp_cbor_in in = m->assets;
    if (index >= m->nassets) {
        return -1;
    }
    for (uint32_t i = 0; i < index; i++) {
        if (tp_cbor_skip(&in) != 0) {
            return -1;
        }
    }
    return parse_asset(&in, m, a);
}

int tp_manifest_open(const uint8_t *mac0, size_t len, const uint8_t k_auth[32],
                     const uint8_t family[8], tp_manifest *m)
{
    tp_cbor_in in, h;
    uint64_t tag, n, label;
    int64_t alg;
    const uint8_t *prot, *prot_item, *payload_item, *mac, *fam, *ct;
    size_t prot_len, prot_item_len, payload_item_len, mac_len, fam_len, ct_len;
    uint8_t want[16];

    memset(m, 0, sizeof(*m));
    if (len > MANIFEST_MAX ||
        tp_cbor_check(mac0, len, MANIFEST_ITEMS, MANIFEST_DEPTH, 17) != 0) {
        return TP_MANIFEST_BAD;
    }
    tp_cbor_in_init(&in, mac0, len);
    if (tp_cbor_tag(&in, &tag) != 0 || tag != 17u || tp_cbor_array(&in, &n) != 0 || n != 4u) {
        return TP_MANIFEST_BAD;
    }
    prot_item = mac0 + in.pos;
    if (tp_cbor_bstr(&in, &prot, &prot_len) != 0 || tp_cbor_map(&in, &n) != 0 || n != 0u) {
        return TP_MANIFEST_BAD;
    }
    prot_item_len = (size_t)(prot + prot_len - prot_item);
    payload_item = mac0 + in.pos;
    if (tp_cbor_bstr(&in, &m->payload, &m->payload_len) != 0 ||
        tp_cbor_bstr(&in, &mac, &mac_len) != 0 || mac_len != 16u) {
        return TP_MANIFEST_BAD;
    }
    payload_item_len = (size_t)(m->payload + m->payload_len - payload_item);
    /* the protected header: {1: -65537, 3: content type, "tp-family": FAMILY_ID} */
    if (tp_cbor_check(prot, prot_len, 32, 2, TP_CBOR_NO_TAG) != 0) {
        return TP_MANIFEST_BAD;
    }
    tp_cbor_in_init(&h, prot, prot_len);
    if (tp_cbor_map(&h, &n) != 0 || n != 3u || tp_cbor_uint(&h, &label) != 0 || label != 1u ||
        tp_cbor_int(&h, &alg) != 0 || alg != -65537 || tp_cbor_uint(&h, &label) != 0 ||
        label != 3u || tp_cbor_tstr(&h, &ct, &ct_len) != 0 ||
        ct_len != sizeof(CONTENT_TYPE) - 1u || memcmp(ct, CONTENT_TYPE, ct_len) != 0 ||
        tp_cbor_tstr_is(&h, "tp-family") != 1 || tp_cbor_bstr(&h, &fam, &fam_len) != 0 ||
        fam_len != 8u) {
        return TP_MANIFEST_BAD;
    }
    /* MAC_structure = ["MAC0", protected, h'', payload] */
    static const uint8_t prefix[6] = {0x84, 0x64, 'M', 'A', 'C', '0'};
    static const uint8_t empty = 0x40;
    tp_hal_seg segs[4] = {{prefix, sizeof(prefix)},
                          {prot_item, prot_item_len},
                          {&empty, 1},
                          {payload_item, payload_item_len}};
    if (tp_hal_cmac(k_auth, segs, 4, want) != 0 || tp_hal_ct_memcmp(want, mac, 16) != 0) {
        return TP_MANIFEST_BAD;
    }
    /* "v" first: the shortest key, so the first of a canonical map */
    tp_cbor_in v;
    uint64_t version;
    if (tp_cbor_check(m->payload, m->payload_len, MANIFEST_ITEMS, MANIFEST_DEPTH,
                      TP_CBOR_NO_TAG) != 0) {
        return TP_MANIFEST_BAD;
    }
    tp_cbor_in_init(&v, m->payload, m->payload_len);
    if (tp_cbor_map(&v, &n) != 0 || n < 1u || tp_cbor_tstr_is(&v, "v") != 1 ||
        tp_cbor_uint(&v, &version) != 0) {
        return TP_MANIFEST_BAD;
    }
    if (version != 2u) {
        return TP_MANIFEST_VERSION;
    }
    if (parse_payload(m) != 0) {
        return TP_MANIFEST_BAD;
    }
    if (memcmp(fam, family, 8) != 0 || memcmp(m->family, family, 8) != 0) {
        return TP_MANIFEST_FAMILY;
    }
    return TP_MANIFEST_OK;
}
