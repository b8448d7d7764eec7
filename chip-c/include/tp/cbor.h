/*
 * Bounded canonical CBOR (docs/protocol.md 1): a structure check, a reader and a writer.
 *
 * Invariants:
 * - tp_cbor_check() is run on every untrusted input before anything reads it: it counts every
 *   head against an item limit and every array, map or tag against a depth limit, refuses
 *   indefinite lengths, reserved additional information, non-shortest heads, floats and simple
 *   values other than false/true/null, any tag but the one allowed on the outermost item,
 *   lengths beyond the input, map keys not strictly ascending in bytewise order (so no
 *   duplicates) and trailing bytes. It uses a fixed stack of TP_CBOR_MAX_DEPTH frames.
 * - The reader never reads past its buffer, even on unchecked input: every accessor returns
 *   -1 instead.
 * - The writer never writes past its buffer: an overflow sets a flag and later writes are no-ops.
 *   Canonical key order in maps the writer emits is its caller's duty (tests pin each answer).
 */
#ifndef TP_CBOR_H
#define TP_CBOR_H

#include <stddef.h>
#include <stdint.h>

enum {
    TP_CBOR_UINT = 0,
    TP_CBOR_NINT = 1,
    TP_CBOR_BSTR = 2,
    TP_CBOR_TSTR = 3,
    TP_CBOR_ARRAY = 4,
    TP_CBOR_MAP = 5,
    TP_CBOR_TAG = 6,
    TP_CBOR_SIMPLE = 7
};

#define TP_CBOR_FALSE 20u
#define TP_CBOR_TRUE 21u
#define TP_CBOR_NULL 22u
#define TP_CBOR_NO_TAG (-1)

/* 0: well formed, canonical and within the limits; -1 otherwise */
int tp_cbor_check(const uint8_t *buf, size_t len, uint32_t max_items, uint32_t max_depth,
                  int64_t allowed_tag);

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} tp_cbor_in;

void tp_cbor_in_init(tp_cbor_in *in, const uint8_t *buf, size_t len);
/* reads a head: its major type and argument (a length, count, value or simple value) */
int tp_cbor_head(tp_cbor_in *in, int *major, uint64_t *arg);
/* the next item's major type without consuming it; -1 at the end */
int tp_cbor_peek(const tp_cbor_in *in);
int tp_cbor_skip(tp_cbor_in *in);
int tp_cbor_uint(tp_cbor_in *in, uint64_t *value);
/* an integer of either sign, within int64 */
int tp_cbor_int(tp_cbor_in *in, int64_t *value);
int tp_cbor_bstr(tp_cbor_in *in, const uint8_t **data, size_t *len);
int tp_cbor_tstr(tp_cbor_in *in, const uint8_t **data, size_t *len);
int tp_cbor_array(tp_cbor_in *in, uint64_t *count);
int tp_cbor_map(tp_cbor_in *in, uint64_t *count);
int tp_cbor_tag(tp_cbor_in *in, uint64_t *tag);
/* true/false; -1 if the item is no bool */
int tp_cbor_bool(tp_cbor_in *in, int *value);
/* 0 and consumed if the next item is null, 1 (not consumed) if it is something else */
int tp_cbor_null(tp_cbor_in *in);
/* 1 if the text item equals the C string (consumed either way), 0 if not, -1 if no text */
int tp_cbor_tstr_is(tp_cbor_in *in, const char *text);

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int overflow;
} tp_cbor_out;

void tp_cbor_out_init(tp_cbor_out *out, uint8_t *buf, size_t cap);
void tp_cbor_put_head(tp_cbor_out *out, int major, uint64_t arg);
void tp_cbor_put_uint(tp_cbor_out *out, uint64_t value);
void tp_cbor_put_int(tp_cbor_out *out, int64_t value);
void tp_cbor_put_bstr(tp_cbor_out *out, const uint8_t *data, size_t len);
void tp_cbor_put_text(tp_cbor_out *out, const uint8_t *data, size_t len);
void tp_cbor_put_tstr(tp_cbor_out *out, const char *text);
void tp_cbor_put_array(tp_cbor_out *out, uint64_t count);
void tp_cbor_put_map(tp_cbor_out *out, uint64_t count);
void tp_cbor_put_tag(tp_cbor_out *out, uint64_t tag);
void tp_cbor_put_bool(tp_cbor_out *out, int value);
void tp_cbor_put_null(tp_cbor_out *out);
void tp_cbor_put_raw(tp_cbor_out *out, const uint8_t *data, size_t len);

#endif
