/*
 * FIG. 2 and FIG. 4 (protocol.md 3, 4, 8.1): oem.keygen, oem.regen, and the sealed values
 * (COSE_Encrypt0 under tag 16) they make and open.
 *
 * Invariants:
 * - A sealed value opens only where its kind is expected, under the key its kind fixes, and
 *   only after it parses within its limits (1 KiB, 64 items, depth 4) and names the chip's
 *   family (`wrong-family` before any decryption).
 * - Checks run in the order of protocol.md 8.3: argument names, the session, argument values,
 *   then the op's own; a refused op draws nothing from the TRNG.
 * - Every secret (RND_SHARE, OEM_SHARE, OEM_RND_INPUT, keys) is zeroized before return; the
 *   session keeps only what sealing needs, zeroized when it ends.
 */
#include <string.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/keys.h"
#include "tp_hal_crypto.h"
#include "tp_hal_trng.h"

#define SEALED_MAX 1024u
#define SEALED_ITEMS 64u
#define SEALED_DEPTH 4u

static void refuse(tp_result *res, tp_code code, const char *message)
{
    res->code = code;
    res->message = message;
}

/* the protected header {1: 3, "tp-value": kind, "tp-family": family}, canonical */
static size_t sealed_header(uint8_t *buf, size_t cap, const char *kind, const uint8_t family[8])
{
    tp_cbor_out o;
    tp_cbor_out_init(&o, buf, cap);
    tp_cbor_put_map(&o, 3);
    tp_cbor_put_uint(&o, 1);
    tp_cbor_put_uint(&o, TP_AEAD_A256GCM);
    tp_cbor_put_tstr(&o, "tp-value");
    tp_cbor_put_tstr(&o, kind);
    tp_cbor_put_tstr(&o, "tp-family");
    tp_cbor_put_bstr(&o, family, 8);
    return o.overflow ? 0u : o.len;
}

/* Enc_structure = ["Encrypt0", protected, h''] */
static size_t enc_structure(uint8_t *buf, size_t cap, const uint8_t *prot, size_t prot_len)
{
    tp_cbor_out o;
    tp_cbor_out_init(&o, buf, cap);
    tp_cbor_put_array(&o, 3);
    tp_cbor_put_tstr(&o, "Encrypt0");
    tp_cbor_put_bstr(&o, prot, prot_len);
    tp_cbor_put_bstr(&o, NULL, 0);
    return o.overflow ? 0u : o.len;
}

/* writes the sealed value of section 4 as a bstr item into out; 0 or -1 */
static int seal_value(tp_cbor_out *out, const uint8_t key[32], const uint8_t family[8],
                      const char *kind, const uint8_t iv[12], const uint8_t *pt, size_t len)
{
    uint8_t prot[64];
    uint8_t aad[96];
    uint8_t ct[48];
    uint8_t value[192];
    size_t prot_len = sealed_header(prot, sizeof(prot), kind, family);
    size_t aad_len = enc_structure(aad, sizeof(aad), prot, prot_len);
    tp_cbor_out v;

    if (prot_len == 0u || aad_len == 0u || len + 16u > sizeof(ct) ||
        tp_hal_aead_seal(TP_AEAD_A256GCM, key, iv, 12, aad, aad_len, pt, len, ct) != 0) {
        return -1;
    }
    tp_cbor_out_init(&v, value, sizeof(value));
    tp_cbor_put_tag(&v, 16);
    tp_cbor_put_array(&v, 3);
    tp_cbor_put_bstr(&v, prot, prot_len);
    tp_cbor_put_map(&v, 1);
    tp_cbor_put_uint(&v, 5);
    tp_cbor_put_bstr(&v, iv, 12);
    tp_cbor_put_bstr(&v, ct, len + 16u);
    if (v.overflow) {
        return -1;
    }
    tp_cbor_put_bstr(out, value, v.len);
    return 0;
}

enum { OPEN_OK = 0, OPEN_BAD = -1, OPEN_WRONG_FAMILY = -2 };

/* opens a sealed value of the given kind into out (at most 32 bytes); see the invariants */
static int open_value(const uint8_t *data, size_t len, const char *kind, const uint8_t family[8],
                      const uint8_t key[32], uint8_t out[32], size_t *out_len)
{
    tp_cbor_in in;
    tp_cbor_in h;
    uint64_t tag, n, label;
    const uint8_t *prot, *iv, *ct, *fam;
    size_t prot_len, iv_len, ct_len, fam_len;
    uint8_t aad[96];

    if (len > SEALED_MAX || tp_cbor_check(data, len, SEALED_ITEMS, SEALED_DEPTH, 16) != 0) {
        return OPEN_BAD;
    }
    tp_cbor_in_init(&in, data, len);
    if (tp_cbor_tag(&in, &tag) != 0 || tag != 16u || tp_cbor_array(&in, &n) != 0 || n != 3u ||
        tp_cbor_bstr(&in, &prot, &prot_len) != 0 || tp_cbor_map(&in, &n) != 0 || n != 1u ||
        tp_cbor_uint(&in, &label) != 0 || label != 5u || tp_cbor_bstr(&in, &iv, &iv_len) != 0 ||
        iv_len != 12u || tp_cbor_bstr(&in, &ct, &ct_len) != 0 || ct_len < 16u ||
        ct_len > 32u + 16u) {
        return OPEN_BAD;
    }
    if (tp_cbor_check(prot, prot_len, 32, 2, TP_CBOR_NO_TAG) != 0) {
        return OPEN_BAD;
    }
    tp_cbor_in_init(&h, prot, prot_len);
    if (tp_cbor_map(&h, &n) != 0 || n != 3u || tp_cbor_uint(&h, &label) != 0 || label != 1u ||
        tp_cbor_uint(&h, &label) != 0 || label != TP_AEAD_A256GCM ||
        tp_cbor_tstr_is(&h, "tp-value") != 1 || tp_cbor_tstr_is(&h, kind) != 1 ||
        tp_cbor_tstr_is(&h, "tp-family") != 1 || tp_cbor_bstr(&h, &fam, &fam_len) != 0 ||
        fam_len != 8u) {
        return OPEN_BAD;
    }
    if (memcmp(fam, family, 8) != 0) {
        return OPEN_WRONG_FAMILY;
    }
    size_t aad_len = enc_structure(aad, sizeof(aad), prot, prot_len);
    if (aad_len == 0u ||
        tp_hal_aead_open(TP_AEAD_A256GCM, key, iv, 12, aad, aad_len, ct, ct_len, out) != 0) {
        return OPEN_BAD;
    }
    *out_len = ct_len - 16u;
    return OPEN_OK;
}

int tp_sealed_open(const uint8_t *data, size_t len, const char *kind, const uint8_t family[8],
                   const uint8_t key[32], uint8_t out[32], size_t *out_len)
{
    return open_value(data, len, kind, family, key, out, out_len);
}

/* params of protocol.md 8.1; 0 or -1 (`bad-request`) */
static int parse_params(const tp_arg *bundle, tp_params *p)
{
    tp_cbor_in in = bundle->item;
    uint64_t n;
    tp_arg spec[5] = {
        {"aead", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"epoch", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"min-svn", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"chunk-size", TP_ARG_UINT, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
        {"authorized", TP_ARG_ANY, 1, 0, NULL, 0, 0, {NULL, 0, 0}},
    };
    memset(p, 0, sizeof(*p));
    if (tp_cbor_map(&in, &n) != 0 || tp_args_parse(&in, n, spec, 5) != 0) {
        return -1;
    }
    if ((spec[0].uint != TP_AEAD_A256GCM && spec[0].uint != TP_AEAD_CCM_16_128_256) ||
        spec[1].uint > 0xffffffffu || spec[2].uint > 0xffffffffu || spec[3].uint < 256u ||
        spec[3].uint > (spec[0].uint == TP_AEAD_A256GCM ? 65536u : 65535u)) {
        return -1;
    }
    p->aead = (uint8_t)spec[0].uint;
    p->epoch = (uint32_t)spec[1].uint;
    p->min_svn = (uint32_t)spec[2].uint;
    p->chunk_size = (uint32_t)spec[3].uint;
    if (spec[4].present) {
        tp_cbor_in a = spec[4].item;
        if (tp_cbor_null(&a) != 0) {
            const uint8_t *root;
            size_t root_len;
            uint64_t count;
            if (tp_cbor_array(&a, &n) != 0 || n != 2u || tp_cbor_bstr(&a, &root, &root_len) != 0 ||
                root_len != 32u || tp_cbor_uint(&a, &count) != 0 || count < 1u ||
                count > 16777216u) {
                return -1;
            }
            p->authorized = 1;
            memcpy(p->root, root, 32);
            p->count = (uint32_t)count;
        }
    }
    return 0;
}

/* the start of a sealing session from OEM_RND_INPUT and RND_SHARE: keys, seed, bundle id */
static int open_sealing(tp_chip *chip, const tp_image *im, const uint8_t *input, size_t input_len,
                        const uint8_t rnd_share[32], const tp_params *params,
                        uint8_t oem_share[32])
{
    if (tp_oem_share(rnd_share, input, input_len, oem_share) != 0 ||
        tp_seed(rnd_share, input, input_len, chip->s.seed) != 0 ||
        tp_domain_keys_of(oem_share, im->hw_share, im->rom_share, im->family, &chip->s.keys) !=
            0) {
        return -1;
    }
    chip->s.params = *params;
    chip->session = TP_SESSION_SEALING;
    return 0;
}

static void oem_keygen(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                       tp_result *res)
{
    tp_arg spec[2] = {{"bundle", TP_ARG_ANY, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"oem-rnd-input", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_params params;
    tp_image im;
    uint8_t rnd_share[32];
    uint8_t oem_share[32];
    uint8_t iv[3][12];

    if (tp_args_names(args, nargs, spec, 2) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of oem.keygen");
        return;
    }
    if (chip->session != TP_SESSION_NONE) {
        refuse(res, TP_E_BAD_SEQUENCE, "a session is open");
        return;
    }
    if (tp_args_parse(args, nargs, spec, 2) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type");
        return;
    }
    if (spec[1].len != 16u && spec[1].len != 32u) {
        refuse(res, TP_E_BAD_REQUEST, "OEM_RND_INPUT must be 16 or 32 bytes");
        return;
    }
    if (parse_params(&spec[0], &params) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "bundle: parameters out of range");
        return;
    }
    if (tp_rom_image(chip, &im) != 0 || tp_ram_reserve(chip, TP_SESSION_RAM) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    if (tp_hal_trng(rnd_share, 32) != 0 || tp_hal_trng(iv[0], 12) != 0 ||
        tp_hal_trng(iv[1], 12) != 0 || tp_hal_trng(chip->s.bundle_id, 16) != 0 ||
        tp_hal_trng(iv[2], 12) != 0 ||
        open_sealing(chip, &im, spec[1].data, spec[1].len, rnd_share, &params, oem_share) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
    } else {
        /* canonical order: enc-oem-share, enc-rnd-share, enc-oem-rnd-input */
        tp_cbor_put_map(ok, 3);
        tp_cbor_put_tstr(ok, "enc-oem-share");
        int rc = seal_value(ok, im.k_oem_share, im.family, "oem-share", iv[2], oem_share, 32);
        tp_cbor_put_tstr(ok, "enc-rnd-share");
        rc |= seal_value(ok, im.k_oem_master_share, im.family, "rnd-share", iv[1], rnd_share, 32);
        tp_cbor_put_tstr(ok, "enc-oem-rnd-input");
        rc |= seal_value(ok, im.k_oem_master_share, im.family, "oem-rnd-input", iv[0],
                         spec[1].data, spec[1].len);
        if (rc != 0) {
            refuse(res, TP_E_INTERNAL, NULL);
        }
    }
    tp_hal_zeroize(rnd_share, sizeof(rnd_share));
    tp_hal_zeroize(oem_share, sizeof(oem_share));
}

static void oem_regen(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                      tp_result *res)
{
    tp_arg spec[3] = {{"bundle", TP_ARG_ANY, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"enc-rnd-share", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}},
                      {"enc-oem-rnd-input", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_params params;
    tp_image im;
    uint8_t input[32];
    uint8_t rnd_share[32];
    uint8_t oem_share[32];
    uint8_t iv[12];
    size_t input_len = 0;
    size_t rnd_len = 0;

    if (tp_args_names(args, nargs, spec, 3) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: not those of oem.regen");
        return;
    }
    if (chip->session != TP_SESSION_NONE) {
        refuse(res, TP_E_BAD_SEQUENCE, "a session is open");
        return;
    }
    if (tp_args_parse(args, nargs, spec, 3) != 0 || spec[1].len > SEALED_MAX ||
        spec[2].len > SEALED_MAX) {
        refuse(res, TP_E_BAD_REQUEST, "arguments: a value of the wrong type or size");
        return;
    }
    if (parse_params(&spec[0], &params) != 0) {
        refuse(res, TP_E_BAD_REQUEST, "bundle: parameters out of range");
        return;
    }
    if (tp_rom_image(chip, &im) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    int a = open_value(spec[2].data, spec[2].len, "oem-rnd-input", im.family,
                       im.k_oem_master_share, input, &input_len);
    if (a == OPEN_OK && input_len != 16u && input_len != 32u) {
        a = OPEN_BAD; /* section 4: ENC(OEM_RND_INPUT) is checked whole before ENC(RND_SHARE) */
    }
    int b = a != OPEN_OK ? a
                         : open_value(spec[1].data, spec[1].len, "rnd-share", im.family,
                                      im.k_oem_master_share, rnd_share, &rnd_len);
    if (b == OPEN_WRONG_FAMILY) {
        refuse(res, TP_E_WRONG_FAMILY, "sealed value of another family");
    } else if (b != OPEN_OK || (input_len != 16u && input_len != 32u) || rnd_len != 32u) {
        refuse(res, TP_E_BAD_SEALED_VALUE, "sealed values: not the OEM's two, or do not open");
    } else if (tp_ram_reserve(chip, TP_SESSION_RAM) != 0) {
        refuse(res, TP_E_RAM_BUDGET, "no RAM for a sealing session");
    } else if (tp_hal_trng(chip->s.bundle_id, 16) != 0 || tp_hal_trng(iv, 12) != 0 ||
               open_sealing(chip, &im, input, input_len, rnd_share, &params, oem_share) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
    } else {
        tp_cbor_put_map(ok, 1);
        tp_cbor_put_tstr(ok, "enc-oem-share");
        if (seal_value(ok, im.k_oem_share, im.family, "oem-share", iv, oem_share, 32) != 0) {
            refuse(res, TP_E_INTERNAL, NULL);
        }
    }
    tp_hal_zeroize(input, sizeof(input));
    tp_hal_zeroize(rnd_share, sizeof(rnd_share));
    tp_hal_zeroize(oem_share, sizeof(oem_share));
}

static int is_op(const uint8_t *op, size_t op_len, const char *name)
{
    return strlen(name) == op_len && memcmp(name, op, op_len) == 0;
}

int tp_sealing_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                        uint64_t nargs, tp_cbor_out *ok, tp_result *res)
{
    if (is_op(op, op_len, "oem.keygen")) {
        oem_keygen(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "oem.regen")) {
        oem_regen(chip, args, nargs, ok, res);
    } else {
        return 0;
    }
    return 1;
}
