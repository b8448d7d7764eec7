/* Bounded canonical CBOR (protocol.md 1): what the structure check refuses, reader, writer. */
#include "support.h"

#include <string.h>

#include "tp/cbor.h"

static int check_hex(const char *hex, uint32_t items, uint32_t depth, int64_t tag)
{
    uint8_t buf[256];
    size_t n = support_hex(hex, buf, sizeof(buf));
    return tp_cbor_check(buf, n, items, depth, tag);
}

static void accepts_canonical_items(void **state)
{
    (void)state;
    assert_int_equal(check_hex("00", 1, 0, TP_CBOR_NO_TAG), 0);
    assert_int_equal(check_hex("1818", 1, 0, TP_CBOR_NO_TAG), 0);
    assert_int_equal(check_hex("3903e7", 1, 0, TP_CBOR_NO_TAG), 0); /* -1000 */
    assert_int_equal(check_hex("a2626f706a726f6d2e7374617475736461726773a0", 16, 8, -1), 0);
    assert_int_equal(check_hex("f4", 1, 0, TP_CBOR_NO_TAG), 0);
    assert_int_equal(check_hex("f6", 1, 0, TP_CBOR_NO_TAG), 0);
    assert_int_equal(check_hex("d28440a0f640", 8, 3, 18), 0); /* 18([h'', {}, null, h'']): depth 3 */
    assert_int_equal(check_hex("d28440a0f640", 8, 2, 18), -1);
    assert_int_equal(check_hex("a201020303", 8, 1, TP_CBOR_NO_TAG), 0); /* {1: 2, 3: 3} */
}

static void refuses_what_section_1_refuses(void **state)
{
    (void)state;
    assert_int_equal(check_hex("1817", 1, 0, -1), -1);     /* not the shortest head */
    assert_int_equal(check_hex("190017", 1, 0, -1), -1);
    assert_int_equal(check_hex("9fff", 4, 2, -1), -1);     /* indefinite length */
    assert_int_equal(check_hex("1c", 1, 0, -1), -1);       /* reserved additional information */
    assert_int_equal(check_hex("ff", 1, 0, -1), -1);       /* a break alone */
    assert_int_equal(check_hex("f97e00", 1, 0, -1), -1);   /* a float */
    assert_int_equal(check_hex("f7", 1, 0, -1), -1);       /* undefined */
    assert_int_equal(check_hex("0000", 2, 0, -1), -1);     /* trailing bytes */
    assert_int_equal(check_hex("43aabb", 1, 0, -1), -1);   /* a string beyond the input */
    assert_int_equal(check_hex("8501020304", 8, 1, -1), -1); /* a count beyond the input */
    assert_int_equal(check_hex("a203010302", 8, 1, -1), -1); /* keys out of order */
    assert_int_equal(check_hex("a201010102", 8, 1, -1), -1); /* a repeated key */
    assert_int_equal(check_hex("d200", 2, 1, -1), -1);       /* a tag not allowed */
    assert_int_equal(check_hex("d10080", 2, 1, 18), -1);     /* another tag, and trailing */
    assert_int_equal(check_hex("81d200", 4, 2, 18), -1);     /* a tag inside */
}

static void counts_items_and_depth(void **state)
{
    (void)state;
    /* [[0]]: depth 2, 3 items */
    assert_int_equal(check_hex("818100", 3, 2, -1), 0);
    assert_int_equal(check_hex("818100", 2, 2, -1), -1);
    assert_int_equal(check_hex("818100", 3, 1, -1), -1);
    /* {0: 0} is 1 + 2 items; a tag and its content 2 */
    assert_int_equal(check_hex("a10000", 3, 1, -1), 0);
    assert_int_equal(check_hex("a10000", 2, 1, -1), -1);
    assert_int_equal(check_hex("d200", 2, 1, 18), 0);
    assert_int_equal(check_hex("d200", 1, 1, 18), -1);
    /* [[]] has depth 2 though the inner array is empty */
    assert_int_equal(check_hex("8180", 2, 1, -1), -1);
    /* deeper than the decoder's own stack */
    uint8_t deep[16];
    memset(deep, 0x81, sizeof(deep));
    deep[15] = 0;
    assert_int_equal(tp_cbor_check(deep, sizeof(deep), 100, 8, -1), -1);
    assert_int_equal(tp_cbor_check(deep, sizeof(deep), 100, 100, -1), -1);
}

static void text_keys_sort_shorter_first(void **state)
{
    (void)state;
    /* {"b": 0, "aa": 0} is canonical (length first); {"aa": 0, "b": 0} is not */
    assert_int_equal(check_hex("a261620062616100", 8, 1, -1), 0);
    assert_int_equal(check_hex("a262616100616200", 8, 1, -1), -1);
}

static void writer_is_shortest_and_bounded(void **state)
{
    (void)state;
    uint8_t buf[16];
    tp_cbor_out out;
    tp_cbor_out_init(&out, buf, sizeof(buf));
    tp_cbor_put_uint(&out, 23);
    tp_cbor_put_uint(&out, 24);
    tp_cbor_put_uint(&out, 256);
    tp_cbor_put_int(&out, -1000);
    tp_cbor_put_uint(&out, 4294967296u);
    static const uint8_t want[] = {0x17, 0x18, 0x18, 0x19, 0x01, 0x00, 0x39, 0x03, 0xe7,
                                   0x1b, 0, 0, 0, 1, 0, 0, 0};
    assert_true(out.overflow); /* 17 bytes do not fit in 16 */
    assert_memory_equal(buf, want, 9);
    tp_cbor_out_init(&out, buf, 4);
    tp_cbor_put_bstr(&out, (const uint8_t *)"abcd", 4);
    assert_true(out.overflow);
    assert_int_equal(out.len, 1);
}

static void reader_refuses_on_truncated_input(void **state)
{
    (void)state;
    uint8_t buf[4] = {0x5a, 0, 0, 0};
    tp_cbor_in in;
    const uint8_t *d;
    size_t n;
    tp_cbor_in_init(&in, buf, sizeof(buf));
    assert_int_equal(tp_cbor_bstr(&in, &d, &n), -1);
    assert_int_equal(in.pos, 0);
    assert_int_equal(tp_cbor_skip(&in), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_canonical_items),
        cmocka_unit_test(refuses_what_section_1_refuses),
        cmocka_unit_test(counts_items_and_depth),
        cmocka_unit_test(text_keys_sort_shorter_first),
        cmocka_unit_test(writer_is_shortest_and_bounded),
        cmocka_unit_test(reader_refuses_on_truncated_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
