/*
 * Flash/OTP HAL: the chip's non-volatile memory as src/nvm.c uses it, and the staging area.
 *
 * - Two NVM slots of tp_hal_nvm_slot_size() bytes each, memory-mapped for reading (XIP flash),
 *   erased and programmed whole-slot by src/nvm.c (A/B commits: docs/porting.md). Programming a
 *   slot never touches the other; tp_hal_nvm_sync() returns once the bytes are durable.
 * - The staging area: where the link reassembles a request (protocol.md 5.3: flash on a chip
 *   with 64 KiB of RAM), at least TP_LINK_MAX_MESSAGE bytes, memory-mapped for reading.
 */
#ifndef TP_HAL_FLASH_H
#define TP_HAL_FLASH_H

#include <stddef.h>
#include <stdint.h>

#define TP_NVM_SLOTS 2u

size_t tp_hal_nvm_slot_size(void);
const uint8_t *tp_hal_nvm_map(unsigned slot);
int tp_hal_nvm_erase(unsigned slot);
int tp_hal_nvm_program(unsigned slot, size_t offset, const uint8_t *data, size_t len);
int tp_hal_nvm_sync(unsigned slot);

int tp_hal_staging_write(size_t offset, const uint8_t *data, size_t len);
const uint8_t *tp_hal_staging_map(void);

#endif
