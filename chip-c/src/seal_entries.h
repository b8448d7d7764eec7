/*
 * What seal_assets.c and seal_finish.c share (not a HAL, not an API): the sealing session's
 * entries, kept in the RAM arena (protocol.md 8.4: 160 bytes of accounting each).
 */
#ifndef TP_SEAL_ENTRIES_H
#define TP_SEAL_ENTRIES_H

#include <stdint.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/ram.h"

#define KIND_DEVICE_KEY 4u

typedef struct {
    uint64_t length;
    uint32_t chunks;
    uint8_t name[TP_MAX_NAME];
    uint8_t region[TP_MAX_NAME];
    uint8_t nonce[8];
    uint8_t digest[32];
    uint8_t name_len;
    uint8_t region_len;
    uint8_t kind;
    uint8_t key_type;
    uint8_t slot;
    uint8_t deflate; /* W of "deflate" (6.1): the host sends raw DEFLATE chunks; 0: none */
} entry;

#define ENTRIES ((entry *)(void *)tp_ram_arena)
#define AFTER_ENTRIES (TP_MAX_ASSETS * sizeof(entry))

extern const char *const TP_SEAL_KINDS[5];
extern const char *const TP_SEAL_KEY_TYPES[5];

void tp_seal_refuse(tp_result *res, tp_code code, const char *message);
/* 1 if a sealing session is open, else refused `bad-sequence` */
int tp_seal_session_ok(tp_chip *chip, tp_result *res);
/* seal.finish: the manifest of the session's entries, MACed with K_AUTH (6.1) */
void tp_seal_finish(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                    tp_result *res);

#endif
