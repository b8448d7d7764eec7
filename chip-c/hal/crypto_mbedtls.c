/*
 * Crypto HAL backend over Mbed TLS 2.28 (Debian's libmbedtls-dev): SHA-256/384, ECDSA P-256
 * and P-384, X.509 parsing, constant-time comparison and zeroization. Ed25519 is libsodium's
 * (sign_sodium.c): Mbed TLS 2.28 has none.
 */
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ccm.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <mbedtls/x509_crt.h>

#include "backend.h"
#include "tp_hal_crypto.h"

static const uint8_t ED25519_SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
/* id-ml-dsa-65 / -87 (2.16.840.1.101.3.4.3.18 / .19), as their DER OID bytes */
static const uint8_t MLDSA_OID[11] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                      0x65, 0x03, 0x04, 0x03, 0x12};

void tp_hal_sha256(const tp_hal_seg *segs, size_t nsegs, uint8_t out[32])
{
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    (void)mbedtls_sha256_starts_ret(&ctx, 0);
    for (size_t i = 0; i < nsegs; i++) {
        (void)mbedtls_sha256_update_ret(&ctx, segs[i].data, segs[i].len);
    }
    (void)mbedtls_sha256_finish_ret(&ctx, out);
    mbedtls_sha256_free(&ctx);
}

static tp_alg ec_alg(const uint8_t *spki, size_t len)
{
    mbedtls_pk_context pk;
    tp_alg alg = TP_ALG_NONE;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, spki, len) == 0 &&
        mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY) {
        mbedtls_ecp_group_id id = mbedtls_pk_ec(pk)->grp.id;
        if (id == MBEDTLS_ECP_DP_SECP256R1) {
            alg = TP_ALG_ES256;
        } else if (id == MBEDTLS_ECP_DP_SECP384R1) {
            alg = TP_ALG_ES384;
        }
    }
    mbedtls_pk_free(&pk);
    return alg;
}

tp_alg tp_hal_spki_alg(const uint8_t *spki, size_t len)
{
    if (len == 44u && memcmp(spki, ED25519_SPKI_PREFIX, sizeof(ED25519_SPKI_PREFIX)) == 0) {
        return TP_ALG_EDDSA;
    }
    if (len > 32u && spki[0] == 0x30u) {
        /* ML-DSA SPKI: 30 82 LL LL 30 0b <OID> 03 82 ...; only its OID is read */
        for (size_t at = 4; at + sizeof(MLDSA_OID) <= 16u && at + sizeof(MLDSA_OID) <= len;
             at++) {
            if (memcmp(spki + at, MLDSA_OID, sizeof(MLDSA_OID) - 1u) == 0) {
                uint8_t last = spki[at + sizeof(MLDSA_OID) - 1u];
                if (last == 0x12u) {
                    return TP_ALG_MLDSA65;
                }
                if (last == 0x13u) {
                    return TP_ALG_MLDSA87;
                }
            }
        }
    }
    return ec_alg(spki, len);
}

static int ecdsa_verify(tp_alg alg, const uint8_t *spki, size_t spki_len, const tp_hal_seg *segs,
                        size_t nsegs, const uint8_t *sig, size_t sig_len)
{
    uint8_t hash[64];
    size_t hlen = alg == TP_ALG_ES256 ? 32u : 48u;
    size_t half = alg == TP_ALG_ES256 ? 32u : 48u;
    int rc = -1;

    if (sig_len != 2u * half || tp_hal_spki_alg(spki, spki_len) != alg) {
        return -1;
    }
    if (alg == TP_ALG_ES256) {
        tp_hal_sha256(segs, nsegs, hash);
    } else {
        mbedtls_sha512_context ctx;
        mbedtls_sha512_init(&ctx);
        (void)mbedtls_sha512_starts_ret(&ctx, 1);
        for (size_t i = 0; i < nsegs; i++) {
            (void)mbedtls_sha512_update_ret(&ctx, segs[i].data, segs[i].len);
        }
        (void)mbedtls_sha512_finish_ret(&ctx, hash);
        mbedtls_sha512_free(&ctx);
    }
    mbedtls_pk_context pk;
    mbedtls_mpi r, s;
    mbedtls_pk_init(&pk);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_pk_parse_public_key(&pk, spki, spki_len) == 0 &&
        mbedtls_mpi_read_binary(&r, sig, half) == 0 &&
        mbedtls_mpi_read_binary(&s, sig + half, half) == 0) {
        mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
        if (mbedtls_ecdsa_verify(&ec->grp, hash, hlen, &ec->Q, &r, &s) == 0) {
            rc = 0;
        }
    }
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_pk_free(&pk);
    return rc;
}

int tp_hal_verify(tp_alg alg, const uint8_t *spki, size_t spki_len, const tp_hal_seg *segs,
                  size_t nsegs, const uint8_t *sig, size_t sig_len)
{
    switch (alg) {
    case TP_ALG_ES256:
    case TP_ALG_ES384:
        return ecdsa_verify(alg, spki, spki_len, segs, nsegs, sig, sig_len);
    case TP_ALG_EDDSA:
        if (sig_len != 64u || tp_hal_spki_alg(spki, spki_len) != TP_ALG_EDDSA) {
            return -1;
        }
        return tp_sodium_ed25519_verify(spki + sizeof(ED25519_SPKI_PREFIX), segs, nsegs, sig);
    default:
        return -1; /* ML-DSA: no C library in Debian (docs/porting.md) */
    }
}

static int write_spki_of(mbedtls_ecp_keypair *key, mbedtls_ecp_group_id id, uint8_t *spki,
                         int want)
{
    uint8_t der[200];
    mbedtls_pk_context pk;
    int rc = -1;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0 &&
        mbedtls_ecp_group_load(&mbedtls_pk_ec(pk)->grp, id) == 0 &&
        mbedtls_ecp_copy(&mbedtls_pk_ec(pk)->Q, &key->Q) == 0) {
        int n = mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
        if (n == want) {
            memcpy(spki, der + sizeof(der) - (size_t)want, (size_t)want);
            rc = 0;
        }
    }
    mbedtls_pk_free(&pk);
    return rc;
}

static int write_spki(mbedtls_ecp_keypair *key, uint8_t spki[91])
{
    return write_spki_of(key, MBEDTLS_ECP_DP_SECP256R1, spki, 91);
}

/* Section 3's derivation of an EC private key from TRNG or seed material: d = (c mod (n - 1)) + 1
 * for the big-endian integer c of the material, on ``curve``; its public key as SPKI DER. */
static int key_from_material(mbedtls_ecp_group_id curve, const uint8_t *material, size_t mlen,
                             uint8_t *d, size_t dlen, uint8_t *spki, size_t spki_len)
{
    mbedtls_ecp_keypair key;
    mbedtls_mpi c, n1;
    int rc = -1;
    mbedtls_ecp_keypair_init(&key);
    mbedtls_mpi_init(&c);
    mbedtls_mpi_init(&n1);
    if (mbedtls_ecp_group_load(&key.grp, curve) == 0 &&
        mbedtls_mpi_read_binary(&c, material, mlen) == 0 &&
        mbedtls_mpi_sub_int(&n1, &key.grp.N, 1) == 0 &&
        mbedtls_mpi_mod_mpi(&key.d, &c, &n1) == 0 && mbedtls_mpi_add_int(&key.d, &key.d, 1) == 0 &&
        mbedtls_ecp_mul(&key.grp, &key.Q, &key.d, &key.grp.G, NULL, NULL) == 0 &&
        mbedtls_mpi_write_binary(&key.d, d, dlen) == 0 &&
        write_spki_of(&key, curve, spki, spki_len) == 0) {
        rc = 0;
    }
    mbedtls_mpi_free(&c);
    mbedtls_mpi_free(&n1);
    mbedtls_ecp_keypair_free(&key);
    if (rc != 0) {
        mbedtls_platform_zeroize(d, dlen);
    }
    return rc;
}

int tp_hal_p384_from_material(const uint8_t material[56], uint8_t d[48], uint8_t spki[120])
{
    return key_from_material(MBEDTLS_ECP_DP_SECP384R1, material, 56, d, 48, spki, 120);
}

int tp_hal_p256_from_material(const uint8_t material[40], uint8_t d[32], uint8_t spki[91])
{
    return key_from_material(MBEDTLS_ECP_DP_SECP256R1, material, 40, d, 32, spki, 91);
}

int tp_hal_p256_public(const uint8_t d[32], uint8_t spki[91])
{
    mbedtls_ecp_keypair key;
    int rc = -1;
    mbedtls_ecp_keypair_init(&key);
    if (mbedtls_ecp_group_load(&key.grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
        mbedtls_mpi_read_binary(&key.d, d, 32) == 0 &&
        mbedtls_ecp_mul(&key.grp, &key.Q, &key.d, &key.grp.G, NULL, NULL) == 0 &&
        write_spki(&key, spki) == 0) {
        rc = 0;
    }
    mbedtls_ecp_keypair_free(&key);
    return rc;
}

int tp_hal_cert_key_is(const uint8_t *der, size_t der_len, const uint8_t *spki, size_t spki_len)
{
    mbedtls_x509_crt crt;
    uint8_t buf[160];
    int rc = -1;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, der_len) == 0 && crt.raw.len == der_len &&
        crt.next == NULL) {
        int n = mbedtls_pk_write_pubkey_der(&crt.pk, buf, sizeof(buf));
        if (n > 0 && (size_t)n == spki_len &&
            memcmp(buf + sizeof(buf) - (size_t)n, spki, spki_len) == 0) {
            rc = 0;
        }
    }
    mbedtls_x509_crt_free(&crt);
    return rc;
}

int tp_hal_cmac(const uint8_t key[32], const tp_hal_seg *segs, size_t nsegs, uint8_t tag[16])
{
    mbedtls_cipher_context_t ctx;
    int rc = -1;
    mbedtls_cipher_init(&ctx);
    if (mbedtls_cipher_setup(&ctx, mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_256_ECB)) ==
            0 &&
        mbedtls_cipher_cmac_starts(&ctx, key, 256) == 0) {
        rc = 0;
        for (size_t i = 0; i < nsegs && rc == 0; i++) {
            if (segs[i].len > 0u && mbedtls_cipher_cmac_update(&ctx, segs[i].data, segs[i].len) != 0) {
                rc = -1;
            }
        }
        if (rc == 0 && mbedtls_cipher_cmac_finish(&ctx, tag) != 0) {
            rc = -1;
        }
    }
    mbedtls_cipher_free(&ctx);
    return rc;
}

int tp_hal_aead_seal(tp_aead aead, const uint8_t key[32], const uint8_t *nonce, size_t nonce_len,
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    int rc = -1;
    if (aead == TP_AEAD_A256GCM && nonce_len == 12u) {
        mbedtls_gcm_context gcm;
        mbedtls_gcm_init(&gcm);
        if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) == 0 &&
            mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, nonce_len, aad,
                                      aad_len, in, out, 16, out + len) == 0) {
            rc = 0;
        }
        mbedtls_gcm_free(&gcm);
    } else if (aead == TP_AEAD_CCM_16_128_256 && nonce_len == 13u && len <= 65535u) {
        mbedtls_ccm_context ccm;
        mbedtls_ccm_init(&ccm);
        if (mbedtls_ccm_setkey(&ccm, MBEDTLS_CIPHER_ID_AES, key, 256) == 0 &&
            mbedtls_ccm_encrypt_and_tag(&ccm, len, nonce, nonce_len, aad, aad_len, in, out,
                                        out + len, 16) == 0) {
            rc = 0;
        }
        mbedtls_ccm_free(&ccm);
    }
    return rc;
}

int tp_hal_aead_open(tp_aead aead, const uint8_t key[32], const uint8_t *nonce, size_t nonce_len,
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     uint8_t *out)
{
    int rc = -1;
    if (len < 16u) {
        return -1;
    }
    size_t n = len - 16u;
    if (aead == TP_AEAD_A256GCM && nonce_len == 12u) {
        mbedtls_gcm_context gcm;
        mbedtls_gcm_init(&gcm);
        if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) == 0 &&
            mbedtls_gcm_auth_decrypt(&gcm, n, nonce, nonce_len, aad, aad_len, in + n, 16, in,
                                     out) == 0) {
            rc = 0;
        }
        mbedtls_gcm_free(&gcm);
    } else if (aead == TP_AEAD_CCM_16_128_256 && nonce_len == 13u && n <= 65535u) {
        mbedtls_ccm_context ccm;
        mbedtls_ccm_init(&ccm);
        if (mbedtls_ccm_setkey(&ccm, MBEDTLS_CIPHER_ID_AES, key, 256) == 0 &&
            mbedtls_ccm_auth_decrypt(&ccm, n, nonce, nonce_len, aad, aad_len, in, out, in + n,
                                     16) == 0) {
            rc = 0;
        }
        mbedtls_ccm_free(&ccm);
    }
    if (rc != 0 && n > 0u) {
        mbedtls_platform_zeroize(out, n);
    }
    return rc;
}

int tp_hal_p256_sign(const uint8_t d[32], const uint8_t hash[32], uint8_t sig[64])
{
    mbedtls_ecp_group grp;
    mbedtls_mpi x, r, s;
    int rc = -1;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&x);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
        mbedtls_mpi_read_binary(&x, d, 32) == 0 &&
        mbedtls_ecdsa_sign_det_ext(&grp, &r, &s, &x, hash, 32, MBEDTLS_MD_SHA256, NULL, NULL) ==
            0 &&
        mbedtls_mpi_write_binary(&r, sig, 32) == 0 && mbedtls_mpi_write_binary(&s, sig + 32, 32) == 0) {
        rc = 0;
    }
    mbedtls_mpi_free(&x);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

int tp_hal_ec_scalar_ok(const uint8_t *d, size_t len)
{
    mbedtls_ecp_group grp;
    mbedtls_mpi x;
    int rc = -1;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&x);
    if ((len == 32u || len == 48u) &&
        mbedtls_ecp_group_load(&grp, len == 32u ? MBEDTLS_ECP_DP_SECP256R1
                                                : MBEDTLS_ECP_DP_SECP384R1) == 0 &&
        mbedtls_mpi_read_binary(&x, d, len) == 0 && mbedtls_mpi_cmp_int(&x, 1) >= 0 &&
        mbedtls_mpi_cmp_mpi(&x, &grp.N) < 0) {
        rc = 0;
    }
    mbedtls_mpi_free(&x);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

int tp_hal_ct_memcmp(const void *a, const void *b, size_t len)
{
    return mbedtls_ct_memcmp(a, b, len);
}

void tp_hal_zeroize(void *p, size_t len)
{
    mbedtls_platform_zeroize(p, len);
}
