/*
 * The chip's committed state in NVM, as on flash: two slots (A/B), each a header with a
 * sequence number and a CRC-32 of its body; docs/porting.md "The C port" gives the layout.
 *
 * Invariants:
 * - A commit writes the slot not in use: erase, program the body, sync, then program the
 *   header (magic, sequence + 1, CRC), sync. A power cut at any point leaves the older slot the
 *   newest valid one, so a commit is all or nothing; load takes the valid slot of highest
 *   sequence.
 * - OTP fields only advance: a commit that would lower the lifecycle, the security counter or
 *   the provisioning counter, change the UID or lot, or rewrite the immutable image, the
 *   identity key or the certificate once written is refused and writes nothing.
 */
#ifndef TP_NVM_H
#define TP_NVM_H

#include <stddef.h>
#include <stdint.h>

#include "tp/config.h"

enum { TP_LC_BLANK = 0, TP_LC_MANUFACTURED = 1, TP_LC_PROVISIONED = 2, TP_LC_LOCKED = 3 };

typedef enum {
    TP_AREA_IMAGE = 0,
    TP_AREA_CERT = 1,
    TP_AREA_INSTALLED = 2, /* the installed encoding of protocol.md 6.7 */
    TP_AREA_KEYS = 3,      /* the key slots' values (secret) */
    TP_AREA_REGIONS = 4,   /* the regions' contents, in manifest order */
    TP_AREA_COUNT
} tp_area;

typedef struct {
    uint8_t uid[TP_UID_LEN];
    uint8_t lot_len;
    char lot[TP_MAX_LOT];
    uint8_t lifecycle;
    uint8_t identity_made;
    uint32_t security_counter;
    uint32_t prov_counter;
    uint32_t area_len[TP_AREA_COUNT];
    uint8_t identity_d[32]; /* secret: never leaves the chip */
    /* where it lives: not part of the record */
    uint32_t seq;
    uint8_t active;
    uint8_t valid;
} tp_persist;

typedef struct {
    tp_area area;
    const uint8_t *data;
    size_t len;
} tp_blob;

#define TP_NVM_HEADER 32u
#define TP_NVM_SMALL 160u
#define TP_NVM_BODY                                                                        \
    (TP_NVM_SMALL + TP_MAX_IMMUTABLE + TP_MAX_CERTIFICATE + TP_MAX_INSTALLED +             \
     TP_MAX_KEY_VALUES + TP_MAX_REGION_BYTES)

/* 0: a committed state loaded; 1: no valid slot (a blank NVM); -1: the flash cannot hold it */
int tp_nvm_load(tp_persist *p);
/* 0: committed and *p updated; -1: refused by the OTP rules (nothing written); -2: flash fault */
int tp_nvm_commit(tp_persist *p, const tp_persist *next, const tp_blob *blobs, size_t nblobs);
/* staging an install in the slot not in use (FIG. 3): stage_begin erases it, stage programs an
 * area's bytes at an offset; tp_nvm_commit_staged then commits with the blobs whose data is
 * NULL taken as already staged. Any other commit erases the staging. 0 or -1. */
int tp_nvm_stage_begin(const tp_persist *p);
int tp_nvm_stage(const tp_persist *p, tp_area area, size_t offset, const uint8_t *data,
                 size_t len);
int tp_nvm_commit_staged(tp_persist *p, const tp_persist *next, const tp_blob *blobs,
                         size_t nblobs);
/* the committed bytes of an area (memory-mapped), NULL when it is empty */
const uint8_t *tp_nvm_area(const tp_persist *p, tp_area area, size_t *len);

#endif
