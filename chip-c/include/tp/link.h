/*
 * The chip's end of the link layer, docs/protocol.md section 12.
 *
 * Invariants:
 * - A request message runs exactly once, in sequence order; duplicates are answered from the
 *   cache of the last TP_LINK_WINDOW responses, never run again.
 * - A frame is taken only after its CRC, type, flags and length checked (12.1); a segment that
 *   is not a valid body draws at most one NAK per position and never an ACK.
 * - The receive buffer holds one destuffed body (12 + max frame bytes); a longer run without
 *   END is dropped up to the next END. Requests are reassembled in the staging area the
 *   platform gives (flash on silicon, 5.3), never beyond TP_LINK_MAX_MESSAGE nor
 *   TP_LINK_MAX_FRAGMENTS (K of 12.3) fragments; only a message's last fragment may be empty.
 * - Without a HELLO since power-on every REQUEST is answered RESET and nothing runs.
 */
#ifndef TP_LINK_H
#define TP_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "tp/config.h"

enum {
    TP_FRAME_HELLO = 1,
    TP_FRAME_HELLO_ANSWER = 2,
    TP_FRAME_REQUEST = 3,
    TP_FRAME_RESPONSE = 4,
    TP_FRAME_ACK = 5,
    TP_FRAME_NAK = 6,
    TP_FRAME_RESET = 7,
    TP_FRAME_ERROR = 8
};
#define TP_FLAG_MORE 1u
#define TP_SLIP_END 0xC0u
#define TP_SLIP_ESC 0xDBu
#define TP_SLIP_ESC_END 0xDCu
#define TP_SLIP_ESC_ESC 0xDDu

/* the platform's side of a link: the UART writer, the staging area and the request runner */
typedef struct {
    /* writes bytes to the wire; returns 0 or -1 */
    int (*write)(void *ctx, const uint8_t *data, size_t len);
    /* stores a fragment of the request at offset; returns 0 or -1 */
    int (*stage)(void *ctx, size_t offset, const uint8_t *data, size_t len);
    /* runs the staged request of len bytes; writes the response, returns its length */
    size_t (*run)(void *ctx, size_t len, uint8_t *response, size_t cap);
    void *ctx;
} tp_link_io;

typedef struct {
    uint16_t seq;
    uint8_t valid;
    uint32_t len;
    uint8_t data[TP_MAX_RESPONSE];
} tp_link_cached;

typedef struct {
    tp_link_io io;
    uint8_t boot_id[4];
    uint8_t link_id[4];
    uint8_t has_link;
    uint8_t nak_sent;
    uint16_t next_seq;
    uint32_t expect_frag;
    size_t msg_len;
    uint32_t cache_next;
    tp_link_cached cache[TP_LINK_WINDOW];
    /* receive state: one destuffed body */
    uint8_t body[TP_LINK_OVERHEAD + TP_LINK_MAX_FRAME];
    size_t body_len;
    size_t run_len;
    uint8_t in_escape;
    uint8_t bad;
    /* counters a test or a board can read */
    uint32_t valid_frames;
    uint32_t requests_run;
} tp_link;

uint32_t tp_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* power-on: no link, a fresh boot id (drawn by the caller from the TRNG) */
void tp_link_init(tp_link *link, const tp_link_io *io, const uint8_t boot_id[4]);
/* bytes from the wire; returns the number of valid frames among them */
uint32_t tp_link_feed(tp_link *link, const uint8_t *data, size_t len);
/* sends one frame (SLIP-stuffed, with its CRC); 0 or -1 */
int tp_link_send(tp_link *link, uint8_t type, uint8_t flags, uint16_t seq, uint16_t frag,
                 const uint8_t *payload, size_t len);

#endif
