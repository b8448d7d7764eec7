/* libFuzzer: the inflate HAL (protocol.md 6.6) against a reference. Input: W - 9 (mod 7), the
 * chunk's length - 1 (2 bytes, big-endian), then the raw DEFLATE stream. The HAL must write
 * nothing past the chunk's buffer or its work area, and accept exactly when zlib, fed the
 * whole stream and asked for one output byte per call (so every distance is checked against
 * its 2^W window), ends the stream with exactly that length and no byte left; with the same
 * bytes. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tp_hal_inflate.h"

#define SLACK 64u
static struct {
    _Alignas(8) uint8_t work[TP_HAL_INFLATE_WORK];
    uint8_t after_work[SLACK];
    uint8_t out[65536 + SLACK];
} ram;
static uint8_t ref[65536];

/* 0 when zlib inflates exactly len bytes into ref, strictly within the window, then ends */
static int reference(unsigned wbits, const uint8_t *in, size_t in_len, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -(int)wbits) != Z_OK) {
        __builtin_trap();
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)in_len;
    size_t produced = 0;
    int rc = Z_OK;
    while (rc == Z_OK && produced <= len) {
        uint8_t one;
        z.next_out = &one;
        z.avail_out = 1;
        rc = inflate(&z, Z_NO_FLUSH);
        if (z.avail_out == 0u) {
            if (produced < len) {
                ref[produced] = one;
            }
            produced++;
        } else if (rc == Z_OK && z.avail_in == 0u) {
            rc = Z_BUF_ERROR; /* no output and no input left: the stream ends early */
        }
    }
    int ok = rc == Z_STREAM_END && produced == len && z.avail_in == 0u;
    inflateEnd(&z);
    return ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3u) {
        return 0;
    }
    unsigned wbits = 9u + data[0] % 7u;
    size_t len = 1u + ((size_t)data[1] << 8 | data[2]);
    memset(&ram, 0xa5, sizeof(ram));
    int got = tp_hal_inflate(wbits, data + 3, size - 3u, ram.out, len, ram.work, sizeof(ram.work));
    for (size_t i = 0; i < SLACK; i++) {
        if (ram.out[len + i] != 0xa5u || ram.after_work[i] != 0xa5u) {
            __builtin_trap();
        }
    }
    int want = reference(wbits, data + 3, size - 3u, len);
    if (got != want || (got == 0 && memcmp(ram.out, ref, len) != 0)) {
        __builtin_trap();
    }
    return 0;
}
