/* libFuzzer: bytes on the wire into the chip's link layer (protocol.md 12), a chip behind it. */
#include <string.h>

#include "fuzz.h"
#include "tp/link.h"
#include "tp_hal_flash.h"

static tp_chip chip;
static tp_link link_state;
static tp_persist start;

static int drop(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

static int stage(void *ctx, size_t off, const uint8_t *data, size_t len)
{
    (void)ctx;
    return tp_hal_staging_write(off, data, len);
}

static size_t run(void *ctx, size_t len, uint8_t *resp, size_t cap)
{
    (void)ctx;
    return tp_chip_run(&chip, tp_hal_staging_map(), len, resp, cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static const uint8_t boot_id[4] = {1, 2, 3, 4};
    static const uint8_t hello[] = {0xc0, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x01,
                                    0x6c, 0x1d, 0x0a, 0x57, 0x27, 0x09, 0x7f, 0x25, 0xc0};
    if (!ready) {
        fuzz_chip(&chip, 1);
        start = chip.nv;
        ready = 1;
    }
    fuzz_reset_nvm();
    tp_chip_power_on(&chip, &start, chip.code, chip.code_len);
    tp_link_io io = {drop, stage, run, NULL};
    tp_link_init(&link_state, &io, boot_id);
    if (size > 0u && (data[0] & 1u)) {
        tp_link_feed(&link_state, hello, sizeof(hello)); /* half the inputs meet an open link */
    }
    tp_link_feed(&link_state, data, size);
    return 0;
}
