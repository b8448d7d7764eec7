/*
 * KDF and key schedule, protocol.md 2 and 3. Invariants in include/tp/keys.h.
 */
#include "tp/keys.h"

#include <string.h>

#include "tp_hal_crypto.h"

int tp_kdf(const uint8_t key[32], const char *label, const uint8_t *context, size_t context_len,
           uint8_t *out, size_t len)
{
    uint8_t block[16];
    uint8_t counter[4];
    uint8_t bits[4];
    static const uint8_t zero = 0;
    size_t done = 0;
    uint32_t l8 = (uint32_t)len * 8u;

    if (len == 0u || len > 1024u) {
        return -1;
    }
    bits[0] = (uint8_t)(l8 >> 24);
    bits[1] = (uint8_t)(l8 >> 16);
    bits[2] = (uint8_t)(l8 >> 8);
    bits[3] = (uint8_t)l8;
    for (uint32_t i = 1; done < len; i++) {
        counter[0] = (uint8_t)(i >> 24);
        counter[1] = (uint8_t)(i >> 16);
        counter[2] = (uint8_t)(i >> 8);
        counter[3] = (uint8_t)i;
        tp_hal_seg segs[5] = {{counter, 4},
                              {(const uint8_t *)label, strlen(label)},
                              {&zero, 1},
                              {context, context_len},
                              {bits, 4}};
        if (tp_hal_cmac(key, segs, 5, block) != 0) {
            tp_hal_zeroize(out, len);
            tp_hal_zeroize(block, sizeof(block));
            return -1;
        }
        size_t n = len - done < sizeof(block) ? len - done : sizeof(block);
        memcpy(out + done, block, n);
        done += n;
    }
    tp_hal_zeroize(block, sizeof(block));
    return 0;
}

int tp_oem_share(const uint8_t rnd_share[32], const uint8_t *oem_rnd_input, size_t input_len,
                 uint8_t oem_share[32])
{
    return tp_kdf(rnd_share, "F/oem-share", oem_rnd_input, input_len, oem_share, 32);
}

int tp_seed(const uint8_t rnd_share[32], const uint8_t *oem_rnd_input, size_t input_len,
            uint8_t seed[32])
{
    return tp_kdf(rnd_share, "H/seed", oem_rnd_input, input_len, seed, 32);
}

int tp_domain_keys_of(const uint8_t oem_share[32], const uint8_t hw_share[32],
                      const uint8_t rom_share[32], const uint8_t family[8], tp_domain_keys *keys)
{
    uint8_t x[32];
    uint8_t k_mk[32];
    uint8_t ctx[9];
    int rc;

    for (size_t i = 0; i < 32u; i++) {
        x[i] = hw_share[i] ^ rom_share[i];
    }
    memcpy(ctx, family, 8);
    ctx[8] = 1;
    rc = tp_kdf(x, "G/master-key", oem_share, 32, k_mk, 32);
    if (rc == 0) {
        rc = tp_kdf(k_mk, "K/enck", ctx, 9, keys->enck, 32) |
             tp_kdf(k_mk, "K/encd", ctx, 9, keys->encd, 32) |
             tp_kdf(k_mk, "K/auth", ctx, 9, keys->auth, 32) |
             tp_kdf(k_mk, "K/domain", ctx, 9, keys->domain_id, 16);
    }
    tp_hal_zeroize(x, sizeof(x));
    tp_hal_zeroize(k_mk, sizeof(k_mk));
    if (rc != 0) {
        tp_hal_zeroize(keys, sizeof(*keys));
        return -1;
    }
    return 0;
}
