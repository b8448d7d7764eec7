/*
 * The chip's RAM: every static object of trustprov's C in one place, each sized by
 * include/tp/config.h, so `make size` counts them all (bss). The platform's main loop uses
 * these two and nothing of its own.
 */
#include "tp/ram.h"

tp_chip tp_ram_chip;
tp_link tp_ram_link;
_Alignas(8) uint8_t tp_ram_arena[TP_ARENA];
