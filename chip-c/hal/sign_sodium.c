/*
 * Ed25519 over libsodium (Debian's libsodium-dev). libsodium verifies a contiguous message, so
 * this host backend joins the segments in a buffer of its own (outside trustprov's RAM budget:
 * it stands for the flash staging area); a port whose engine streams SHA-512(R || A || M)
 * (protocol.md 5.3) needs no such buffer.
 */
#include <string.h>

#include <sodium.h>

#include "backend.h"
#include "tp_hal_crypto.h"
#include "tp/config.h"

static uint8_t joined[TP_MAX_SOFTWARE + 4096u];

int tp_sodium_ed25519_verify(const uint8_t pub[32], const tp_hal_seg *segs, size_t nsegs,
                             const uint8_t sig[64])
{
    size_t n = 0;
    if (sodium_init() < 0) {
        return -1;
    }
    for (size_t i = 0; i < nsegs; i++) {
        if (segs[i].len > sizeof(joined) - n) {
            return -1;
        }
        if (segs[i].len > 0u) {
            memcpy(joined + n, segs[i].data, segs[i].len);
        }
        n += segs[i].len;
    }
    return crypto_sign_ed25519_verify_detached(sig, joined, n, pub) == 0 ? 0 : -1;
}

int tp_hal_ed25519_spki(const uint8_t seed[32], uint8_t spki[44])
{
    static const uint8_t prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                       0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    uint8_t pk[crypto_sign_ed25519_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_ed25519_SECRETKEYBYTES];
    if (sodium_init() < 0 || crypto_sign_ed25519_seed_keypair(pk, sk, seed) != 0) {
        return -1;
    }
    sodium_memzero(sk, sizeof(sk));
    memcpy(spki, prefix, sizeof(prefix));
    memcpy(spki + sizeof(prefix), pk, sizeof(pk));
    return 0;
}
