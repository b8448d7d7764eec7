/*
 * The inflate HAL over zlib (Debian's zlib1g), with no allocation: zlib's zalloc hook hands out
 * the caller's work area once (the inflate_state) and refuses everything else, so zlib can
 * never get a window. Two passes over a chunk, each with the state reset:
 * 1. only when out_len > 2^wbits: inflateBack() with out's first 2^wbits bytes as its circular
 *    window and an output callback that counts (refusing past out_len). It is fed one byte at a
 *    time, which keeps it on its exact decoder (its fast path needs 6 bytes of input): a
 *    distance beyond 2^wbits is refused there ("invalid distance too far back"), which the
 *    one-shot pass below cannot see, as it only knows the bytes produced so far.
 * 2. inflate() with Z_FINISH, in one call, into exactly out_len bytes: a stream that ends
 *    early or would produce more stops before its end, and zlib then asks for its window to
 *    resume later; the refusal makes that Z_MEM_ERROR. Success is Z_STREAM_END with the output
 *    full and no input left (no byte after the final block).
 * When out_len <= 2^wbits pass 2 alone is exact: no distance can exceed the bytes produced.
 */
#define ZLIB_CONST
#include <zlib.h>

#include "tp_hal_inflate.h"

typedef struct {
    void *work;
    size_t cap;
    int taken;
} work_area;

static voidpf work_alloc(voidpf opaque, uInt items, uInt size)
{
    work_area *w = (work_area *)opaque;
    if (w->taken || size == 0u || items > w->cap / size) {
        return Z_NULL; /* a second allocation is the window: refused */
    }
    w->taken = 1;
    return w->work;
}

static void work_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    (void)p;
}

static void work_stream(z_stream *z, work_area *w, void *work, size_t cap)
{
    w->work = work;
    w->cap = cap;
    w->taken = 0;
    *z = (z_stream){0};
    z->zalloc = work_alloc;
    z->zfree = work_free;
    z->opaque = w;
}

/* pass 1's input (one byte per call) and output (counted, never kept) */
typedef struct {
    const uint8_t *next;
    size_t left;
    size_t produced;
    size_t cap;
} check_io;

static unsigned one_byte(void *desc, z_const unsigned char **buf)
{
    check_io *io = (check_io *)desc;
    if (io->left == 0u) {
        return 0u;
    }
    *buf = io->next;
    io->next++;
    io->left--;
    return 1u;
}

static int count_out(void *desc, unsigned char *buf, unsigned len)
{
    check_io *io = (check_io *)desc;
    (void)buf;
    if (len > io->cap - io->produced) {
        return 1; /* more than out_len: a bomb */
    }
    io->produced += len;
    return 0;
}

static int check_distances(unsigned wbits, const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len, void *work, size_t work_len)
{
    z_stream z;
    work_area w;
    check_io io = {in, in_len, 0u, out_len};
    work_stream(&z, &w, work, work_len);
    if (inflateBackInit(&z, (int)wbits, out) != Z_OK) {
        return -1;
    }
    int rc = inflateBack(&z, one_byte, &io, count_out, &io);
    int ok = rc == Z_STREAM_END && io.produced == out_len && io.left == 0u && z.avail_in == 0u;
    (void)inflateBackEnd(&z);
    return ok ? 0 : -1;
}

int tp_hal_inflate(unsigned wbits, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t out_len, void *work, size_t work_len)
{
    if (wbits < 9u || wbits > 15u || in_len == 0u || out_len == 0u || in_len > UINT32_MAX ||
        out_len > UINT32_MAX || work_len > TP_HAL_INFLATE_WORK) {
        return -1;
    }
    if (out_len > ((size_t)1 << wbits) &&
        check_distances(wbits, in, in_len, out, out_len, work, work_len) != 0) {
        return -1;
    }
    z_stream z;
    work_area w;
    work_stream(&z, &w, work, work_len);
    if (inflateInit2(&z, -(int)wbits) != Z_OK) {
        return -1;
    }
    z.next_in = in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    int rc = inflate(&z, Z_FINISH);
    int ok = rc == Z_STREAM_END && z.avail_out == 0u && z.avail_in == 0u;
    (void)inflateEnd(&z);
    return ok ? 0 : -1;
}
