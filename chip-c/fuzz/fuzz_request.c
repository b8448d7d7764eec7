/* libFuzzer: request messages (protocol.md 8) into the request runner of a burned chip whose
 * software runs (half the inputs) or not: every op, its arguments and its session rules. */
#include "fuzz.h"

static tp_chip chip;
static tp_persist start;
static uint8_t resp[TP_MAX_RESPONSE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        fuzz_chip(&chip, 1);
        start = chip.nv;
        ready = 1;
    }
    fuzz_reset_nvm();
    tp_chip_power_on(&chip, &start, chip.code, chip.code_len);
    if (size > 0u && (data[size - 1u] & 1u)) {
        chip.running = 1; /* as after a boot at svn 2 */
        chip.svn = 2;
    }
    size_t n = tp_chip_run(&chip, data, size, resp, sizeof(resp));
    /* every answer is canonical CBOR within the limits of a link message */
    if (n == 0u || tp_cbor_check(resp, n, TP_LINK_MSG_ITEMS, TP_LINK_MSG_DEPTH, -1) != 0) {
        __builtin_trap();
    }
    return 0;
}
