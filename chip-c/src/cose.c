/*
 * COSE decoding of the signed software, protocol.md 5. Invariants in include/tp/cose.h.
 */
#include "tp/cose.h"

#include <string.h>

#include "tp/cbor.h"
#include "tp/config.h"

static const char CONTENT_TYPE[] = "application/vnd.trustprov.software+cbor";

int tp_name_ok(const uint8_t *s, size_t n)
{
    if (n == 0u || n > TP_MAX_NAME) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20u || s[i] > 0x7eu) {
            return 0;
        }
    }
    return 1;
}

static int text_key(tp_cbor_in *in, const char *want)
{
    tp_cbor_in probe = *in;
    if (tp_cbor_peek(&probe) != TP_CBOR_TSTR) {
        return 0;
    }
    if (tp_cbor_tstr_is(&probe, want) == 1) {
        *in = probe;
        return 1;
    }
    return 0;
}

/* the protected header of a COSE_Sign1 of software: exactly 1, 3 and the four tp- fields */
static int parse_header(const uint8_t *h, size_t len, tp_software *sw)
{
    tp_cbor_in in;
    uint64_t n;
    int64_t alg;
    uint64_t label;
    uint64_t svn;
    size_t ct_len;
    const uint8_t *ct;

    if (tp_cbor_check(h, len, TP_HEADER_ITEMS, TP_HEADER_DEPTH, TP_CBOR_NO_TAG) != 0) {
        return -1;
    }
    tp_cbor_in_init(&in, h, len);
    /* canonical order: 1, 3, "tp-svn", "tp-code", "tp-name", "tp-version" */
    if (tp_cbor_map(&in, &n) != 0 || n != 6u) {
        return -1;
    }
    if (tp_cbor_uint(&in, &label) != 0 || label != 1u || tp_cbor_int(&in, &alg) != 0) {
        return -1;
    }
    if (alg != TP_ALG_ES256 && alg != TP_ALG_ES384 && alg != TP_ALG_EDDSA &&
        alg != TP_ALG_MLDSA65 && alg != TP_ALG_MLDSA87) {
        return -1;
    }
    sw->alg = (tp_alg)alg;
    if (tp_cbor_uint(&in, &label) != 0 || label != 3u || tp_cbor_tstr(&in, &ct, &ct_len) != 0 ||
        ct_len != sizeof(CONTENT_TYPE) - 1u || memcmp(ct, CONTENT_TYPE, ct_len) != 0) {
        return -1;
    }
    if (!text_key(&in, "tp-svn") || tp_cbor_uint(&in, &svn) != 0 || svn > 0xffffffffu) {
        return -1;
    }
    sw->svn = (uint32_t)svn;
    size_t code_len;
    if (!text_key(&in, "tp-code") || tp_cbor_bstr(&in, &sw->code, &code_len) != 0 ||
        code_len != 32u) {
        return -1;
    }
    if (!text_key(&in, "tp-name") || tp_cbor_tstr(&in, &sw->name, &sw->name_len) != 0 ||
        !tp_name_ok(sw->name, sw->name_len)) {
        return -1;
    }
    if (!text_key(&in, "tp-version") || tp_cbor_tstr(&in, &sw->version, &sw->version_len) != 0 ||
        !tp_name_ok(sw->version, sw->version_len)) {
        return -1;
    }
    return in.pos == len ? 0 : -1;
}

int tp_cose_software_parse(const uint8_t *img, size_t len, tp_software *sw)
{
    tp_cbor_in in;
    uint64_t tag;
    uint64_t n;
    const uint8_t *prot;
    size_t prot_len;

    memset(sw, 0, sizeof(*sw));
    if (len > TP_MAX_SOFTWARE) {
        return -1;
    }
    if (tp_cbor_check(img, len, TP_SOFTWARE_ITEMS, TP_SOFTWARE_DEPTH, TP_COSE_SIGN_TAG) == 0) {
        tp_cbor_in_init(&in, img, len);
        if (tp_cbor_tag(&in, &tag) == 0 && tp_cbor_array(&in, &n) == 0 && n == 4u) {
            return 1;
        }
        return -1;
    }
    if (tp_cbor_check(img, len, TP_SOFTWARE_ITEMS, TP_SOFTWARE_DEPTH, TP_COSE_SIGN1_TAG) != 0) {
        return -1;
    }
    tp_cbor_in_init(&in, img, len);
    if (tp_cbor_tag(&in, &tag) != 0 || tag != TP_COSE_SIGN1_TAG || tp_cbor_array(&in, &n) != 0 ||
        n != 4u) {
        return -1;
    }
    sw->protected_item = img + in.pos;
    if (tp_cbor_bstr(&in, &prot, &prot_len) != 0) {
        return -1;
    }
    sw->protected_item_len = (size_t)(img + in.pos - sw->protected_item);
    if (tp_cbor_map(&in, &n) != 0 || n != 0u) {
        return -1; /* the unprotected header is the empty map */
    }
    sw->payload_item = img + in.pos;
    if (tp_cbor_bstr(&in, &sw->payload, &sw->payload_len) != 0) {
        return -1;
    }
    sw->payload_item_len = (size_t)(img + in.pos - sw->payload_item);
    if (tp_cbor_bstr(&in, &sw->sig, &sw->sig_len) != 0) {
        return -1;
    }
    return parse_header(prot, prot_len, sw);
}

int tp_cose_software_verify(const tp_software *sw, tp_alg suite, const uint8_t *spki,
                            size_t spki_len)
{
    /* Sig_structure = ["Signature1", protected, h'', payload] */
    static const uint8_t prefix[12] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a',
                                       't',  'u',  'r', 'e', '1'};
    static const uint8_t empty = 0x40;
    tp_hal_seg segs[4] = {{prefix, sizeof(prefix)},
                          {sw->protected_item, sw->protected_item_len},
                          {&empty, 1},
                          {sw->payload_item, sw->payload_item_len}};
    if (sw->alg != suite) {
        return -1;
    }
    return tp_hal_verify(suite, spki, spki_len, segs, 4, sw->sig, sw->sig_len);
}
