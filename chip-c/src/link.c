/*
 * The chip's end of the link layer, docs/protocol.md 12. Invariants in include/tp/link.h.
 */
#include "tp/link.h"

#include <string.h>

uint32_t tp_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    /* CRC-32/ISO-HDLC, bitwise: reflected polynomial 0xEDB88320 */
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

void tp_link_init(tp_link *link, const tp_link_io *io, const uint8_t boot_id[4])
{
    memset(link, 0, sizeof(*link));
    link->io = *io;
    memcpy(link->boot_id, boot_id, 4);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

typedef struct {
    tp_link *link;
    uint8_t buf[64];
    size_t n;
    int failed;
} stuffer;

static void stuff_flush(stuffer *s)
{
    if (s->n > 0u && !s->failed && s->link->io.write(s->link->io.ctx, s->buf, s->n) != 0) {
        s->failed = 1;
    }
    s->n = 0;
}

static void stuff_raw(stuffer *s, uint8_t b)
{
    if (s->n == sizeof(s->buf)) {
        stuff_flush(s);
    }
    s->buf[s->n++] = b;
}

static void stuff(stuffer *s, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == TP_SLIP_END) {
            stuff_raw(s, TP_SLIP_ESC);
            stuff_raw(s, TP_SLIP_ESC_END);
        } else if (data[i] == TP_SLIP_ESC) {
            stuff_raw(s, TP_SLIP_ESC);
            stuff_raw(s, TP_SLIP_ESC_ESC);
        } else {
            stuff_raw(s, data[i]);
        }
    }
}

int tp_link_send(tp_link *link, uint8_t type, uint8_t flags, uint16_t seq, uint16_t frag,
                 const uint8_t *payload, size_t len)
{
    uint8_t header[TP_LINK_HEADER];
    uint8_t crc[4];
    stuffer s;

    if (len > TP_LINK_MAX_FRAME) {
        return -1;
    }
    header[0] = type;
    header[1] = flags;
    put16(header + 2, seq);
    put16(header + 4, frag);
    put16(header + 6, (uint32_t)len);
    put32(crc, tp_crc32(tp_crc32(0, payload, len), header, sizeof(header)));
    s.link = link;
    s.n = 0;
    s.failed = 0;
    stuff_raw(&s, TP_SLIP_END);
    stuff(&s, header, sizeof(header));
    stuff(&s, payload, len);
    stuff(&s, crc, sizeof(crc));
    stuff_raw(&s, TP_SLIP_END);
    stuff_flush(&s);
    return s.failed ? -1 : 0;
}

static void control(tp_link *link, uint8_t type, uint16_t seq, uint16_t frag)
{
    (void)tp_link_send(link, type, 0, seq, frag, NULL, 0);
}

static void nak_once(tp_link *link)
{
    if (link->has_link && !link->nak_sent) {
        link->nak_sent = 1;
        control(link, TP_FRAME_NAK, link->next_seq, (uint16_t)link->expect_frag);
    }
}

static void send_response(tp_link *link, const tp_link_cached *c)
{
    size_t off = 0;
    uint16_t frag = 0;
    do {
        size_t n = c->len - off;
        if (n > TP_LINK_MAX_FRAME) {
            n = TP_LINK_MAX_FRAME;
        }
        uint8_t more = off + n < c->len ? TP_FLAG_MORE : 0u;
        if (tp_link_send(link, TP_FRAME_RESPONSE, more, c->seq, frag, c->data + off, n) != 0) {
            return;
        }
        off += n;
        frag++;
    } while (off < c->len);
}

static void hello(tp_link *link, const uint8_t *payload, size_t len)
{
    uint8_t answer[16];
    if (len != 5u) {
        return; /* 12.2: ignored */
    }
    if (!link->has_link || memcmp(link->link_id, payload + 1, 4) != 0) {
        link->has_link = 1;
        memcpy(link->link_id, payload + 1, 4);
        link->next_seq = (uint16_t)(get16(link->boot_id) ^ get16(link->link_id));
        link->expect_frag = 0;
        link->msg_len = 0;
        link->nak_sent = 0;
        for (size_t i = 0; i < TP_LINK_WINDOW; i++) {
            link->cache[i].valid = 0;
        }
    }
    answer[0] = TP_LINK_VERSION;
    answer[1] = TP_LINK_WINDOW;
    put16(answer + 2, TP_LINK_MAX_FRAME);
    put32(answer + 4, TP_LINK_MAX_MESSAGE);
    memcpy(answer + 8, link->boot_id, 4);
    memcpy(answer + 12, link->link_id, 4);
    (void)tp_link_send(link, TP_FRAME_HELLO_ANSWER, 0, 0, 0, answer, sizeof(answer));
}

static void run_message(tp_link *link, uint16_t seq)
{
    tp_link_cached *c = &link->cache[link->cache_next];
    link->cache_next = (link->cache_next + 1u) % TP_LINK_WINDOW;
    c->valid = 0;
    c->len = (uint32_t)link->io.run(link->io.ctx, link->msg_len, c->data, sizeof(c->data));
    c->seq = seq;
    c->valid = 1;
    link->requests_run++;
    link->next_seq = (uint16_t)(seq + 1u);
    link->expect_frag = 0;
    link->msg_len = 0;
    send_response(link, c);
}

static void request(tp_link *link, uint8_t flags, uint16_t seq, uint16_t frag,
                    const uint8_t *payload, size_t len)
{
    if (!link->has_link) {
        control(link, TP_FRAME_RESET, seq, frag);
        return;
    }
    uint16_t d = (uint16_t)(seq - link->next_seq);
    int more = (flags & TP_FLAG_MORE) != 0u;
    if (d == 0u && frag == link->expect_frag) {
        /* 12.3, in this order: 1 too large, 2 past K fragments, 3 an empty fragment with MORE */
        uint8_t reason = len > TP_LINK_MAX_MESSAGE - link->msg_len          ? 1u
                         : more && frag == TP_LINK_MAX_FRAGMENTS - 1u ? 2u
                         : more && len == 0u                           ? 3u
                                                                       : 0u;
        if (reason != 0u) {
            /* the partial message is dropped: fragment 0 of the same seq is expected */
            link->msg_len = 0;
            link->expect_frag = 0;
            link->nak_sent = 0;
            (void)tp_link_send(link, TP_FRAME_ERROR, 0, seq, frag, &reason, 1);
            return;
        }
        if (len > 0u && link->io.stage(link->io.ctx, link->msg_len, payload, len) != 0) {
            return; /* not taken: the host resends it */
        }
        link->msg_len += len;
        link->nak_sent = 0;
        if (more) {
            link->expect_frag++;
            control(link, TP_FRAME_ACK, seq, frag);
        } else {
            run_message(link, seq);
        }
        return;
    }
    if (d == 0u && frag < link->expect_frag) {
        control(link, TP_FRAME_ACK, seq, frag);
        return;
    }
    if (d >= (uint16_t)(65536u - TP_LINK_WINDOW)) {
        if (!more) {
            for (size_t i = 0; i < TP_LINK_WINDOW; i++) {
                if (link->cache[i].valid && link->cache[i].seq == seq) {
                    send_response(link, &link->cache[i]);
                    return;
                }
            }
        }
        control(link, TP_FRAME_ACK, seq, frag);
        return;
    }
    nak_once(link);
}

static void segment(tp_link *link)
{
    const uint8_t *b = link->body;
    size_t n = link->body_len;

    if (n == 0u && !link->bad) {
        return; /* END END */
    }
    if (link->bad || n < TP_LINK_OVERHEAD) {
        nak_once(link);
        return;
    }
    size_t len = get16(b + 6);
    uint8_t type = b[0];
    uint8_t flags = b[1];
    if (len != n - TP_LINK_OVERHEAD || len > TP_LINK_MAX_FRAME || type < TP_FRAME_HELLO ||
        type > TP_FRAME_ERROR || (flags & ~TP_FLAG_MORE) != 0u) {
        nak_once(link);
        return;
    }
    const uint8_t *payload = b + TP_LINK_HEADER;
    const uint8_t *c = payload + len;
    uint32_t want = ((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | c[3];
    if (tp_crc32(tp_crc32(0, payload, len), b, TP_LINK_HEADER) != want) {
        nak_once(link);
        return;
    }
    link->valid_frames++;
    if (type == TP_FRAME_HELLO) {
        hello(link, payload, len);
    } else if (type == TP_FRAME_REQUEST) {
        request(link, flags, get16(b + 2), get16(b + 4), payload, len);
    }
    /* the chip's own frame types are ignored */
}

uint32_t tp_link_feed(tp_link *link, const uint8_t *data, size_t len)
{
    uint32_t before = link->valid_frames;
    for (size_t i = 0; i < len; i++) {
        uint8_t x = data[i];
        if (x == TP_SLIP_END) {
            if (link->in_escape) {
                link->bad = 1;
            }
            segment(link);
            link->body_len = 0;
            link->run_len = 0;
            link->in_escape = 0;
            link->bad = 0;
            continue;
        }
        link->run_len++;
        if (link->bad) {
            continue; /* dropped up to the next END */
        }
        if (link->in_escape) {
            link->in_escape = 0;
            if (x == TP_SLIP_ESC_END) {
                x = TP_SLIP_END;
            } else if (x == TP_SLIP_ESC_ESC) {
                x = TP_SLIP_ESC;
            } else {
                link->bad = 1;
                continue;
            }
        } else if (x == TP_SLIP_ESC) {
            link->in_escape = 1;
            continue;
        }
        if (link->body_len == sizeof(link->body)) {
            link->bad = 1;
            continue;
        }
        link->body[link->body_len++] = x;
    }
    return link->valid_frames - before;
}
