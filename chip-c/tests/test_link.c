/* The chip's end of the link layer (protocol.md 12) against the vectors of 12.6. */
#include "support.h"

#include <string.h>

#include "tp/link.h"
#include "vectors.h"

static uint8_t wire[1 << 16];
static size_t wire_len;
static uint8_t message[1 << 16];
static size_t runs;
static size_t last_message_len;

static int cap_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    assert_true(wire_len + len <= sizeof(wire));
    memcpy(wire + wire_len, data, len);
    wire_len += len;
    return 0;
}

static int cap_stage(void *ctx, size_t off, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (off + len > sizeof(message)) {
        return -1;
    }
    memcpy(message + off, data, len);
    return 0;
}

static size_t fixed_run(void *ctx, size_t len, uint8_t *resp, size_t cap)
{
    (void)ctx;
    (void)cap;
    runs++;
    last_message_len = len;
    static const uint8_t ok[] = {0xa1, 0x62, 'o', 'k', 0xa0};
    memcpy(resp, ok, sizeof(ok));
    return sizeof(ok);
}

typedef struct {
    uint8_t type, flags;
    uint16_t seq, frag;
    size_t len;
    uint8_t payload[64];
} frame;

/* destuffs the captured wire into frames (the host's side, written out for the test) */
static size_t frames_out(frame *out, size_t max)
{
    size_t n = 0;
    uint8_t body[4096];
    size_t blen = 0;
    for (size_t i = 0; i < wire_len; i++) {
        uint8_t x = wire[i];
        if (x == TP_SLIP_END) {
            if (blen >= 12u && n < max) {
                frame *f = &out[n++];
                f->type = body[0];
                f->flags = body[1];
                f->seq = (uint16_t)((body[2] << 8) | body[3]);
                f->frag = (uint16_t)((body[4] << 8) | body[5]);
                f->len = (size_t)((body[6] << 8) | body[7]);
                assert_int_equal(f->len, blen - 12u);
                uint32_t crc = tp_crc32(tp_crc32(0, body + 8, f->len), body, 8);
                const uint8_t *c = body + 8 + f->len;
                assert_int_equal(crc, ((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) |
                                          ((uint32_t)c[2] << 8) | c[3]);
                memcpy(f->payload, body + 8, f->len < 64u ? f->len : 64u);
            }
            blen = 0;
            continue;
        }
        if (x == TP_SLIP_ESC) {
            x = wire[++i] == TP_SLIP_ESC_END ? TP_SLIP_END : TP_SLIP_ESC;
        }
        body[blen++] = x;
    }
    wire_len = 0;
    return n;
}

static tp_link link_state;
static const uint8_t BOOT_ID[4] = {0xb0, 0x07, 0x5e, 0xed};

static int setup(void **state)
{
    (void)state;
    tp_link_io io = {cap_write, cap_stage, fixed_run, NULL};
    tp_link_init(&link_state, &io, BOOT_ID);
    wire_len = 0;
    runs = 0;
    return 0;
}

static void feed_vector(size_t i)
{
    tp_link_feed(&link_state, VECTOR_FRAMES[i].wire, VECTOR_FRAMES[i].wire_len);
}

static void crc_check_value(void **state)
{
    (void)state;
    assert_int_equal(tp_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
}

static void encoder_matches_every_frame_vector(void **state)
{
    (void)state;
    for (size_t i = 0; i < VECTOR_FRAME_COUNT; i++) {
        const vector_frame *v = &VECTOR_FRAMES[i];
        wire_len = 0;
        assert_int_equal(tp_link_send(&link_state, v->type, v->more ? TP_FLAG_MORE : 0, v->seq,
                                      v->frag, v->payload, v->payload_len),
                         0);
        assert_int_equal(wire_len, v->wire_len);
        assert_memory_equal(wire, v->wire, v->wire_len);
    }
}

static void request_before_hello_is_reset(void **state)
{
    (void)state;
    frame f[4];
    feed_vector(2); /* REQUEST rom.status */
    assert_int_equal(frames_out(f, 4), 1);
    assert_int_equal(f[0].type, TP_FRAME_RESET);
    assert_int_equal(f[0].seq, 0xdc1a);
    assert_int_equal(runs, 0);
}

static void hello_then_request_runs_once(void **state)
{
    (void)state;
    frame f[4];
    feed_vector(0); /* HELLO, link id 6c1d0a57 */
    assert_int_equal(frames_out(f, 4), 1);
    assert_int_equal(f[0].type, TP_FRAME_HELLO_ANSWER);
    assert_int_equal(f[0].len, 16);
    static const uint8_t tail[8] = {0xb0, 0x07, 0x5e, 0xed, 0x6c, 0x1d, 0x0a, 0x57};
    assert_int_equal(f[0].payload[0], 1);
    assert_int_equal(f[0].payload[1], TP_LINK_WINDOW);
    assert_memory_equal(f[0].payload + 8, tail, 8);
    feed_vector(0); /* a duplicate HELLO: the same answer, nothing reset */
    assert_int_equal(frames_out(f, 4), 1);
    assert_int_equal(f[0].type, TP_FRAME_HELLO_ANSWER);

    feed_vector(2); /* REQUEST rom.status at the first sequence number dc1a */
    assert_int_equal(runs, 1);
    assert_int_equal(last_message_len, VECTOR_FRAMES[2].payload_len);
    assert_memory_equal(message, VECTOR_FRAMES[2].payload, VECTOR_FRAMES[2].payload_len);
    assert_int_equal(wire_len, VECTOR_FRAMES[4].wire_len); /* RESPONSE {"ok": {}} */
    assert_memory_equal(wire, VECTOR_FRAMES[4].wire, VECTOR_FRAMES[4].wire_len);
    wire_len = 0;
    feed_vector(2); /* the same last fragment again: the cached response, not a second run */
    assert_int_equal(runs, 1);
    assert_memory_equal(wire, VECTOR_FRAMES[4].wire, VECTOR_FRAMES[4].wire_len);
}

static void three_fragments_ack_ack_response(void **state)
{
    (void)state;
    frame f[8];
    /* a link id whose first sequence number is 0x0102, the vectors' fragmented message */
    uint8_t hello[5] = {1, 0xb1, 0x05, 0x00, 0x00};
    tp_link_send(&link_state, TP_FRAME_HELLO, 0, 0, 0, hello, 5);
    uint8_t copy[64];
    size_t n = wire_len;
    memcpy(copy, wire, n);
    wire_len = 0;
    tp_link_feed(&link_state, copy, n);
    frames_out(f, 8);
    feed_vector(9);
    feed_vector(10);
    assert_int_equal(runs, 0);
    feed_vector(11);
    assert_int_equal(frames_out(f, 8), 3);
    assert_int_equal(f[0].type, TP_FRAME_ACK);
    assert_int_equal(f[0].frag, 0);
    assert_int_equal(f[1].type, TP_FRAME_ACK);
    assert_int_equal(f[1].frag, 1);
    assert_int_equal(f[2].type, TP_FRAME_RESPONSE);
    assert_int_equal(f[2].seq, 0x0102);
    assert_int_equal(runs, 1);
    assert_int_equal(last_message_len, VECTOR_FRAMES[9].payload_len +
                                           VECTOR_FRAMES[10].payload_len +
                                           VECTOR_FRAMES[11].payload_len);
    feed_vector(9); /* an earlier fragment of a message already run: ACKed again */
    assert_int_equal(frames_out(f, 8), 1);
    assert_int_equal(f[0].type, TP_FRAME_ACK);
    assert_int_equal(runs, 1);
}

static void bad_crc_draws_one_nak_and_no_ack(void **state)
{
    (void)state;
    frame f[4];
    feed_vector(0);
    frames_out(f, 4);
    uint8_t bad[64];
    memcpy(bad, VECTOR_FRAMES[2].wire, VECTOR_FRAMES[2].wire_len);
    bad[VECTOR_FRAMES[2].wire_len - 3] ^= 0x01; /* a CRC byte */
    tp_link_feed(&link_state, bad, VECTOR_FRAMES[2].wire_len);
    tp_link_feed(&link_state, bad, VECTOR_FRAMES[2].wire_len);
    assert_int_equal(frames_out(f, 4), 1);
    assert_int_equal(f[0].type, TP_FRAME_NAK);
    assert_int_equal(f[0].seq, 0xdc1a);
    assert_int_equal(f[0].frag, 0);
    assert_int_equal(runs, 0);
    static const uint8_t junk[] = {1, 2, 3, 0xdb, 0x00, 4};
    tp_link_feed(&link_state, junk, sizeof(junk)); /* no END: dropped at the next END */
    feed_vector(2);
    assert_int_equal(runs, 1); /* resynchronized on the frame's own END */
    assert_int_equal(frames_out(f, 4), 1);
    assert_int_equal(f[0].type, TP_FRAME_RESPONSE);
}

static void later_message_is_naked_not_run(void **state)
{
    (void)state;
    frame f[4];
    feed_vector(0);
    frames_out(f, 4);
    tp_link_send(&link_state, TP_FRAME_REQUEST, 0, 0xdc1b, 0, (const uint8_t *)"x", 1);
    uint8_t copy[64];
    size_t n = wire_len;
    memcpy(copy, wire, n);
    wire_len = 0;
    tp_link_feed(&link_state, copy, n);
    assert_int_equal(frames_out(f, 4), 1);
    assert_int_equal(f[0].type, TP_FRAME_NAK);
    assert_int_equal(f[0].seq, 0xdc1a);
    assert_int_equal(runs, 0);
}

/* K of 12.3: min(65536, ceil(max message / max frame)) */
static void fragment_k_minus_1_with_more_is_error_2(void **state)
{
    (void)state;
    frame f[2];
    feed_vector(0);
    frames_out(f, 2);
    uint8_t one[32];
    const uint8_t byte = 0x5a;
    uint32_t k = TP_LINK_MAX_FRAGMENTS;
    assert_int_equal(k, (TP_LINK_MAX_MESSAGE + TP_LINK_MAX_FRAME - 1u) / TP_LINK_MAX_FRAME);
    for (uint32_t frag = 0; frag < k; frag++) {
        wire_len = 0;
        tp_link_send(&link_state, TP_FRAME_REQUEST, TP_FLAG_MORE, 0xdc1a, (uint16_t)frag, &byte,
                     1);
        size_t n = wire_len;
        memcpy(one, wire, n);
        wire_len = 0;
        tp_link_feed(&link_state, one, n);
    }
    assert_int_equal(frames_out(f, 2), 1);
    assert_int_equal(f[0].type, TP_FRAME_ERROR);
    assert_int_equal(f[0].frag, k - 1u);
    assert_int_equal(f[0].payload[0], 2);
    assert_int_equal(runs, 0);
}

/* 12.3: only a message's last fragment may be empty; the partial message is dropped and
 * fragment 0 of the same seq is expected again */
static void empty_fragment_with_more_is_error_3(void **state)
{
    (void)state;
    frame f[2];
    uint8_t one[32];
    const uint8_t byte = 0x5a;
    feed_vector(0);
    frames_out(f, 2);
    for (uint16_t frag = 0; frag < 2u; frag++) {
        wire_len = 0;
        tp_link_send(&link_state, TP_FRAME_REQUEST, TP_FLAG_MORE, 0xdc1a, frag,
                     frag == 0u ? &byte : NULL, frag == 0u ? 1u : 0u);
        size_t n = wire_len;
        memcpy(one, wire, n);
        wire_len = 0;
        tp_link_feed(&link_state, one, n);
    }
    assert_int_equal(frames_out(f, 2), 1); /* fragment 0's ACK was cleared with the wire */
    assert_int_equal(f[0].type, TP_FRAME_ERROR);
    assert_int_equal(f[0].frag, 1);
    assert_int_equal(f[0].payload[0], 3);
    assert_int_equal(runs, 0);
    /* the same seq runs from fragment 0 again: an empty request is one empty last fragment */
    wire_len = 0;
    tp_link_send(&link_state, TP_FRAME_REQUEST, 0, 0xdc1a, 0, NULL, 0);
    size_t n = wire_len;
    memcpy(one, wire, n);
    wire_len = 0;
    tp_link_feed(&link_state, one, n);
    assert_int_equal(runs, 1);
    assert_int_equal(last_message_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(crc_check_value, setup),
        cmocka_unit_test_setup(encoder_matches_every_frame_vector, setup),
        cmocka_unit_test_setup(request_before_hello_is_reset, setup),
        cmocka_unit_test_setup(hello_then_request_runs_once, setup),
        cmocka_unit_test_setup(three_fragments_ack_ack_response, setup),
        cmocka_unit_test_setup(bad_crc_draws_one_nak_and_no_ack, setup),
        cmocka_unit_test_setup(later_message_is_naked_not_run, setup),
        cmocka_unit_test_setup(fragment_k_minus_1_with_more_is_error_2, setup),
        cmocka_unit_test_setup(empty_fragment_with_more_is_error_3, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
