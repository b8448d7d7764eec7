/*
 * Crypto HAL: every primitive trustprov's chip code uses, and nothing else. A chip maker
 * replaces the backend (crypto_mbedtls.c, sign_sodium.c) with its crypto engine's driver; the
 * logic in src/ does not change. No primitive is written by hand on either side of this line.
 *
 * Invariants every backend keeps: verification returns 0 only for a valid signature or tag;
 * comparisons of secrets are constant-time; key material is zeroized before return.
 */
#ifndef TP_HAL_CRYPTO_H
#define TP_HAL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* a piece of a message the backend hashes in order (scatter-gather: no copy of large images) */
typedef struct {
    const uint8_t *data;
    size_t len;
} tp_hal_seg;

/* the signature algorithms of protocol.md 5.1, by their COSE number */
typedef enum {
    TP_ALG_NONE = 0,
    TP_ALG_ES256 = -7,
    TP_ALG_ES384 = -35,
    TP_ALG_EDDSA = -8,
    TP_ALG_MLDSA65 = -49,
    TP_ALG_MLDSA87 = -50
} tp_alg;

void tp_hal_sha256(const tp_hal_seg *segs, size_t nsegs, uint8_t out[32]);

/* the algorithm a SubjectPublicKeyInfo DER names (5.2), TP_ALG_NONE for any other key */
tp_alg tp_hal_spki_alg(const uint8_t *spki, size_t len);

/* 0 if sig verifies over the concatenated segments under the SPKI DER key with alg, else -1.
 * ECDSA signatures are r || s of the curve size; EdDSA is RFC 8032 pure Ed25519. */
int tp_hal_verify(tp_alg alg, const uint8_t *spki, size_t spki_len, const tp_hal_seg *segs,
                  size_t nsegs, const uint8_t *sig, size_t sig_len);

/* protocol.md 3: the P-256 key of 40 bytes of material, d = (c mod (n - 1)) + 1; writes
 * [d]_32 and the public key's SPKI DER (91 bytes). 0 or -1. */
int tp_hal_p256_from_material(const uint8_t material[40], uint8_t d[32], uint8_t spki[91]);

/* protocol.md 3 for P-384: 56 bytes of material to [d]_48 and the SPKI DER (120 bytes). 0/-1. */
int tp_hal_p384_from_material(const uint8_t material[56], uint8_t d[48], uint8_t spki[120]);
/* the SPKI DER (44 bytes) of the Ed25519 key of an RFC 8032 private key (seed). 0 or -1. */
int tp_hal_ed25519_spki(const uint8_t seed[32], uint8_t spki[44]);

/* the SPKI DER (91 bytes) of the P-256 public key of [d]_32. 0 or -1. */
int tp_hal_p256_public(const uint8_t d[32], uint8_t spki[91]);

/* 0 if der is one DER X.509 certificate whose public key is the SPKI DER given, else -1 */
int tp_hal_cert_key_is(const uint8_t *der, size_t der_len, const uint8_t *spki, size_t spki_len);

/* AES-256-CMAC (NIST SP 800-38B) over the concatenated segments; 0 or -1 */
int tp_hal_cmac(const uint8_t key[32], const tp_hal_seg *segs, size_t nsegs, uint8_t tag[16]);

/* the AEADs of protocol.md 6.2 and 4, by their COSE number */
typedef enum { TP_AEAD_A256GCM = 3, TP_AEAD_CCM_16_128_256 = 31 } tp_aead;

/* seals len bytes of in into out (len + 16 bytes: ciphertext || tag); in and out may be equal.
 * GCM takes a 12-byte nonce, CCM a 13-byte one (L = 2: len <= 65,535). 0 or -1. */
int tp_hal_aead_seal(tp_aead aead, const uint8_t key[32], const uint8_t *nonce, size_t nonce_len,
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     uint8_t *out);
/* opens len bytes (ciphertext || tag) of in into out (len - 16 bytes); the tag is checked
 * before any plaintext is returned: on -1 out holds nothing. */
int tp_hal_aead_open(tp_aead aead, const uint8_t key[32], const uint8_t *nonce, size_t nonce_len,
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     uint8_t *out);

/* ECDSA P-256 over a SHA-256 hash with [d]_32, deterministic (RFC 6979): r || s. 0 or -1. */
int tp_hal_p256_sign(const uint8_t d[32], const uint8_t hash[32], uint8_t sig[64]);

/* 0 if the big-endian scalar d is 1 <= d < n of P-256 (len 32) or P-384 (len 48), else -1 */
int tp_hal_ec_scalar_ok(const uint8_t *d, size_t len);

/* constant-time comparison: 0 when equal */
int tp_hal_ct_memcmp(const void *a, const void *b, size_t len);
void tp_hal_zeroize(void *p, size_t len);

#endif
