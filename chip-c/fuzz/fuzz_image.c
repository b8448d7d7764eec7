/* libFuzzer: immutable images (protocol.md 8.6) through rom.burn on a blank chip. */
#include "fuzz.h"
#include "tp/cbor.h"

static tp_chip chip;
static tp_persist start;
static uint8_t req[8192];
static uint8_t resp[TP_MAX_RESPONSE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    tp_cbor_out o;
    if (!ready) {
        fuzz_chip(&chip, 0);
        start = chip.nv;
        ready = 1;
    }
    fuzz_reset_nvm();
    tp_chip_power_on(&chip, &start, chip.code, chip.code_len);
    tp_cbor_out_init(&o, req, sizeof(req));
    tp_cbor_put_map(&o, 2);
    tp_cbor_put_tstr(&o, "op");
    tp_cbor_put_tstr(&o, "rom.burn");
    tp_cbor_put_tstr(&o, "args");
    tp_cbor_put_map(&o, 1);
    tp_cbor_put_tstr(&o, "image");
    tp_cbor_put_bstr(&o, data, size);
    if (o.overflow) {
        return 0;
    }
    size_t n = tp_chip_run(&chip, req, o.len, resp, sizeof(resp));
    if (n == 0u) {
        __builtin_trap();
    }
    /* a burned image then reads back as status without a secret: checked by the unit tests */
    n = tp_chip_run(&chip, (const uint8_t *)"\xa2\x62op\x6arom.status\x64" "args\xa0", 21, resp,
                    sizeof(resp));
    if (n == 0u) {
        __builtin_trap();
    }
    return 0;
}
