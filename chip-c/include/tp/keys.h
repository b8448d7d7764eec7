/*
 * The KDF and key schedule of protocol.md 2 and 3, over the crypto HAL's AES-256-CMAC.
 *
 * Invariants: every intermediate block is zeroized before return; outputs are written only on
 * success (on -1 the output holds zeros).
 */
#ifndef TP_KEYS_H
#define TP_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* KDF(K, label, context, L): NIST SP 800-108 counter mode, 1 <= L <= 1024. 0 or -1. */
int tp_kdf(const uint8_t key[32], const char *label, const uint8_t *context, size_t context_len,
           uint8_t *out, size_t len);

/* the keys of an OEM domain on one family (3): K_ENCK, K_ENCD, K_AUTH, DOMAIN_ID */
typedef struct {
    uint8_t enck[32];
    uint8_t encd[32];
    uint8_t auth[32];
    uint8_t domain_id[16];
} tp_domain_keys;

/* OEM_SHARE = KDF(RND_SHARE, "F/oem-share", OEM_RND_INPUT, 32) */
int tp_oem_share(const uint8_t rnd_share[32], const uint8_t *oem_rnd_input, size_t input_len,
                 uint8_t oem_share[32]);
/* seed = KDF(RND_SHARE, "H/seed", OEM_RND_INPUT, 32) */
int tp_seed(const uint8_t rnd_share[32], const uint8_t *oem_rnd_input, size_t input_len,
            uint8_t seed[32]);
/* K_MK = KDF(HW_SHARE xor ROM_SHARE, "G/master-key", OEM_SHARE, 32), then the domain keys
 * under CTX = FAMILY_ID || [1]_1 */
int tp_domain_keys_of(const uint8_t oem_share[32], const uint8_t hw_share[32],
                      const uint8_t rom_share[32], const uint8_t family[8], tp_domain_keys *keys);

#endif
