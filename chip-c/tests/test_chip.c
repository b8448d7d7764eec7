/* The request runner and the boot ROM's manufacturing ops (protocol.md 8, 8.1, 8.2, 8.6). */
#include "support.h"

#include <string.h>

#include "tp/chip.h"

static tp_chip chip;
static uint8_t req[8192];
static uint8_t resp[TP_MAX_RESPONSE];
static const uint8_t UID[16] = {0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
                                0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0};

static int setup(void **state)
{
    (void)state;
    support_blank_chip(&chip, UID, "LOT-VECTORS");
    return 0;
}

static const char *run_hex(const char *hex)
{
    size_t n = support_hex(hex, req, sizeof(req));
    return support_run(&chip, req, n, resp, NULL);
}

static const char *run_op(const char *op)
{
    size_t n = support_request(req, sizeof(req), op);
    return support_run(&chip, req, n, resp, NULL);
}

/* {"op": op, "args": {key: bstr}} */
static const char *run_bstr_arg(const char *op, const char *key, const uint8_t *data, size_t len)
{
    tp_cbor_out o;
    tp_cbor_out_init(&o, req, sizeof(req));
    tp_cbor_put_map(&o, 2);
    tp_cbor_put_tstr(&o, "op");
    tp_cbor_put_tstr(&o, op);
    tp_cbor_put_tstr(&o, "args");
    tp_cbor_put_map(&o, 1);
    tp_cbor_put_tstr(&o, key);
    tp_cbor_put_bstr(&o, data, len);
    return support_run(&chip, req, o.len, resp, NULL);
}

static void blank_status_is_the_vector_answer(void **state)
{
    (void)state;
    /* link_messages.json step "rom.status blank" */
    uint8_t want[256];
    size_t want_len = support_hex(
        "a1626f6ba9636c6f746b4c4f542d564543544f525363756964500f1e2d3c4b5a69788796a5b4c3d2e1f066"
        "66616d696c79f669696e7374616c6c6564f6696c6966656379636c6565424c414e4b6970726f762d6b6579"
        "73f66a70726f762d7375697465f670696e7374616c6c65642d646967657374f67073656375726974792d63"
        "6f756e74657200",
        want, sizeof(want));
    size_t n = support_hex("a2626f706a726f6d2e7374617475736461726773a0", req, sizeof(req));
    size_t got;
    assert_string_equal(support_run(&chip, req, n, resp, &got), "ok");
    assert_int_equal(got, want_len);
    assert_memory_equal(resp, want, want_len);
}

static void requests_that_are_not_requests_are_malformed(void **state)
{
    (void)state;
    assert_string_equal(run_hex("ff"), "malformed");
    assert_string_equal(run_hex("a1626f706a726f6d2e737461747573"), "malformed"); /* no args */
    assert_string_equal(run_hex("a2626f706a726f6d2e737461747573646172677380"), "malformed");
    /* an args key that is not text */
    assert_string_equal(run_hex("a2626f706a726f6d2e737461747573646172677381a10000"), "malformed");
    assert_string_equal(run_hex("a2626f706a726f6d2e7374617475736461726773a10000"), "malformed");
    /* an op name of 33 bytes */
    assert_string_equal(run_op("rom.status-rom.status-rom.status-"), "malformed");
    /* a boot ROM op with another argument */
    assert_string_equal(run_hex("a2626f706a726f6d2e7374617475736461726773a1617801"), "malformed");
}

static void unknown_and_software_ops_before_boot(void **state)
{
    (void)state;
    assert_string_equal(run_op("rom.nothing"), "unknown-command");
    assert_string_equal(run_op("cm.finish"), "unknown-command");
    assert_string_equal(run_op("lock"), "unknown-command");
    assert_string_equal(run_bstr_arg("rom.boot", "image", (const uint8_t *)"x", 1), "lifecycle");
}

static void manufacturing_in_order_and_once(void **state)
{
    (void)state;
    uint8_t image[512];
    size_t n = support_hex(TEST_FAMILY_IMAGE_HEX, image, sizeof(image));

    assert_string_equal(run_op("rom.make-identity"), "lifecycle");
    assert_string_equal(run_bstr_arg("rom.burn", "image", image, n - 1u), "malformed");
    static const uint8_t empty_array = 0x80;
    assert_string_equal(run_bstr_arg("rom.burn", "image", &empty_array, 1), "malformed");
    assert_string_equal(run_bstr_arg("rom.burn", "image", image, n), "ok");
    assert_string_equal(run_bstr_arg("rom.burn", "image", image, n), "immutable-written");
    assert_string_equal(run_bstr_arg("rom.burn", "image", &empty_array, 1), "malformed");

    assert_string_equal(run_bstr_arg("rom.store-certificate", "certificate", image, 8),
                        "lifecycle");
    size_t got;
    n = support_request(req, sizeof(req), "rom.make-identity");
    assert_string_equal(support_run(&chip, req, n, resp, &got), "ok");
    /* {"ok": {"public-key": h'3059...'}}: 91 bytes of SPKI DER */
    assert_int_equal(got, 4u + 1u + 11u + 2u + 91u);
    assert_int_equal(resp[16], 0x58);
    assert_int_equal(resp[17], 91);
    assert_int_equal(resp[18], 0x30);
    assert_string_equal(run_op("rom.make-identity"), "identity-exists");
    assert_string_equal(run_bstr_arg("rom.store-certificate", "certificate", image, 64),
                        "bad-certificate");
    assert_int_equal(chip.nv.lifecycle, TP_LC_BLANK);
    assert_string_equal(run_bstr_arg("rom.boot", "image", image, 8), "lifecycle");
}

/* protocol.md 8.8: arguments first (malformed), then no certified identity (lifecycle); the
 * token itself is checked byte for byte by the link-message vector replay (tests/chipc) */
static void attest_refuses_without_a_certificate_and_bad_challenges(void **state)
{
    (void)state;
    uint8_t image[512];
    uint8_t challenge[33] = {0};
    size_t n = support_hex(TEST_FAMILY_IMAGE_HEX, image, sizeof(image));

    assert_string_equal(run_bstr_arg("rom.attest", "challenge", challenge, 32), "lifecycle");
    assert_string_equal(run_bstr_arg("rom.attest", "challenge", challenge, 31), "malformed");
    assert_string_equal(run_bstr_arg("rom.attest", "challenge", challenge, 33), "malformed");
    assert_string_equal(run_bstr_arg("rom.attest", "nonce", challenge, 32), "malformed");
    assert_string_equal(run_op("rom.attest"), "malformed");
    assert_string_equal(run_bstr_arg("rom.burn", "image", image, n), "ok");
    assert_string_equal(run_op("rom.make-identity"), "ok");
    assert_string_equal(run_bstr_arg("rom.attest", "challenge", challenge, 32), "lifecycle");
    assert_int_equal(chip.nv.lifecycle, TP_LC_BLANK);
}

static void status_shows_public_parts_only(void **state)
{
    (void)state;
    uint8_t image[512];
    size_t n = support_hex(TEST_FAMILY_IMAGE_HEX, image, sizeof(image));
    assert_string_equal(run_bstr_arg("rom.burn", "image", image, n), "ok");
    size_t got;
    n = support_request(req, sizeof(req), "rom.status");
    assert_string_equal(support_run(&chip, req, n, resp, &got), "ok");
    /* the family, the EdDSA suite and its key; no 8 bytes of any share or K_OEM key */
    assert_non_null(memmem(resp, got, image + 2, 8));
    assert_non_null(memmem(resp, got, "EdDSA", 5));
    for (size_t s = 0; s < 4u; s++) {
        const uint8_t *secret = image + 10u + s * 34u + 2u;
        for (size_t off = 0; off + 8u <= 32u; off++) {
            assert_null(memmem(resp, got, secret + off, 8));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(blank_status_is_the_vector_answer, setup),
        cmocka_unit_test_setup(requests_that_are_not_requests_are_malformed, setup),
        cmocka_unit_test_setup(unknown_and_software_ops_before_boot, setup),
        cmocka_unit_test_setup(manufacturing_in_order_and_once, setup),
        cmocka_unit_test_setup(attest_refuses_without_a_certificate_and_bad_challenges, setup),
        cmocka_unit_test_setup(status_shows_public_parts_only, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
