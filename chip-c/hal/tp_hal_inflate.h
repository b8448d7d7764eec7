/*
 * Inflate HAL: raw DEFLATE (RFC 1951) of a deflated asset's chunk (protocol.md 6.2, 6.6), one
 * chunk at a time, into a buffer of exactly the chunk's length. A chip maker replaces the
 * backend (inflate_zlib.c) with its own decompressor; the rules below do not change.
 *
 * Invariants every backend keeps:
 * - it uses no memory but the caller's work area (TP_HAL_INFLATE_WORK bytes, aligned to 8),
 *   the output buffer and its stack: no allocation, no window of its own;
 * - it never writes past out[out_len - 1], whatever the stream (a bomb stops there);
 * - it returns 0 only when the stream is valid raw DEFLATE, uses no distance beyond 2^wbits,
 *   reaches its final block having produced exactly out_len bytes and is followed by no byte.
 */
#ifndef TP_HAL_INFLATE_H
#define TP_HAL_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/* the inflater's state: zlib's inflate_state is 7,160 bytes on a 64-bit host, less on 32 bits */
#define TP_HAL_INFLATE_WORK 8192u

/* inflates in[0..in_len) with a window of 2^wbits (9..15) into exactly out_len bytes of out;
 * out may be read as the inflater's scratch window while it checks the stream. 0 or -1; on -1
 * out holds no meaning. The caller zeroizes work and out when it is done with them. */
int tp_hal_inflate(unsigned wbits, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t out_len, void *work, size_t work_len);

#endif
