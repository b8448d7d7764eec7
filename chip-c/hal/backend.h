/* Functions one backend file offers another (not part of any HAL a port implements). */
#ifndef TP_HAL_BACKEND_H
#define TP_HAL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "tp_hal_crypto.h"

/* sign_sodium.c: Ed25519 (RFC 8032) verification under a 32-byte public key */
int tp_sodium_ed25519_verify(const uint8_t pub[32], const tp_hal_seg *segs, size_t nsegs,
                             const uint8_t sig[64]);

/* flash_file.c: the NVM file of the host program; 1 if it was created, 0 if opened, -1 */
int tp_flash_file_open(const char *path);

/* trng_posix.c (test builds only): the TRNG becomes SHA-256(label || [i]_4), i = 0, 1, ... */
void tp_trng_test_stream(const uint8_t *label, size_t len);

#endif
