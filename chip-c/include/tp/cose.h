/*
 * COSE structures the chip decodes (RFC 9052, protocol.md 1, 5): the signed provisioning
 * software (COSE_Sign1, tag 18) and its protected header.
 *
 * Invariants: a structure is checked within its limits of protocol.md 1 (items, depth, the one
 * tag of the outermost item) before any field is read; every pointer the parser returns points
 * into the input; a header holds exactly its fields, each of its type and range.
 */
#ifndef TP_COSE_H
#define TP_COSE_H

#include <stddef.h>
#include <stdint.h>

#include "tp_hal_crypto.h"

#define TP_COSE_SIGN1_TAG 18u
#define TP_COSE_SIGN_TAG 98u

typedef struct {
    tp_alg alg;
    const uint8_t *protected_item; /* the protected bstr, head included (Sig_structure) */
    size_t protected_item_len;
    const uint8_t *payload_item; /* the payload bstr, head included */
    size_t payload_item_len;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *sig;
    size_t sig_len;
    const uint8_t *name;
    size_t name_len;
    const uint8_t *version;
    size_t version_len;
    uint32_t svn;
    const uint8_t *code; /* tp-code: 32 bytes */
} tp_software;

/* a name of protocol.md 1: 1..64 bytes; this port takes printable ASCII only (a chip may
 * refuse more) */
int tp_name_ok(const uint8_t *s, size_t n);

/* 0: a COSE_Sign1 of protocol.md 5 (step 1); 1: a COSE_Sign under tag 98 (a hybrid, which
 * this port cannot verify); -1: not signed software (`bad-software`) */
int tp_cose_software_parse(const uint8_t *img, size_t len, tp_software *sw);
/* 0: sw's signature verifies under the SPKI with the chip's suite alg (step 2), else -1 */
int tp_cose_software_verify(const tp_software *sw, tp_alg suite, const uint8_t *spki,
                            size_t spki_len);

#endif
