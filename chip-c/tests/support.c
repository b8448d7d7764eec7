#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

const char TEST_FAMILY_IMAGE_HEX[] =
    "8648175db4c7f73cd8ff5820d2df7e41c0bc259a8958541678c0515b2f9fd6442b80a3352bdd3d709780d3bf"
    "5820471af325ef663485fa061d27fbdad54f76d01d090e1c61ca5ac0ddd8b4988b5e582032c552bf9bd06735"
    "cc83f7464b562c6e33ca66149ecba2ab0261a8c112903994582082a5b148381835800e6104870468b6281b98"
    "1506343d8f8b4665477ca6697928582c302a300506032b657003210097ca9015d2a9a43aff40377b43c3666047"
    "534a2364bdf7b9f03fcea02d6f880d";

void support_fresh_nvm(void)
{
    char path[] = "/tmp/tp-chipc-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    assert_int_equal(tp_flash_file_open(path), 1);
    unlink(path); /* the open descriptor keeps it */
}

size_t support_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2u;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

void support_blank_chip(tp_chip *chip, const uint8_t uid[16], const char *lot)
{
    tp_persist nv;
    tp_persist blank;
    support_fresh_nvm();
    assert_int_equal(tp_nvm_load(&nv), 1);
    memset(&blank, 0, sizeof(blank));
    memcpy(blank.uid, uid, 16);
    blank.lot_len = (uint8_t)strlen(lot);
    memcpy(blank.lot, lot, blank.lot_len);
    assert_int_equal(tp_nvm_commit(&nv, &blank, NULL, 0), 0);
    static const uint8_t code[] = "firmware";
    tp_chip_power_on(chip, &nv, code, sizeof(code) - 1u);
}

size_t support_request(uint8_t *out, size_t cap, const char *op)
{
    tp_cbor_out o;
    tp_cbor_out_init(&o, out, cap);
    tp_cbor_put_map(&o, 2);
    tp_cbor_put_tstr(&o, "op");
    tp_cbor_put_tstr(&o, op);
    tp_cbor_put_tstr(&o, "args");
    tp_cbor_put_map(&o, 0);
    assert_false(o.overflow);
    return o.len;
}

const char *support_run(tp_chip *chip, const uint8_t *req, size_t len, uint8_t *resp,
                        size_t *resp_len)
{
    static char code[32];
    size_t n = tp_chip_run(chip, req, len, resp, TP_MAX_RESPONSE);
    assert_true(n > 0u);
    assert_int_equal(tp_cbor_check(resp, n, 1024, 8, TP_CBOR_NO_TAG), 0);
    if (resp_len != NULL) {
        *resp_len = n;
    }
    tp_cbor_in in;
    uint64_t count;
    const uint8_t *s;
    size_t slen;
    tp_cbor_in_init(&in, resp, n);
    assert_int_equal(tp_cbor_map(&in, &count), 0);
    if (count == 1u) {
        assert_int_equal(tp_cbor_tstr_is(&in, "ok"), 1);
        return "ok";
    }
    assert_int_equal(count, 2);
    assert_int_equal(tp_cbor_tstr_is(&in, "error"), 1);
    assert_int_equal(tp_cbor_tstr(&in, &s, &slen), 0);
    assert_true(slen < sizeof(code));
    memcpy(code, s, slen);
    code[slen] = '\0';
    return code;
}
