/* A/B NVM commits (power-cut safety) and OTP fields that only advance. */
#include "support.h"

#include <string.h>

#include "tp/nvm.h"
#include "tp_hal_flash.h"

static tp_persist blank_state(void)
{
    tp_persist p;
    memset(&p, 0, sizeof(p));
    memset(p.uid, 0x11, sizeof(p.uid));
    p.lot_len = 3;
    memcpy(p.lot, "LOT", 3);
    return p;
}

static void fresh_nvm_is_blank_then_loads_its_commit(void **state)
{
    (void)state;
    tp_persist p;
    support_fresh_nvm();
    assert_int_equal(tp_nvm_load(&p), 1);
    tp_persist next = blank_state();
    assert_int_equal(tp_nvm_commit(&p, &next, NULL, 0), 0);
    tp_persist again;
    assert_int_equal(tp_nvm_load(&again), 0);
    assert_memory_equal(again.uid, next.uid, 16);
    assert_int_equal(again.seq, 1);
}

static void a_torn_commit_leaves_the_last_one(void **state)
{
    (void)state;
    tp_persist p;
    support_fresh_nvm();
    tp_nvm_load(&p);
    tp_persist next = blank_state();
    assert_int_equal(tp_nvm_commit(&p, &next, NULL, 0), 0); /* seq 1, slot 0 */
    next.security_counter = 5;
    assert_int_equal(tp_nvm_commit(&p, &next, NULL, 0), 0); /* seq 2, slot 1 */
    assert_int_equal(p.active, 1);

    /* power cut while the header was being written: slot 1's magic is gone */
    static const uint8_t zero[4] = {0};
    assert_int_equal(tp_hal_nvm_program(1, 0, zero, 4), 0);
    tp_persist loaded;
    assert_int_equal(tp_nvm_load(&loaded), 0);
    assert_int_equal(loaded.security_counter, 0);
    assert_int_equal(loaded.seq, 1);

    /* a body bit flipped under a whole header: the CRC refuses it too */
    next = loaded;
    next.security_counter = 6;
    assert_int_equal(tp_nvm_commit(&loaded, &next, NULL, 0), 0);
    assert_int_equal(loaded.active, 1);
    uint8_t flipped = tp_hal_nvm_map(1)[TP_NVM_HEADER + 90] ^ 0x40u;
    assert_int_equal(tp_hal_nvm_program(1, TP_NVM_HEADER + 90, &flipped, 1), 0);
    assert_int_equal(tp_nvm_load(&loaded), 0);
    assert_int_equal(loaded.seq, 1);
    assert_int_equal(loaded.security_counter, 0);
}

static void otp_fields_only_advance(void **state)
{
    (void)state;
    tp_persist p;
    support_fresh_nvm();
    tp_nvm_load(&p);
    tp_persist next = blank_state();
    next.security_counter = 7;
    next.lifecycle = TP_LC_PROVISIONED;
    next.prov_counter = 2;
    assert_int_equal(tp_nvm_commit(&p, &next, NULL, 0), 0);

    tp_persist lower = next;
    lower.security_counter = 6;
    assert_int_equal(tp_nvm_commit(&p, &lower, NULL, 0), -1);
    lower = next;
    lower.lifecycle = TP_LC_MANUFACTURED;
    assert_int_equal(tp_nvm_commit(&p, &lower, NULL, 0), -1);
    lower = next;
    lower.prov_counter = 1;
    assert_int_equal(tp_nvm_commit(&p, &lower, NULL, 0), -1);
    lower = next;
    lower.uid[0] ^= 1;
    assert_int_equal(tp_nvm_commit(&p, &lower, NULL, 0), -1);
    assert_int_equal(p.seq, 1); /* nothing was written */

    /* the immutable image is written once */
    uint8_t image[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tp_blob blob = {TP_AREA_IMAGE, image, sizeof(image)};
    tp_persist with_image = next;
    with_image.area_len[TP_AREA_IMAGE] = sizeof(image);
    assert_int_equal(tp_nvm_commit(&p, &with_image, &blob, 1), 0);
    size_t len;
    const uint8_t *got = tp_nvm_area(&p, TP_AREA_IMAGE, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof(image));
    assert_memory_equal(got, image, sizeof(image));
    image[0] = 9;
    assert_int_equal(tp_nvm_commit(&p, &with_image, &blob, 1), -1);
    /* and kept by every later commit that does not name it */
    tp_persist later = p;
    later.security_counter = 8;
    assert_int_equal(tp_nvm_commit(&p, &later, NULL, 0), 0);
    got = tp_nvm_area(&p, TP_AREA_IMAGE, &len);
    assert_int_equal(len, sizeof(image));
    assert_int_equal(got[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fresh_nvm_is_blank_then_loads_its_commit),
        cmocka_unit_test(a_torn_commit_leaves_the_last_one),
        cmocka_unit_test(otp_fields_only_advance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
