/* The chip's RAM (src/ram.c): the chip and its link, the only static objects of trustprov. */
#ifndef TP_RAM_H
#define TP_RAM_H

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/link.h"

extern tp_chip tp_ram_chip;
extern tp_link tp_ram_link;
/* the software's working RAM of protocol.md 8.4: a manifest and a chunk while installing */
extern _Alignas(8) uint8_t tp_ram_arena[TP_ARENA];

#endif
