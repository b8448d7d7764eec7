/*
 * Bounded canonical CBOR, docs/protocol.md section 1. See include/tp/cbor.h for the invariants.
 */
#include "tp/cbor.h"

#include <string.h>

#include "tp/config.h"

/* one head from buf at *pos, shortest form only; -1 on any defect */
static int read_head(const uint8_t *buf, size_t len, size_t *pos, int *major, uint64_t *arg,
                     int strict)
{
    if (*pos >= len) {
        return -1;
    }
    uint8_t ib = buf[*pos];
    unsigned ai = ib & 31u;
    *major = ib >> 5;
    *pos += 1;
    if (ai < 24u) {
        *arg = ai;
        return 0;
    }
    if (ai > 27u) {
        return -1; /* 28..30 reserved, 31 indefinite length or break */
    }
    size_t n = (size_t)1 << (ai - 24u);
    if (len - *pos < n) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | buf[*pos + i];
    }
    *pos += n;
    if (strict) {
        static const uint64_t least[4] = {24u, 256u, 65536u, 4294967296u};
        if (v < least[ai - 24u]) {
            return -1; /* not the shortest form */
        }
    }
    *arg = v;
    return 0;
}

typedef struct {
    uint64_t remaining;
    uint64_t index;
    size_t key_start;
    size_t prev_key_start;
    size_t prev_key_len;
    uint8_t is_map;
} check_frame;

static int key_after(const uint8_t *buf, const check_frame *f, size_t start, size_t end)
{
    if (f->index == 0) {
        return 0;
    }
    size_t len = end - start;
    size_t n = len < f->prev_key_len ? len : f->prev_key_len;
    int c = memcmp(buf + f->prev_key_start, buf + start, n);
    if (c < 0 || (c == 0 && f->prev_key_len < len)) {
        return 0;
    }
    return -1; /* out of order, or a repeated key */
}

int tp_cbor_check(const uint8_t *buf, size_t len, uint32_t max_items, uint32_t max_depth,
                  int64_t allowed_tag)
{
    check_frame stack[TP_CBOR_MAX_DEPTH];
    size_t sp = 0;
    size_t pos = 0;
    uint32_t items = 0;
    int root_done = 0;

    if (buf == NULL || max_depth > TP_CBOR_MAX_DEPTH) {
        return -1;
    }
    while (!root_done) {
        check_frame *top = sp > 0 ? &stack[sp - 1] : NULL;
        if (top != NULL && top->is_map && (top->index % 2u) == 0u) {
            top->key_start = pos;
        }
        size_t head_at = pos;
        int major;
        uint64_t arg;
        if (read_head(buf, len, &pos, &major, &arg, 1) != 0) {
            return -1;
        }
        if (++items > max_items) {
            return -1;
        }
        int container = 0;
        switch (major) {
        case TP_CBOR_UINT:
        case TP_CBOR_NINT:
            break;
        case TP_CBOR_BSTR:
        case TP_CBOR_TSTR:
            if (arg > len - pos) {
                return -1;
            }
            pos += (size_t)arg;
            break;
        case TP_CBOR_ARRAY:
        case TP_CBOR_MAP: {
            uint64_t need = major == TP_CBOR_MAP ? 2u : 1u;
            if (arg > (len - pos) / need) {
                return -1; /* each item takes at least one byte */
            }
            if (sp + 1u > max_depth) {
                return -1;
            }
            if (arg > 0u) {
                container = 1;
                stack[sp].remaining = arg * need;
                stack[sp].index = 0;
                stack[sp].is_map = major == TP_CBOR_MAP;
                stack[sp].prev_key_len = 0;
                stack[sp].prev_key_start = 0;
                stack[sp].key_start = 0;
                sp++;
            }
            break;
        }
        case TP_CBOR_TAG:
            if (head_at != 0 || allowed_tag < 0 || arg != (uint64_t)allowed_tag) {
                return -1;
            }
            if (sp + 1u > max_depth) {
                return -1;
            }
            container = 1;
            stack[sp].remaining = 1;
            stack[sp].index = 0;
            stack[sp].is_map = 0;
            sp++;
            break;
        default: /* simple values: only false, true, null; no floats */
            if (arg != TP_CBOR_FALSE && arg != TP_CBOR_TRUE && arg != TP_CBOR_NULL) {
                return -1;
            }
            if ((buf[head_at] & 31u) >= 24u) {
                return -1;
            }
            break;
        }
        if (container) {
            continue;
        }
        /* an item ended at pos: close every container it completes */
        for (;;) {
            if (sp == 0) {
                root_done = 1;
                break;
            }
            check_frame *f = &stack[sp - 1];
            if (f->is_map && (f->index % 2u) == 0u) {
                if (key_after(buf, f, f->key_start, pos) != 0) {
                    return -1;
                }
                f->prev_key_start = f->key_start;
                f->prev_key_len = pos - f->key_start;
            }
            f->index++;
            f->remaining--;
            if (f->remaining > 0u) {
                break;
            }
            sp--; /* the container is complete: it is an item of its parent */
        }
    }
    return pos == len ? 0 : -1;
}

void tp_cbor_in_init(tp_cbor_in *in, const uint8_t *buf, size_t len)
{
    in->buf = buf;
    in->len = len;
    in->pos = 0;
}

int tp_cbor_head(tp_cbor_in *in, int *major, uint64_t *arg)
{
    size_t pos = in->pos;
    if (read_head(in->buf, in->len, &pos, major, arg, 0) != 0) {
        return -1;
    }
    in->pos = pos;
    return 0;
}

int tp_cbor_peek(const tp_cbor_in *in)
{
    if (in->pos >= in->len) {
        return -1;
    }
    return in->buf[in->pos] >> 5;
}

int tp_cbor_skip(tp_cbor_in *in)
{
    uint64_t pending = 1;
    while (pending > 0u) {
        int major;
        uint64_t arg;
        if (tp_cbor_head(in, &major, &arg) != 0) {
            return -1;
        }
        pending--;
        switch (major) {
        case TP_CBOR_BSTR:
        case TP_CBOR_TSTR:
            if (arg > in->len - in->pos) {
                return -1;
            }
            in->pos += (size_t)arg;
            break;
        case TP_CBOR_ARRAY:
            if (arg > in->len - in->pos) {
                return -1;
            }
            pending += arg;
            break;
        case TP_CBOR_MAP:
            if (arg > (in->len - in->pos) / 2u) {
                return -1;
            }
            pending += 2u * arg;
            break;
        case TP_CBOR_TAG:
            pending += 1u;
            break;
        default:
            break;
        }
    }
    return 0;
}

static int expect(tp_cbor_in *in, int want, uint64_t *arg)
{
    size_t saved = in->pos;
    int major;
    if (tp_cbor_head(in, &major, arg) != 0 || major != want) {
        in->pos = saved;
        return -1;
    }
    return 0;
}

int tp_cbor_uint(tp_cbor_in *in, uint64_t *value)
{
    return expect(in, TP_CBOR_UINT, value);
}

int tp_cbor_int(tp_cbor_in *in, int64_t *value)
{
    size_t saved = in->pos;
    int major;
    uint64_t arg;
    if (tp_cbor_head(in, &major, &arg) != 0 || (major != TP_CBOR_UINT && major != TP_CBOR_NINT) ||
        arg > (uint64_t)INT64_MAX) {
        in->pos = saved;
        return -1;
    }
    *value = major == TP_CBOR_UINT ? (int64_t)arg : -1 - (int64_t)arg;
    return 0;
}

static int string(tp_cbor_in *in, int want, const uint8_t **data, size_t *len)
{
    size_t saved = in->pos;
    uint64_t arg;
    if (expect(in, want, &arg) != 0) {
        return -1;
    }
    if (arg > in->len - in->pos) {
        in->pos = saved;
        return -1;
    }
    *data = in->buf + in->pos;
    *len = (size_t)arg;
    in->pos += (size_t)arg;
    return 0;
}

int tp_cbor_bstr(tp_cbor_in *in, const uint8_t **data, size_t *len)
{
    return string(in, TP_CBOR_BSTR, data, len);
}

int tp_cbor_tstr(tp_cbor_in *in, const uint8_t **data, size_t *len)
{
    return string(in, TP_CBOR_TSTR, data, len);
}

int tp_cbor_array(tp_cbor_in *in, uint64_t *count)
{
    return expect(in, TP_CBOR_ARRAY, count);
}

int tp_cbor_map(tp_cbor_in *in, uint64_t *count)
{
    return expect(in, TP_CBOR_MAP, count);
}

int tp_cbor_tag(tp_cbor_in *in, uint64_t *tag)
{
    return expect(in, TP_CBOR_TAG, tag);
}

int tp_cbor_bool(tp_cbor_in *in, int *value)
{
    size_t saved = in->pos;
    uint64_t arg;
    if (expect(in, TP_CBOR_SIMPLE, &arg) != 0 || (arg != TP_CBOR_FALSE && arg != TP_CBOR_TRUE)) {
        in->pos = saved;
        return -1;
    }
    *value = arg == TP_CBOR_TRUE;
    return 0;
}

int tp_cbor_null(tp_cbor_in *in)
{
    if (in->pos < in->len && in->buf[in->pos] == 0xf6u) {
        in->pos++;
        return 0;
    }
    return 1;
}

int tp_cbor_tstr_is(tp_cbor_in *in, const char *text)
{
    const uint8_t *s;
    size_t n;
    if (tp_cbor_tstr(in, &s, &n) != 0) {
        return -1;
    }
    return n == strlen(text) && memcmp(s, text, n) == 0;
}

void tp_cbor_out_init(tp_cbor_out *out, uint8_t *buf, size_t cap)
{
    out->buf = buf;
    out->cap = cap;
    out->len = 0;
    out->overflow = 0;
}

void tp_cbor_put_raw(tp_cbor_out *out, const uint8_t *data, size_t len)
{
    if (out->overflow || len > out->cap - out->len) {
        out->overflow = 1;
        return;
    }
    if (len > 0u) {
        memcpy(out->buf + out->len, data, len);
    }
    out->len += len;
}

void tp_cbor_put_head(tp_cbor_out *out, int major, uint64_t arg)
{
    uint8_t head[9];
    size_t n;
    uint8_t mt = (uint8_t)(major << 5);
    if (arg < 24u) {
        head[0] = (uint8_t)(mt | arg);
        n = 1;
    } else if (arg <= 0xffu) {
        head[0] = mt | 24u;
        n = 2;
    } else if (arg <= 0xffffu) {
        head[0] = mt | 25u;
        n = 3;
    } else if (arg <= 0xffffffffu) {
        head[0] = mt | 26u;
        n = 5;
    } else {
        head[0] = mt | 27u;
        n = 9;
    }
    for (size_t i = 1; i < n; i++) {
        head[i] = (uint8_t)(arg >> (8u * (n - 1u - i)));
    }
    tp_cbor_put_raw(out, head, n);
}

void tp_cbor_put_uint(tp_cbor_out *out, uint64_t value)
{
    tp_cbor_put_head(out, TP_CBOR_UINT, value);
}

void tp_cbor_put_int(tp_cbor_out *out, int64_t value)
{
    if (value >= 0) {
        tp_cbor_put_head(out, TP_CBOR_UINT, (uint64_t)value);
    } else {
        tp_cbor_put_head(out, TP_CBOR_NINT, (uint64_t)(-1 - value));
    }
}

void tp_cbor_put_bstr(tp_cbor_out *out, const uint8_t *data, size_t len)
{
    tp_cbor_put_head(out, TP_CBOR_BSTR, len);
    tp_cbor_put_raw(out, data, len);
}

void tp_cbor_put_text(tp_cbor_out *out, const uint8_t *data, size_t len)
{
    tp_cbor_put_head(out, TP_CBOR_TSTR, len);
    tp_cbor_put_raw(out, data, len);
}

void tp_cbor_put_tstr(tp_cbor_out *out, const char *text)
{
    tp_cbor_put_text(out, (const uint8_t *)text, strlen(text));
}

void tp_cbor_put_array(tp_cbor_out *out, uint64_t count)
{
    tp_cbor_put_head(out, TP_CBOR_ARRAY, count);
}

void tp_cbor_put_map(tp_cbor_out *out, uint64_t count)
{
    tp_cbor_put_head(out, TP_CBOR_MAP, count);
}

void tp_cbor_put_tag(tp_cbor_out *out, uint64_t tag)
{
    tp_cbor_put_head(out, TP_CBOR_TAG, tag);
}

void tp_cbor_put_bool(tp_cbor_out *out, int value)
{
    uint8_t b = value ? 0xf5u : 0xf4u;
    tp_cbor_put_raw(out, &b, 1);
}

void tp_cbor_put_null(tp_cbor_out *out)
{
    uint8_t b = 0xf6u;
    tp_cbor_put_raw(out, &b, 1);
}
