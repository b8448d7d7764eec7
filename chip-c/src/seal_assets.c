/*
 * Sealing the OEM's assets (protocol.md 6.1, 6.2, 6.3, 6.5, 8.1): seal.asset, seal.chunk (last
 * to first, building the tag chain), seal.generate (keys from the seed, section 3) and
 * seal.finish (the manifest, MACed with K_AUTH).
 *
 * Invariants:
 * - Checks run in the order of protocol.md 8.3; a nonce prefix is drawn from the TRNG once the
 *   name is known to be new, before the rest of the entry is checked (8.5).
 * - The chip draws every nonce prefix and the bundle id; the host chooses none.
 * - A generated key's value leaves the chip only sealed under K_ENCK; its public key as PEM.
 * - Entries live in the RAM arena for the session; answers larger than the link's response
 *   buffer (a chunk above some 6 KiB, a large manifest) are refused `ram-budget`.
 */
#include <string.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/cose.h"
#include "tp/keys.h"
#include "tp/ram.h"
#include "tp_hal_crypto.h"
#include "tp_hal_trng.h"

#include "seal_entries.h"


const char *const TP_SEAL_KINDS[5] = {"key", "certificate", "firmware", "config", "device-key"};
const char *const TP_SEAL_KEY_TYPES[5] = {"aes-256", "ec-p256", "ec-p384", "ed25519", "raw"};
#define KINDS TP_SEAL_KINDS
#define KEY_TYPES TP_SEAL_KEY_TYPES
static const uint8_t KEY_LENGTH[4] = {32, 32, 48, 32};

void tp_seal_refuse(tp_result *res, tp_code code, const char *message)
{
    res->code = code;
    res->message = message;
}
#define refuse tp_seal_refuse

static int pick(const uint8_t *s, size_t n, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int name_taken(const tp_session *s, const uint8_t *name, size_t len)
{
    for (uint32_t i = 0; i < s->sealed; i++) {
        if (ENTRIES[i].name_len == len && memcmp(ENTRIES[i].name, name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static int slot_taken(const tp_session *s, uint64_t slot)
{
    for (uint32_t i = 0; i < s->sealed; i++) {
        if ((ENTRIES[i].kind == TP_KIND_KEY || ENTRIES[i].kind == KIND_DEVICE_KEY) &&
            ENTRIES[i].slot == slot) {
            return 1;
        }
    }
    return 0;
}

static int region_taken(const tp_session *s, const uint8_t *region, size_t len)
{
    for (uint32_t i = 0; i < s->sealed; i++) {
        if (ENTRIES[i].kind != TP_KIND_KEY && ENTRIES[i].kind != KIND_DEVICE_KEY &&
            ENTRIES[i].region_len == len && memcmp(ENTRIES[i].region, region, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* the asset index of entry e in the manifest: device keys are listed apart */
static uint32_t asset_index(const tp_session *s, uint32_t e)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < e && i < s->sealed; i++) {
        n += ENTRIES[i].kind != KIND_DEVICE_KEY;
    }
    return n;
}

/* seals chunk index of entry e into out as the answer's "chunk" bstr; advances the chain */
static int seal_chunk_into(tp_chip *chip, uint32_t e, uint32_t index, const uint8_t *data,
                           size_t len, tp_cbor_out *out)
{
    tp_session *s = &chip->s;
    entry *en = &ENTRIES[e];
    int last = index + 1u == en->chunks;
    size_t prefix = s->params.aead == TP_AEAD_A256GCM ? 7u : 8u;
    uint8_t nonce[13];
    uint8_t aad[40];
    tp_cbor_out o;

    memcpy(nonce, en->nonce, prefix);
    nonce[prefix] = (uint8_t)(index >> 24);
    nonce[prefix + 1u] = (uint8_t)(index >> 16);
    nonce[prefix + 2u] = (uint8_t)(index >> 8);
    nonce[prefix + 3u] = (uint8_t)index;
    nonce[prefix + 4u] = (uint8_t)last;
    tp_cbor_out_init(&o, aad, sizeof(aad));
    tp_cbor_put_array(&o, 3);
    tp_cbor_put_tstr(&o, "tp-chunk");
    tp_cbor_put_bstr(&o, s->bundle_id, 16);
    tp_cbor_put_uint(&o, asset_index(s, e));
    tp_cbor_put_head(out, TP_CBOR_BSTR, len + 16u);
    if (o.overflow || out->overflow || len + 16u > out->cap - out->len) {
        return -1;
    }
    uint8_t *sealed = out->buf + out->len;
    const uint8_t *key = en->kind == TP_KIND_KEY ? s->keys.enck : s->keys.encd;
    if (tp_hal_aead_seal((tp_aead)s->params.aead, key, nonce, prefix + 5u, aad, o.len, data, len,
                         sealed) != 0) {
        return -1;
    }
    static const char TAGC[] = "tp-tagc";
    tp_hal_seg chain[3] = {{(const uint8_t *)TAGC, 7}, {sealed + len, 16}, {s->chain, 32}};
    tp_hal_sha256(chain, 3, s->chain);
    out->len += len + 16u;
    if (index == 0u) {
        memcpy(en->digest, s->chain, 32);
        s->asset_open = 0;
    }
    return 0;
}

/* a new entry of this name: its nonce prefix drawn (none for a device key, which seals
 * nothing: 8.5's draws); -1 (refused) if taken or no room */
static entry *new_entry(tp_chip *chip, const uint8_t *name, size_t name_len, int draw,
                        tp_result *res)
{
    tp_session *s = &chip->s;
    if (!tp_name_ok(name, name_len) || name_taken(s, name, name_len)) {
        refuse(res, TP_E_BAD_REQUEST, "a name already sealed, or not a name");
        return NULL;
    }
    entry *en = &ENTRIES[s->sealed < TP_MAX_ASSETS ? s->sealed : 0u];
    uint8_t nonce[8] = {0};
    if (draw && tp_hal_trng(nonce, s->params.aead == TP_AEAD_A256GCM ? 7u : 8u) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return NULL;
    }
    if (s->sealed >= TP_MAX_ASSETS) {
        refuse(res, TP_E_BAD_REQUEST, "more than 64 assets");
        return NULL;
    }
    memset(en, 0, sizeof(*en));
    memcpy(en->name, name, name_len);
    en->name_len = (uint8_t)name_len;
    memcpy(en->nonce, nonce, sizeof(nonce));
    return en;
}

int tp_seal_session_ok(tp_chip *chip, tp_result *res)
{
    if (chip->session != TP_SESSION_SEALING) {
        refuse(res, TP_E_BAD_SEQUENCE, "no sealing session is open");
        return 0;
    }
    return 1;
}

static void seal_asset(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                       tp_result *res)
{
    tp_arg spec[7] = {{"name", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"kind", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"slot", TP_ARG_UINT, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"length", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"region", TP_ARG_TSTR, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"key-type", TP_ARG_TSTR, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"deflate", TP_ARG_UINT, 1, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_session *s = &chip->s;
    if (tp_args_names(args, nargs, spec, 7) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of seal.asset");
        return;
    }
    if (!tp_seal_session_ok(chip, res)) {
        return;
    }
    if (tp_args_parse(args, nargs, spec, 7) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type");
        return;
    }
    if (s->asset_open) {
        refuse(res, TP_E_BAD_SEQUENCE, "an asset is open: seal its chunks first");
        return;
    }
    int kind = pick(spec[1].data, spec[1].len, KINDS, 5);
    uint64_t length = spec[3].uint;
    /* 8.1: a device-key's length is required and ignored (hosts send 0) */
    if (kind < 0 ||
        (kind != (int)KIND_DEVICE_KEY && (length < 1u || length > ((uint64_t)1 << 40)))) {
        refuse(res, TP_E_BAD_REQUEST, "seal.asset: kind or length out of range");
        return;
    }
    entry *en = new_entry(chip, spec[0].data, spec[0].len, kind != (int)KIND_DEVICE_KEY, res);
    if (en == NULL) {
        return;
    }
    int type = spec[5].present ? pick(spec[5].data, spec[5].len, KEY_TYPES, 5) : -1;
    int bad;
    if (kind == TP_KIND_KEY) {
        bad = type < 0 || !spec[2].present || spec[2].uint > 255u || slot_taken(s, spec[2].uint) ||
              length > s->params.chunk_size ||
              (type == TP_KEY_RAW ? (length != 16u && length != 24u && length != 32u &&
                                     length != 48u && length != 64u)
                                  : length != KEY_LENGTH[type]);
    } else if (kind == (int)KIND_DEVICE_KEY) {
        bad = type != TP_KEY_EC_P256 || !spec[2].present || spec[2].uint > 255u ||
              slot_taken(s, spec[2].uint);
    } else {
        bad = !spec[4].present || !tp_name_ok(spec[4].data, spec[4].len) ||
              region_taken(s, spec[4].data, spec[4].len);
    }
    /* 6.1: "deflate": W (9..15) on a firmware or config asset only, chunks of at most 65,520 */
    if (spec[6].present && ((kind != TP_KIND_FIRMWARE && kind != TP_KIND_CONFIG) ||
                            spec[6].uint < TP_DEFLATE_MIN_W || spec[6].uint > TP_DEFLATE_MAX_W ||
                            s->params.chunk_size > TP_DEFLATE_MAX_CHUNK)) {
        bad = 1;
    }
    if (bad) {
        refuse(res, TP_E_BAD_REQUEST, "seal.asset: an entry the manifest cannot hold");
        return;
    }
    en->kind = (uint8_t)kind;
    if (kind == TP_KIND_KEY || kind == (int)KIND_DEVICE_KEY) {
        en->key_type = (uint8_t)type;
        en->slot = (uint8_t)spec[2].uint;
    } else {
        memcpy(en->region, spec[4].data, spec[4].len);
        en->region_len = (uint8_t)spec[4].len;
        en->deflate = spec[6].present ? (uint8_t)spec[6].uint : 0u;
    }
    en->length = kind == (int)KIND_DEVICE_KEY ? 32u : length;
    en->chunks = (uint32_t)((length + s->params.chunk_size - 1u) / s->params.chunk_size);
    s->sealed++;
    if (kind != (int)KIND_DEVICE_KEY) {
        s->asset_open = 1;
        s->seal_next = en->chunks - 1u;
        memset(s->chain, 0, sizeof(s->chain));
    }
    tp_cbor_put_map(ok, 0);
}

static void seal_chunk(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                       tp_result *res)
{
    tp_arg spec[2] = {{"data", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"index", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_session *s = &chip->s;
    if (tp_args_names(args, nargs, spec, 2) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of seal.chunk");
        return;
    }
    if (!tp_seal_session_ok(chip, res)) {
        return;
    }
    if (tp_args_parse(args, nargs, spec, 2) != 0 || spec[1].uint > 4294967296u ||
        spec[0].len > 65536u) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type or size");
        return;
    }
    if (!s->asset_open || spec[1].uint != s->seal_next) {
        refuse(res, TP_E_BAD_SEQUENCE, "chunks must come in order, last to first");
        return;
    }
    uint32_t e = s->sealed - 1u;
    entry *en = &ENTRIES[e];
    uint32_t index = (uint32_t)spec[1].uint;
    size_t want = index + 1u == en->chunks
                      ? (size_t)(en->length - (uint64_t)index * s->params.chunk_size)
                      : s->params.chunk_size;
    /* 6.5: a deflated asset's chunk is its raw DEFLATE stream, of 1 .. want + 16 bytes; the
     * sealing chip checks only that bound and seals it (it does not inflate) */
    size_t p = spec[0].len;
    if (en->deflate != 0u ? (p < 1u || p > want + 16u) : p != want) {
        refuse(res, TP_E_BAD_REQUEST, "seal.chunk of the wrong length");
        return;
    }
    uint32_t entry_ram = index == 0u ? TP_SEALED_ENTRY_RAM : 0u;
    if (tp_ram_reserve(chip, entry_ram + 2u * (uint32_t)p + 16u) != 0) {
        refuse(res, TP_E_RAM_BUDGET, "no RAM to seal this chunk");
        return;
    }
    chip->ram_reserved -= 2u * (uint32_t)p + 16u; /* released at the answer */
    tp_cbor_put_map(ok, 1);
    tp_cbor_put_tstr(ok, "chunk");
    if (seal_chunk_into(chip, e, index, spec[0].data, p, ok) != 0) {
        refuse(res, TP_E_RAM_BUDGET, "a sealed chunk above this chip's answer buffer");
        return;
    }
    s->seal_next = index - 1u;
}

/* SubjectPublicKeyInfo PEM (RFC 7468): the lines of BEGIN/END and base64 of 64 columns */
static void put_pem(tp_cbor_out *out, const uint8_t *der, size_t len)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char BEGIN[] = "-----BEGIN PUBLIC KEY-----\n";
    static const char END[] = "-----END PUBLIC KEY-----\n";
    size_t chars = 4u * ((len + 2u) / 3u);
    size_t total = (sizeof(BEGIN) - 1u) + chars + (chars + 63u) / 64u + (sizeof(END) - 1u);
    uint8_t line[65];
    size_t col = 0;
    tp_cbor_put_head(out, TP_CBOR_BSTR, total);
    tp_cbor_put_raw(out, (const uint8_t *)BEGIN, sizeof(BEGIN) - 1u);
    for (size_t i = 0; i < len; i += 3u) {
        uint32_t v = (uint32_t)der[i] << 16;
        v |= i + 1u < len ? (uint32_t)der[i + 1u] << 8 : 0u;
        v |= i + 2u < len ? der[i + 2u] : 0u;
        line[col++] = (uint8_t)B64[(v >> 18) & 63u];
        line[col++] = (uint8_t)B64[(v >> 12) & 63u];
        line[col++] = (uint8_t)(i + 1u < len ? B64[(v >> 6) & 63u] : '=');
        line[col++] = (uint8_t)(i + 2u < len ? B64[v & 63u] : '=');
        if (col == 64u || i + 3u >= len) {
            line[col++] = '\n';
            tp_cbor_put_raw(out, line, col);
            col = 0;
        }
    }
    tp_cbor_put_raw(out, (const uint8_t *)END, sizeof(END) - 1u);
}

static void seal_generate(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                          tp_result *res)
{
    tp_arg spec[3] = {{"name", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"slot", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"key-type", TP_ARG_TSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    static const size_t MATERIAL[4] = {32, 40, 56, 32};
    tp_session *s = &chip->s;
    uint8_t context[8 + 1 + TP_MAX_NAME];
    uint8_t material[56];
    uint8_t value[48];
    uint8_t spki[120];
    size_t spki_len = 0;

    if (tp_args_names(args, nargs, spec, 3) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of seal.generate");
        return;
    }
    if (!tp_seal_session_ok(chip, res)) {
        return;
    }
    if (tp_args_parse(args, nargs, spec, 3) != 0 || spec[1].uint > 255u) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type or range");
        return;
    }
    if (s->asset_open) {
        refuse(res, TP_E_BAD_SEQUENCE, "an asset is open: seal its chunks first");
        return;
    }
    int type = pick(spec[2].data, spec[2].len, KEY_TYPES, 4); /* raw cannot be generated */
    if (type < 0) {
        refuse(res, TP_E_BAD_REQUEST, "seal.generate: a key type it cannot generate");
        return;
    }
    entry *en = new_entry(chip, spec[0].data, spec[0].len, 1, res);
    if (en == NULL) {
        return;
    }
    if (slot_taken(s, spec[1].uint)) {
        refuse(res, TP_E_BAD_REQUEST, "seal.generate: a slot already sealed");
        return;
    }
    size_t len = KEY_LENGTH[type];
    if (tp_ram_reserve(chip, TP_SEALED_ENTRY_RAM + 2u * (uint32_t)len + 16u) != 0) {
        refuse(res, TP_E_RAM_BUDGET, "no RAM to seal this key");
        return;
    }
    chip->ram_reserved -= 2u * (uint32_t)len + 16u;
    /* material = KDF(seed, "H/asset", TYPE || 0x00 || NAME, L) */
    size_t tlen = strlen(KEY_TYPES[type]);
    memcpy(context, KEY_TYPES[type], tlen);
    context[tlen] = 0;
    memcpy(context + tlen + 1u, spec[0].data, spec[0].len);
    int rc = tp_kdf(s->seed, "H/asset", context, tlen + 1u + spec[0].len, material,
                    MATERIAL[type]);
    if (rc == 0 && type == TP_KEY_AES256) {
        memcpy(value, material, 32);
    } else if (rc == 0 && type == TP_KEY_EC_P256) {
        rc = tp_hal_p256_from_material(material, value, spki);
        spki_len = 91;
    } else if (rc == 0 && type == TP_KEY_EC_P384) {
        rc = tp_hal_p384_from_material(material, value, spki);
        spki_len = 120;
    } else if (rc == 0) {
        memcpy(value, material, 32);
        rc = tp_hal_ed25519_spki(value, spki);
        spki_len = 44;
    }
    if (rc == 0) {
        en->kind = TP_KIND_KEY;
        en->key_type = (uint8_t)type;
        en->slot = (uint8_t)spec[1].uint;
        en->length = len;
        en->chunks = 1;
        s->sealed++;
        s->asset_open = 1;
        memset(s->chain, 0, sizeof(s->chain));
        tp_cbor_put_map(ok, 2);
        tp_cbor_put_tstr(ok, "chunk");
        rc = seal_chunk_into(chip, s->sealed - 1u, 0, value, len, ok);
        tp_cbor_put_tstr(ok, "public-key");
        if (spki_len == 0u) {
            tp_cbor_put_null(ok);
        } else {
            put_pem(ok, spki, spki_len);
        }
    }
    tp_hal_zeroize(material, sizeof(material));
    tp_hal_zeroize(value, sizeof(value));
    tp_hal_zeroize(context, sizeof(context));
    if (rc != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
    }
}

static int is_op(const uint8_t *op, size_t op_len, const char *name)
{
    return strlen(name) == op_len && memcmp(name, op, op_len) == 0;
}

int tp_seal_assets_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                            uint64_t nargs, tp_cbor_out *ok, tp_result *res)
{
    if (is_op(op, op_len, "seal.asset")) {
        seal_asset(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "seal.chunk")) {
        seal_chunk(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "seal.generate")) {
        seal_generate(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "seal.finish")) {
        tp_seal_finish(chip, args, nargs, ok, res);
    } else {
        return 0;
    }
    return 1;
}
