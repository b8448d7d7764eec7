/*
 * TRNG backend of the host program: the kernel's getrandom(). Test builds (TP_TEST_TRNG) can
 * replace it by the fixed stream of protocol.md 8.5 to replay the link-message vectors.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "backend.h"
#include "tp_hal_trng.h"

#ifdef TP_TEST_TRNG
static uint8_t test_label[256];
static size_t test_label_len;
static int test_on;
static uint32_t test_counter;
static uint8_t test_block[32];
static size_t test_used = 32;

void tp_trng_test_stream(const uint8_t *label, size_t len)
{
    if (len > sizeof(test_label)) {
        len = sizeof(test_label);
    }
    memcpy(test_label, label, len);
    test_label_len = len;
    test_on = 1;
    test_counter = 0;
    test_used = 32;
}

static void test_draw(uint8_t *out, size_t len)
{
    while (len > 0u) {
        if (test_used == sizeof(test_block)) {
            uint8_t ctr[4] = {(uint8_t)(test_counter >> 24), (uint8_t)(test_counter >> 16),
                              (uint8_t)(test_counter >> 8), (uint8_t)test_counter};
            tp_hal_seg segs[2] = {{test_label, test_label_len}, {ctr, 4}};
            tp_hal_sha256(segs, 2, test_block);
            test_counter++;
            test_used = 0;
        }
        *out++ = test_block[test_used++];
        len--;
    }
}
#endif

int tp_hal_trng(uint8_t *out, size_t len)
{
#ifdef TP_TEST_TRNG
    if (test_on) {
        test_draw(out, len);
        return 0;
    }
#endif
    while (len > 0u) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        out += n;
        len -= (size_t)n;
    }
    return 0;
}
