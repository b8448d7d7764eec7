/*
 * TRNG HAL: the chip's true random number generator. 0 with len bytes written, or -1 (the
 * caller answers `internal` and commits nothing). protocol.md 8.5 fixes the order of the draws.
 */
#ifndef TP_HAL_TRNG_H
#define TP_HAL_TRNG_H

#include <stddef.h>
#include <stdint.h>

int tp_hal_trng(uint8_t *out, size_t len);

#endif
