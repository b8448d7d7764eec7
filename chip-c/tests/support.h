/* Helpers of the chip-c unit tests: a fresh NVM file per test, hex, requests. */
#ifndef TP_TEST_SUPPORT_H
#define TP_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tp/chip.h"

/* a new, empty NVM file in a temporary directory (the flash HAL's backend opens it) */
void support_fresh_nvm(void);
/* hex to bytes; returns the length */
size_t support_hex(const char *hex, uint8_t *out, size_t cap);
/* a blank chip with this UID and lot, committed and powered on */
void support_blank_chip(tp_chip *chip, const uint8_t uid[16], const char *lot);
/* {"op": op, "args": {}} */
size_t support_request(uint8_t *out, size_t cap, const char *op);
/* runs a request; returns the error code's name, or "ok" */
const char *support_run(tp_chip *chip, const uint8_t *req, size_t len, uint8_t *resp,
                        size_t *resp_len);

/* the conformance test family's immutable image (protocol.md 14.1) */
extern const char TEST_FAMILY_IMAGE_HEX[];

#endif
