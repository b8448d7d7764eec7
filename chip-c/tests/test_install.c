/* Sealed values (protocol.md 4) and the manifest (6.1) against tests/vectors/vectors.json. */
#include "support.h"

#include <string.h>

#include "tp/chip.h"
#include "tp/manifest.h"
#include "tp/receipts.h"
#include "vectors.h"

static void every_sealed_value_vector_opens_to_its_plaintext(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *cose, *family, *key, *plaintext;
        const size_t *cose_len, *plaintext_len;
        const char *kind;
    } cases[] = {
#define SEALED(i) {sealed_##i##_cose, sealed_##i##_family_id, sealed_##i##_key, \
                   sealed_##i##_plaintext, &sealed_##i##_cose_len, &sealed_##i##_plaintext_len, \
                   sealed_##i##_kind}
        SEALED(0), SEALED(1), SEALED(2),
    };
    assert_int_equal(VECTOR_SEALED_COUNT, 3);
    for (size_t i = 0; i < 3u; i++) {
        uint8_t out[32];
        size_t n = 0;
        assert_int_equal(tp_sealed_open(cases[i].cose, *cases[i].cose_len, cases[i].kind,
                                        cases[i].family, cases[i].key, out, &n),
                         0);
        assert_int_equal(n, *cases[i].plaintext_len);
        assert_memory_equal(out, cases[i].plaintext, n);
        /* another kind, another family, a flipped byte: refused, nothing out */
        const char *other = strcmp(cases[i].kind, "oem-share") == 0 ? "rnd-share" : "oem-share";
        assert_int_equal(tp_sealed_open(cases[i].cose, *cases[i].cose_len, other, cases[i].family,
                                        cases[i].key, out, &n),
                         -1);
        uint8_t family[8];
        memcpy(family, cases[i].family, 8);
        family[0] ^= 1;
        assert_int_equal(tp_sealed_open(cases[i].cose, *cases[i].cose_len, cases[i].kind, family,
                                        cases[i].key, out, &n),
                         -2);
        uint8_t copy[256];
        memcpy(copy, cases[i].cose, *cases[i].cose_len);
        copy[*cases[i].cose_len - 1u] ^= 0x01;
        assert_int_equal(tp_sealed_open(copy, *cases[i].cose_len, cases[i].kind, cases[i].family,
                                        cases[i].key, out, &n),
                         -1);
    }
}

static void vector_manifests_open_and_tampering_does_not(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *mac0, *auth, *family, *payload;
        const size_t *mac0_len, *payload_len;
    } cases[] = {
        {bundle_0_mac0, bundle_0_auth, bundle_0_family, bundle_0_payload, &bundle_0_mac0_len,
         &bundle_0_payload_len},
        {bundle_1_mac0, bundle_1_auth, bundle_1_family, bundle_1_payload, &bundle_1_mac0_len,
         &bundle_1_payload_len},
    };
    static uint8_t copy[32768];
    for (size_t i = 0; i < 2u; i++) {
        tp_manifest m;
        size_t n = *cases[i].mac0_len;
        assert_int_equal(tp_manifest_open(cases[i].mac0, n, cases[i].auth, cases[i].family, &m),
                         TP_MANIFEST_OK);
        assert_int_equal(m.payload_len, *cases[i].payload_len);
        assert_memory_equal(m.payload, cases[i].payload, m.payload_len);
        assert_int_equal(m.nassets, 4);
        tp_asset a;
        assert_int_equal(tp_manifest_asset(&m, 1, &a), 0);
        assert_int_equal(a.kind, TP_KIND_FIRMWARE);
        assert_int_equal(a.chunks, 3);
        /* every byte flipped in turn: never a manifest */
        for (size_t at = 0; at < n; at++) {
            memcpy(copy, cases[i].mac0, n);
            copy[at] ^= 0x01;
            assert_int_not_equal(tp_manifest_open(copy, n, cases[i].auth, cases[i].family, &m),
                                 TP_MANIFEST_OK);
        }
        uint8_t key[32];
        memcpy(key, cases[i].auth, 32);
        key[31] ^= 0x80;
        assert_int_equal(tp_manifest_open(cases[i].mac0, n, key, cases[i].family, &m),
                         TP_MANIFEST_BAD);
        uint8_t family[8];
        memcpy(family, cases[i].family, 8);
        family[7] ^= 1;
        assert_int_equal(tp_manifest_open(cases[i].mac0, n, cases[i].auth, family, &m),
                         TP_MANIFEST_FAMILY);
    }
}

static void installed_encoding_is_the_vectors(void **state)
{
    (void)state;
    static uint8_t enc[4096];
    tp_manifest m;
    assert_int_equal(tp_manifest_open(bundle_0_mac0, bundle_0_mac0_len, bundle_0_auth,
                                      bundle_0_family, &m),
                     TP_MANIFEST_OK);
    size_t n = tp_installed_encode(&m, bundle_0_domain, enc, sizeof(enc));
    assert_int_equal(n, bundle_0_installed_len);
    assert_memory_equal(enc, bundle_0_installed, n);
    assert_int_equal(tp_manifest_open(bundle_1_mac0, bundle_1_mac0_len, bundle_1_auth,
                                      bundle_1_family, &m),
                     TP_MANIFEST_OK);
    n = tp_installed_encode(&m, bundle_1_domain, enc, sizeof(enc));
    assert_int_equal(n, bundle_1_installed_len);
    assert_memory_equal(enc, bundle_1_installed, n);
    assert_int_equal(tp_installed_encode(&m, bundle_1_domain, enc, 64), 0); /* bounded */
}

static int verify(const uint8_t *proof, size_t len, const uint8_t *uid, const uint8_t *root)
{
    tp_cbor_in in;
    uint64_t n, index, size;
    tp_cbor_in_init(&in, proof, len);
    assert_int_equal(tp_cbor_array(&in, &n), 0);
    assert_int_equal(tp_cbor_uint(&in, &index), 0);
    assert_int_equal(tp_cbor_uint(&in, &size), 0);
    assert_int_equal(tp_cbor_array(&in, &n), 0);
    return tp_proof_verify(in, n, index, size, uid, root);
}

static void authorized_set_proofs_verify_for_their_uid_only(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *proof, *uid, *root;
        const size_t *proof_len;
    } cases[] = {
        {auth_0_proof, auth_0_uid, auth_0_root, &auth_0_proof_len},
        {auth_1_proof, auth_1_uid, auth_1_root, &auth_1_proof_len},
        {auth_2_proof, auth_2_uid, auth_2_root, &auth_2_proof_len},
    };
    assert_int_equal(VECTOR_AUTH_COUNT, 3);
    for (size_t i = 0; i < 3u; i++) {
        assert_int_equal(verify(cases[i].proof, *cases[i].proof_len, cases[i].uid, cases[i].root), 0);
        uint8_t uid[16];
        memcpy(uid, cases[i].uid, 16);
        uid[15] ^= 1;
        assert_int_equal(verify(cases[i].proof, *cases[i].proof_len, uid, cases[i].root), -1);
        uint8_t root[32];
        memcpy(root, cases[i].root, 32);
        root[0] ^= 1;
        assert_int_equal(verify(cases[i].proof, *cases[i].proof_len, cases[i].uid, root), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_sealed_value_vector_opens_to_its_plaintext),
        cmocka_unit_test(vector_manifests_open_and_tampering_does_not),
        cmocka_unit_test(authorized_set_proofs_verify_for_their_uid_only),
        cmocka_unit_test(installed_encoding_is_the_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
