/*
 * Flash HAL in memory for the fuzzers: every input starts from the same NVM (fuzz_reset_nvm),
 * so a run depends on its input only. It also shows the HAL's size: a port's flash driver is
 * this much.
 */
#include <string.h>

#include "fuzz.h"
#include "tp/config.h"
#include "tp_hal_flash.h"

#define SLOT_SIZE (320u * 1024u) /* >= TP_NVM_HEADER + TP_NVM_BODY */

static uint8_t slots[TP_NVM_SLOTS][SLOT_SIZE];
static uint8_t pristine[TP_NVM_SLOTS][SLOT_SIZE];
static uint8_t staging[TP_LINK_MAX_MESSAGE];
static int dirty[TP_NVM_SLOTS];

void fuzz_save_nvm(void)
{
    memcpy(pristine, slots, sizeof(slots));
    memset(dirty, 0, sizeof(dirty));
}

void fuzz_reset_nvm(void)
{
    for (unsigned i = 0; i < TP_NVM_SLOTS; i++) {
        if (dirty[i]) {
            memcpy(slots[i], pristine[i], SLOT_SIZE);
            dirty[i] = 0;
        }
    }
}

void fuzz_erase_nvm(void)
{
    memset(slots, 0xff, sizeof(slots));
}

size_t tp_hal_nvm_slot_size(void)
{
    return SLOT_SIZE;
}

const uint8_t *tp_hal_nvm_map(unsigned slot)
{
    return slot < TP_NVM_SLOTS ? slots[slot] : NULL;
}

int tp_hal_nvm_erase(unsigned slot)
{
    if (slot >= TP_NVM_SLOTS) {
        return -1;
    }
    memset(slots[slot], 0xff, SLOT_SIZE);
    dirty[slot] = 1;
    return 0;
}

int tp_hal_nvm_program(unsigned slot, size_t offset, const uint8_t *data, size_t len)
{
    if (slot >= TP_NVM_SLOTS || offset > SLOT_SIZE || len > SLOT_SIZE - offset) {
        return -1;
    }
    memcpy(slots[slot] + offset, data, len);
    dirty[slot] = 1;
    return 0;
}

int tp_hal_nvm_sync(unsigned slot)
{
    return slot < TP_NVM_SLOTS ? 0 : -1;
}

int tp_hal_staging_write(size_t offset, const uint8_t *data, size_t len)
{
    if (offset > sizeof(staging) || len > sizeof(staging) - offset) {
        return -1;
    }
    memcpy(staging + offset, data, len);
    return 0;
}

const uint8_t *tp_hal_staging_map(void)
{
    return staging;
}
