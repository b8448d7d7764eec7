/* KDF and key schedule (protocol.md 2, 3) against tests/vectors/vectors.json and section 11. */
#include "support.h"

#include <string.h>

#include "tp/keys.h"
#include "vectors.h"

static void kdf_matches_every_vector(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *key, *label, *context, *output;
        const size_t *label_len, *context_len, *output_len;
    } cases[] = {
#define KDF_CASE(i) {kdf_##i##_key, kdf_##i##_label, kdf_##i##_context, kdf_##i##_output, \
                     &kdf_##i##_label_len, &kdf_##i##_context_len, &kdf_##i##_output_len}
        KDF_CASE(0), KDF_CASE(1), KDF_CASE(2),
    };
    assert_true(VECTOR_KDF_COUNT >= 3u);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[128];
        uint8_t out[1024];
        memcpy(label, cases[i].label, *cases[i].label_len);
        label[*cases[i].label_len] = '\0';
        assert_int_equal(tp_kdf(cases[i].key, label, cases[i].context, *cases[i].context_len, out,
                                *cases[i].output_len),
                         0);
        assert_memory_equal(out, cases[i].output, *cases[i].output_len);
    }
}

static void the_chain_of_section_11(void **state)
{
    (void)state;
    uint8_t in[16], rnd[32], share[32], seed[32], hw[32], rom[32], fam[8], want[32];
    tp_domain_keys k;
    support_hex("cf37a53b17c92be276df97690dee6553", in, sizeof(in));
    support_hex("c3ddfc6fdb422bf6a8f5cfff514d808ccca491a18ddb7b834169cf8b605554bd", rnd, 32);
    support_hex("d2df7e41c0bc259a8958541678c0515b2f9fd6442b80a3352bdd3d709780d3bf", hw, 32);
    support_hex("471af325ef663485fa061d27fbdad54f76d01d090e1c61ca5ac0ddd8b4988b5e", rom, 32);
    support_hex("175db4c7f73cd8ff", fam, 8);
    assert_int_equal(tp_oem_share(rnd, in, sizeof(in), share), 0);
    support_hex("fd5f8ede406f2425ccd01c38c1a1dfd16e1a1a0c37b5e7c36bb09ae6b5185ef9", want, 32);
    assert_memory_equal(share, want, 32);
    assert_int_equal(tp_seed(rnd, in, sizeof(in), seed), 0);
    support_hex("d526ee44479499c81dc9ccbf677638a98f1ea2c183dc9c35480728859b3fdfd5", want, 32);
    assert_memory_equal(seed, want, 32);
    assert_int_equal(tp_domain_keys_of(share, hw, rom, fam, &k), 0);
    support_hex("2f2210f385cb657d8236b0d5da42163b9c9d09650c138eccd82bdbb271f05410", want, 32);
    assert_memory_equal(k.enck, want, 32);
    support_hex("7320cf46b5e5908393c3e8b03cca26552126802fe8462cddc85c81cc010ada2e", want, 32);
    assert_memory_equal(k.encd, want, 32);
    support_hex("ab1a02919da6b17fe668d157b8befa49200e1c41e16de58a76ecd651912c0099", want, 32);
    assert_memory_equal(k.auth, want, 32);
    support_hex("20db9c6fd41f7b90a784dd099818120b", want, 16);
    assert_memory_equal(k.domain_id, want, 16);
}

static void kdf_refuses_lengths_out_of_range(void **state)
{
    (void)state;
    uint8_t key[32] = {0};
    uint8_t out[1025];
    assert_int_equal(tp_kdf(key, "x", NULL, 0, out, 0), -1);
    assert_int_equal(tp_kdf(key, "x", NULL, 0, out, 1025), -1);
    assert_int_equal(tp_kdf(key, "x", NULL, 0, out, 1024), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kdf_matches_every_vector),
        cmocka_unit_test(the_chain_of_section_11),
        cmocka_unit_test(kdf_refuses_lengths_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
