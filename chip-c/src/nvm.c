/*
 * A/B NVM commits with OTP rules. Invariants in include/tp/nvm.h.
 */
#include "tp/nvm.h"

#include <string.h>

#include "tp/link.h" /* tp_crc32 */
#include "tp_hal_crypto.h"
#include "tp_hal_flash.h"

static const uint8_t MAGIC[4] = {'T', 'P', 'N', 'V'};
#define FORMAT 1u

#define OFF_CERT (TP_NVM_SMALL + TP_MAX_IMMUTABLE)
#define OFF_INSTALLED (OFF_CERT + TP_MAX_CERTIFICATE)
#define OFF_KEYS (OFF_INSTALLED + TP_MAX_INSTALLED)
#define OFF_REGIONS (OFF_KEYS + TP_MAX_KEY_VALUES)
static const size_t AREA_OFF[TP_AREA_COUNT] = {TP_NVM_SMALL, OFF_CERT, OFF_INSTALLED, OFF_KEYS,
                                               OFF_REGIONS};
static const size_t AREA_CAP[TP_AREA_COUNT] = {TP_MAX_IMMUTABLE, TP_MAX_CERTIFICATE,
                                               TP_MAX_INSTALLED, TP_MAX_KEY_VALUES,
                                               TP_MAX_REGION_BYTES};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void encode_small(const tp_persist *p, uint8_t s[TP_NVM_SMALL])
{
    memset(s, 0, TP_NVM_SMALL);
    memcpy(s, p->uid, TP_UID_LEN);
    s[16] = p->lot_len;
    memcpy(s + 17, p->lot, p->lot_len);
    s[81] = p->lifecycle;
    s[82] = p->identity_made;
    put32(s + 83, p->security_counter);
    put32(s + 87, p->prov_counter);
    for (size_t a = 0; a < TP_AREA_COUNT; a++) {
        put32(s + 91 + 4 * a, p->area_len[a]);
    }
    memcpy(s + 91 + 4 * TP_AREA_COUNT, p->identity_d, 32);
}

static int decode_small(const uint8_t *s, tp_persist *p)
{
    memcpy(p->uid, s, TP_UID_LEN);
    p->lot_len = s[16];
    if (p->lot_len > TP_MAX_LOT || s[81] > TP_LC_LOCKED || s[82] > 1u) {
        return -1;
    }
    memcpy(p->lot, s + 17, p->lot_len);
    p->lifecycle = s[81];
    p->identity_made = s[82];
    p->security_counter = get32(s + 83);
    p->prov_counter = get32(s + 87);
    for (size_t a = 0; a < TP_AREA_COUNT; a++) {
        p->area_len[a] = get32(s + 91 + 4 * a);
        if (p->area_len[a] > AREA_CAP[a]) {
            return -1;
        }
    }
    memcpy(p->identity_d, s + 91 + 4 * TP_AREA_COUNT, 32);
    return 0;
}

/* the sequence number of a valid slot, or 0 */
static uint32_t slot_seq(unsigned slot)
{
    const uint8_t *m = tp_hal_nvm_map(slot);
    if (m == NULL || memcmp(m, MAGIC, 4) != 0 || m[4] != 0u || m[5] != FORMAT ||
        get32(m + 12) != TP_NVM_BODY) {
        return 0;
    }
    if (tp_crc32(0, m + TP_NVM_HEADER, TP_NVM_BODY) != get32(m + 16)) {
        return 0;
    }
    return get32(m + 8);
}

int tp_nvm_load(tp_persist *p)
{
    memset(p, 0, sizeof(*p));
    if (tp_hal_nvm_slot_size() < TP_NVM_HEADER + TP_NVM_BODY) {
        return -1;
    }
    uint32_t s0 = slot_seq(0);
    uint32_t s1 = slot_seq(1);
    if (s0 == 0u && s1 == 0u) {
        return 1;
    }
    unsigned slot = s1 > s0 ? 1u : 0u;
    if (decode_small(tp_hal_nvm_map(slot) + TP_NVM_HEADER, p) != 0) {
        return -1;
    }
    p->seq = slot == 1u ? s1 : s0;
    p->active = (uint8_t)slot;
    p->valid = 1;
    return 0;
}

const uint8_t *tp_nvm_area(const tp_persist *p, tp_area area, size_t *len)
{
    *len = 0;
    if (!p->valid || area >= TP_AREA_COUNT || p->area_len[area] == 0u) {
        return NULL;
    }
    *len = p->area_len[area];
    return tp_hal_nvm_map(p->active) + TP_NVM_HEADER + AREA_OFF[area];
}

static int otp_allows(const tp_persist *cur, const tp_persist *next, const tp_blob *blobs,
                      size_t nblobs)
{
    if (next->lifecycle > TP_LC_LOCKED || next->lot_len > TP_MAX_LOT) {
        return -1;
    }
    for (size_t i = 0; i < nblobs; i++) {
        if (blobs[i].area >= TP_AREA_COUNT || blobs[i].len > AREA_CAP[blobs[i].area] ||
            blobs[i].len != next->area_len[blobs[i].area]) {
            return -1;
        }
        if (cur->valid && blobs[i].area < TP_AREA_INSTALLED && cur->area_len[blobs[i].area] > 0u) {
            return -1; /* the immutable image and the certificate are written once */
        }
    }
    if (!cur->valid) {
        return 0;
    }
    if (memcmp(cur->uid, next->uid, TP_UID_LEN) != 0 || cur->lot_len != next->lot_len ||
        memcmp(cur->lot, next->lot, cur->lot_len) != 0 || next->lifecycle < cur->lifecycle ||
        next->security_counter < cur->security_counter ||
        next->prov_counter < cur->prov_counter || next->identity_made < cur->identity_made ||
        (cur->identity_made && memcmp(cur->identity_d, next->identity_d, 32) != 0)) {
        return -1;
    }
    for (size_t a = 0; a < TP_AREA_COUNT; a++) {
        int given = 0;
        for (size_t i = 0; i < nblobs; i++) {
            given |= blobs[i].area == a;
        }
        if (!given && next->area_len[a] != cur->area_len[a]) {
            return -1;
        }
    }
    return 0;
}

static uint32_t crc_fill(uint32_t crc, size_t n)
{
    static const uint8_t ff[64] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    while (n > 0u) {
        size_t k = n < sizeof(ff) ? n : sizeof(ff);
        crc = tp_crc32(crc, ff, k);
        n -= k;
    }
    return crc;
}

static unsigned staging_slot(const tp_persist *p)
{
    return p->valid ? (unsigned)(1u - p->active) : 0u;
}

int tp_nvm_stage_begin(const tp_persist *p)
{
    return tp_hal_nvm_erase(staging_slot(p));
}

int tp_nvm_stage(const tp_persist *p, tp_area area, size_t offset, const uint8_t *data,
                 size_t len)
{
    if (area >= TP_AREA_COUNT || offset > AREA_CAP[area] || len > AREA_CAP[area] - offset) {
        return -1;
    }
    return tp_hal_nvm_program(staging_slot(p), TP_NVM_HEADER + AREA_OFF[area] + offset, data,
                              len);
}

static int commit(tp_persist *p, const tp_persist *next, const tp_blob *blobs, size_t nblobs,
                  int staged);

int tp_nvm_commit(tp_persist *p, const tp_persist *next, const tp_blob *blobs, size_t nblobs)
{
    return commit(p, next, blobs, nblobs, 0);
}

int tp_nvm_commit_staged(tp_persist *p, const tp_persist *next, const tp_blob *blobs,
                         size_t nblobs)
{
    return commit(p, next, blobs, nblobs, 1);
}

static int commit(tp_persist *p, const tp_persist *next, const tp_blob *blobs, size_t nblobs,
                  int staged)
{
    uint8_t small[TP_NVM_SMALL];
    uint8_t header[TP_NVM_HEADER];
    unsigned slot = staging_slot(p);
    uint32_t crc;
    int rc = -2;

    if (otp_allows(p, next, blobs, nblobs) != 0) {
        return -1;
    }
    encode_small(next, small);
    crc = tp_crc32(0, small, sizeof(small));
    if ((!staged && tp_hal_nvm_erase(slot) != 0) ||
        tp_hal_nvm_program(slot, TP_NVM_HEADER, small, sizeof(small)) != 0) {
        goto out;
    }
    for (size_t a = 0; a < TP_AREA_COUNT; a++) {
        const uint8_t *src = NULL;
        size_t len = 0;
        int given = 0;
        for (size_t i = 0; i < nblobs; i++) {
            if (blobs[i].area == a) {
                src = blobs[i].data;
                len = blobs[i].len;
                given = 1;
            }
        }
        if (given && src == NULL) {
            if (!staged) {
                goto out;
            }
            /* staged by tp_nvm_stage(): in the slot already */
            src = tp_hal_nvm_map(slot) + TP_NVM_HEADER + AREA_OFF[a];
        } else {
            if (!given) {
                src = tp_nvm_area(p, (tp_area)a, &len);
            }
            if (len > 0u &&
                tp_hal_nvm_program(slot, TP_NVM_HEADER + AREA_OFF[a], src, len) != 0) {
                goto out;
            }
        }
        crc = tp_crc32(crc, src, len);
        crc = crc_fill(crc, AREA_CAP[a] - len);
    }
    if (tp_hal_nvm_sync(slot) != 0 ||
        tp_crc32(0, tp_hal_nvm_map(slot) + TP_NVM_HEADER, TP_NVM_BODY) != crc) {
        goto out;
    }
    memset(header, 0, sizeof(header));
    memcpy(header, MAGIC, 4);
    header[5] = FORMAT;
    put32(header + 8, p->seq + 1u);
    put32(header + 12, TP_NVM_BODY);
    put32(header + 16, crc);
    if (tp_hal_nvm_program(slot, 0, header, sizeof(header)) != 0 || tp_hal_nvm_sync(slot) != 0) {
        goto out;
    }
    uint32_t seq = p->seq + 1u;
    *p = *next;
    p->seq = seq;
    p->active = (uint8_t)slot;
    p->valid = 1;
    rc = 0;
out:
    tp_hal_zeroize(small, sizeof(small));
    return rc;
}
