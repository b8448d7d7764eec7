/*
 * Request runner: decodes a request message (protocol.md 8, 8.1), routes it to the boot ROM or
 * the running software, and encodes the answer. Invariants in include/tp/chip.h.
 */
#include "tp/chip.h"

#include <string.h>

#include "tp/config.h"

static const char *const CODE_NAMES[TP_E_COUNT] = {
    "ok",           "malformed",        "unknown-command", "immutable-written",
    "identity-exists", "bad-certificate", "lifecycle",     "bad-software",
    "bad-signature", "code-mismatch",   "rollback",        "bad-request",
    "bad-sequence", "bad-sealed-value", "wrong-family",    "bad-share",
    "bad-manifest", "bundle-version",   "software-too-old", "domain-mismatch",
    "stale-epoch",  "unauthorized",     "ram-budget",      "bad-chunk",
    "bad-asset",    "incomplete",       "capacity",        "internal"};

const char *tp_code_name(tp_code code)
{
    return (unsigned)code < TP_E_COUNT ? CODE_NAMES[code] : "internal";
}

static int args_parse(const tp_cbor_in *args, uint64_t count, tp_arg *spec, size_t nspec,
                      int names_only);

int tp_args_parse(const tp_cbor_in *args, uint64_t count, tp_arg *spec, size_t nspec)
{
    return args_parse(args, count, spec, nspec, 0);
}

int tp_args_names(const tp_cbor_in *args, uint64_t count, tp_arg *spec, size_t nspec)
{
    return args_parse(args, count, spec, nspec, 1);
}

static int args_parse(const tp_cbor_in *args, uint64_t count, tp_arg *spec, size_t nspec,
                      int names_only)
{
    tp_cbor_in in = *args;
    for (size_t i = 0; i < nspec; i++) {
        spec[i].present = 0;
    }
    for (uint64_t k = 0; k < count; k++) {
        const uint8_t *key;
        size_t key_len;
        tp_arg *a = NULL;
        if (tp_cbor_tstr(&in, &key, &key_len) != 0) {
            return -1;
        }
        for (size_t i = 0; i < nspec; i++) {
            if (strlen(spec[i].key) == key_len && memcmp(spec[i].key, key, key_len) == 0) {
                a = &spec[i];
            }
        }
        if (a == NULL || a->present) {
            return -1;
        }
        a->present = 1;
        a->item = in;
        a->data = in.buf + in.pos;
        int ok;
        switch (names_only ? TP_ARG_ANY : a->type) {
        case TP_ARG_BSTR:
            ok = tp_cbor_bstr(&in, &a->data, &a->len) == 0;
            break;
        case TP_ARG_TSTR:
            ok = tp_cbor_tstr(&in, &a->data, &a->len) == 0;
            break;
        case TP_ARG_UINT:
            ok = tp_cbor_uint(&in, &a->uint) == 0;
            break;
        default:
            ok = tp_cbor_skip(&in) == 0;
            a->len = (size_t)(in.buf + in.pos - a->data);
            break;
        }
        if (!ok) {
            return -1;
        }
    }
    for (size_t i = 0; i < nspec; i++) {
        if (!spec[i].present && !spec[i].optional) {
            return -1;
        }
    }
    return 0;
}

void tp_chip_power_on(tp_chip *chip, const tp_persist *nv, const uint8_t *code, size_t code_len)
{
    memset(chip, 0, sizeof(*chip));
    chip->nv = *nv;
    chip->code = code;
    chip->code_len = code_len;
}

void tp_chip_idle(tp_chip *chip)
{
    tp_software_stop(chip, 1);
}

static size_t error_answer(uint8_t *resp, size_t cap, tp_code code, const char *message)
{
    tp_cbor_out out;
    tp_cbor_out_init(&out, resp, cap);
    tp_cbor_put_map(&out, 2);
    tp_cbor_put_tstr(&out, "error");
    tp_cbor_put_tstr(&out, tp_code_name(code));
    tp_cbor_put_tstr(&out, "message");
    if (code == TP_E_INTERNAL || message == NULL) {
        tp_cbor_put_tstr(&out, "internal error");
    } else {
        size_t n = strlen(message);
        tp_cbor_put_text(&out, (const uint8_t *)message,
                         n > TP_MAX_ERROR_MESSAGE ? TP_MAX_ERROR_MESSAGE : n);
    }
    return out.overflow ? 0u : out.len;
}

static const uint8_t OK_PREFIX[4] = {0xa1, 0x62, 'o', 'k'};

size_t tp_chip_run(tp_chip *chip, const uint8_t *req, size_t len, uint8_t *resp, size_t cap)
{
    tp_cbor_in in;
    uint64_t n;
    const uint8_t *op;
    size_t op_len;

    if (cap < 64u) {
        return 0;
    }
    if (tp_cbor_check(req, len, TP_LINK_MSG_ITEMS, TP_LINK_MSG_DEPTH, TP_CBOR_NO_TAG) != 0) {
        return error_answer(resp, cap, TP_E_MALFORMED,
                            "request: not canonical CBOR within the limits of a link message");
    }
    tp_cbor_in_init(&in, req, len);
    /* {"op": tstr, "args": map}: "op" sorts first */
    if (tp_cbor_map(&in, &n) != 0 || n != 2u || tp_cbor_tstr_is(&in, "op") != 1 ||
        tp_cbor_tstr(&in, &op, &op_len) != 0 || op_len == 0u || op_len > TP_MAX_OP_NAME ||
        tp_cbor_tstr_is(&in, "args") != 1) {
        return error_answer(resp, cap, TP_E_MALFORMED,
                            "request: not a map of exactly op and args");
    }
    tp_cbor_in args = in;
    uint64_t nargs;
    if (tp_cbor_map(&args, &nargs) != 0) {
        return error_answer(resp, cap, TP_E_MALFORMED, "request: args is not a map");
    }
    tp_cbor_in keys = args;
    for (uint64_t k = 0; k < nargs; k++) {
        if (tp_cbor_peek(&keys) != TP_CBOR_TSTR || tp_cbor_skip(&keys) != 0 ||
            tp_cbor_skip(&keys) != 0) {
            return error_answer(resp, cap, TP_E_MALFORMED, "request: an args key is not text");
        }
    }

    tp_cbor_out ok;
    tp_result res = {TP_OK, NULL};
    memcpy(resp, OK_PREFIX, sizeof(OK_PREFIX));
    tp_cbor_out_init(&ok, resp + sizeof(OK_PREFIX), cap - sizeof(OK_PREFIX));
    if (!tp_rom_dispatch(chip, op, op_len, &args, nargs, &ok, &res) &&
        !tp_software_dispatch(chip, op, op_len, &args, nargs, &ok, &res)) {
        return error_answer(resp, cap, TP_E_UNKNOWN_COMMAND,
                            chip->running ? "unknown command" : "unknown command (no software booted)");
    }
    if (res.code != TP_OK) {
        return error_answer(resp, cap, res.code, res.message);
    }
    if (ok.overflow) {
        return error_answer(resp, cap, TP_E_INTERNAL, NULL);
    }
    return sizeof(OK_PREFIX) + ok.len;
}
