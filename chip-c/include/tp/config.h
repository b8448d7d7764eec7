/*
 * trustprov chip side: build-time configuration.
 *
 * Every static buffer of trustprov's C code takes its size from a constant of this file, and
 * every constant is a number of docs/protocol.md (section 1.1 limits, section 8.4 RAM budget,
 * section 12 link layer). Nothing is allocated at run time.
 */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

/* protocol.md 8.4: working RAM of the software; what sessions reserve is counted against it */
#define TP_RAM_BUDGET 65536u
#define TP_SESSION_RAM 512u
#define TP_SEALED_ENTRY_RAM 160u
/* What the software's working RAM must really hold while installing: the manifest (m bytes) and
 * one chunk's plaintext (c); the sealed copy stays in the staging area. The largest m + c that
 * 8.4's accounting (512 + m + 2c + 32 <= 65,536, m <= 32,768) admits is 48,880. */
#define TP_ARENA 48896u
/* 8.4: what cm.begin reserves beside 2c + 32 when an asset is deflated (the inflater's state,
 * 8,192, and 2 x 16 bytes of compressed overhead in the chunk buffers) */
#define TP_DEFLATE_RAM 8224u
/* A deflated chunk takes, at the arena's end, its output (c), its sealed plaintext (c + 16) and
 * the inflater's work area (TP_HAL_INFLATE_WORK, aligned to 8) below them; the manifest must fit
 * below that: m + 2c + 16 + 8,192 + 8 <= TP_ARENA. This port's limit (docs/porting.md): the
 * accounting of 8.4 admits m + 2c <= 56,768, this arena m + 2c <= 40,680. */
#define TP_DEFLATE_ARENA(m, c) ((m) + 2u * (c) + 16u + 8192u + 8u)

/* protocol.md 12.2: what this chip announces in its HELLO-ANSWER */
#define TP_LINK_VERSION 1u
/* responses kept for resending (1..255): one keeps the chip within 64 KiB of RAM (make size) */
#define TP_LINK_WINDOW 1u
#define TP_LINK_MAX_FRAME 2048u /* payload bytes per frame (64..65535) */
/* a request is reassembled in the flash staging area (5.3), not in RAM */
#define TP_LINK_MAX_MESSAGE (4u * 1024u * 1024u + 64u * 1024u)
#define TP_LINK_HEADER 8u
#define TP_LINK_OVERHEAD 12u /* header + CRC */
/* K of 12.3: min(65536, ceil(max message / max frame)) fragments of one request at most */
#define TP_LINK_MAX_FRAGMENTS_RAW ((TP_LINK_MAX_MESSAGE + TP_LINK_MAX_FRAME - 1u) / TP_LINK_MAX_FRAME)
#define TP_LINK_MAX_FRAGMENTS \
    (TP_LINK_MAX_FRAGMENTS_RAW < 65536u ? TP_LINK_MAX_FRAGMENTS_RAW : 65536u)

/* the largest answer a chip gives: a receipt holding a 4 KiB certificate (6.8) */
#define TP_MAX_RESPONSE 6144u

/* protocol.md 1: CBOR limits of a link message */
#define TP_LINK_MSG_ITEMS 16384u
#define TP_LINK_MSG_DEPTH 8u
#define TP_CBOR_MAX_DEPTH 8u /* the deepest limit of any input a chip decodes */

/* protocol.md 1.1 */
#define TP_MAX_OP_NAME 32u
#define TP_MAX_NAME 64u
#define TP_MAX_LOT 64u
#define TP_MAX_ERROR_MESSAGE 300u
#define TP_MAX_CERTIFICATE 4096u
#define TP_MAX_IMMUTABLE 4096u
#define TP_MAX_INSTALLED 32768u
/* installed key values: 64 records of slot, length and up to 64 bytes (protocol.md 6.1) */
#define TP_KEY_RECORD 66u
#define TP_MAX_KEY_VALUES (64u * TP_KEY_RECORD)
/* the flash this port gives the regions' contents, all regions together */
#define TP_MAX_REGION_BYTES (256u * 1024u)
#define TP_MAX_SOFTWARE (4u * 1024u * 1024u)
#define TP_UID_LEN 16u
#define TP_FAMILY_LEN 8u
#define TP_SECRET_LEN 32u

/* immutable image (8.6) and signed software (5) decoding limits */
#define TP_IMAGE_ITEMS 32u
#define TP_IMAGE_DEPTH 3u
#define TP_SOFTWARE_ITEMS 64u
#define TP_SOFTWARE_DEPTH 6u
#define TP_HEADER_ITEMS 32u
#define TP_HEADER_DEPTH 2u

/* protocol.md 12.5: the chip's inactivity timeout */
#define TP_IDLE_TIMEOUT_MS 10000u

#endif
