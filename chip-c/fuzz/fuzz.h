/* Shared by the libFuzzer harnesses of chip-c (make fuzz). */
#ifndef TP_FUZZ_H
#define TP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "tp/chip.h"

void fuzz_save_nvm(void);
void fuzz_reset_nvm(void);
void fuzz_erase_nvm(void);
/* a chip of the conformance test family (protocol.md 14.1), burned, with its identity key, as
 * the NVM every input starts from; or a blank one */
void fuzz_chip(tp_chip *chip, int burned);

#endif
