/*
 * Ed25519 over libsodium (Debian's libsodium-dev). libsodium verifies a contiguous message, so
 * this host backend joins the segments in a buffer of its own (outside trustprov's RAM budget:
 * it stands for the flash staging area); a port whose engine streams SHA-512(R || A || M)
 * (protocol.md 5.3) needs no such buffer.
 */
#include <string.h>

#include <sodium.h>

#include "backend.h"
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
