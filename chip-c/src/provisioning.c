/*
 * The provisioning software's ops (protocol.md 8, 8.3): their dispatch, the session rules, the
 * RAM reservations of 8.4, and `lock`. FIG. 2/4 are in sealing.c and seal_assets.c, FIG. 3 in
 * install.c.
 *
 * Invariants:
 * - Without running software every software op is `unknown-command` (8.2).
 * - Every refusal of a software op ends the open session (8.3); ending a session zeroizes its
 *   keys and releases its RAM reservation.
 * - The lifecycle only advances, in one NVM commit.
 */
#include <string.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp_hal_crypto.h"

static const char *const SOFTWARE_OPS[] = {
    "oem.keygen", "oem.regen",  "seal.asset", "seal.chunk", "seal.generate",
    "seal.finish", "cm.begin",  "cm.chunk",   "cm.finish",  "lock",
};

int tp_ram_reserve(tp_chip *chip, uint32_t bytes)
{
    if (bytes > TP_RAM_BUDGET - chip->ram_reserved) {
        return -1;
    }
    chip->ram_reserved += bytes;
    return 0;
}

void tp_software_stop(tp_chip *chip, int stop)
{
    chip->session = TP_SESSION_NONE;
    chip->ram_reserved = 0;
    tp_hal_zeroize(&chip->s, sizeof(chip->s));
    if (stop) {
        chip->running = 0;
        chip->svn = 0;
        chip->sw_name_len = 0;
        chip->sw_version_len = 0;
    }
}

static void lock(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                 tp_result *res)
{
    if (tp_args_parse(args, nargs, NULL, 0) != 0) {
        res->code = TP_E_BAD_REQUEST;
        res->message = "lock takes no arguments";
        return;
    }
    if (chip->session != TP_SESSION_NONE) {
        res->code = TP_E_BAD_SEQUENCE;
        res->message = "lock: a session is open";
        return;
    }
    if (chip->nv.lifecycle != TP_LC_PROVISIONED) {
        res->code = TP_E_LIFECYCLE;
        res->message = "lock: the chip is not provisioned";
        return;
    }
    tp_persist next = chip->nv;
    next.lifecycle = TP_LC_LOCKED;
    if (tp_nvm_commit(&chip->nv, &next, NULL, 0) != 0) {
        res->code = TP_E_INTERNAL;
    } else {
        tp_cbor_put_map(ok, 1);
        tp_cbor_put_tstr(ok, "lifecycle");
        tp_cbor_put_tstr(ok, "LOCKED");
    }
    tp_hal_zeroize(&next, sizeof(next));
}

int tp_software_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                         uint64_t nargs, tp_cbor_out *ok, tp_result *res)
{
    size_t i;
    for (i = 0; i < sizeof(SOFTWARE_OPS) / sizeof(SOFTWARE_OPS[0]); i++) {
        if (strlen(SOFTWARE_OPS[i]) == op_len && memcmp(SOFTWARE_OPS[i], op, op_len) == 0) {
            break;
        }
    }
    if (i == sizeof(SOFTWARE_OPS) / sizeof(SOFTWARE_OPS[0]) || !chip->running) {
        return 0;
    }
    if (tp_sealing_dispatch(chip, op, op_len, args, nargs, ok, res) ||
        tp_seal_assets_dispatch(chip, op, op_len, args, nargs, ok, res) ||
        tp_install_dispatch(chip, op, op_len, args, nargs, ok, res)) {
        /* answered */
    } else if (strcmp(SOFTWARE_OPS[i], "lock") == 0) {
        lock(chip, args, nargs, ok, res);
    } else {
        res->code = TP_E_INTERNAL; /* a software op without its code: cannot happen */
    }
    if (res->code != TP_OK) {
        tp_software_stop(chip, 0);
    }
    return 1;
}
