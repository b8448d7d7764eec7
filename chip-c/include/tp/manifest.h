/*
 * The bundle's manifest (protocol.md 6.1): the COSE_Mac0 and its payload, as a chip reads them.
 *
 * Invariants:
 * - The COSE_Mac0 is checked within its limits (32 KiB, 4,096 items, depth 6, tag 17) and its
 *   CMAC verified under K_AUTH, in constant time, before any byte of the payload is parsed.
 * - "v" is read first once the CMAC verified; the rest only when it is 2.
 * - A payload is a manifest only with exactly its keys, each of its type and range, names,
 *   slots and regions unique, every asset's chunk count and key length consistent.
 * - Parsed values point into the manifest's bytes, which the caller keeps for the session.
 */
#ifndef TP_MANIFEST_H
#define TP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "tp/cbor.h"

#define TP_MAX_ASSETS 64u
/* protocol.md 6.1: the window of a deflated asset is 2^W bytes, W = 9..15 */
#define TP_DEFLATE_MIN_W 9u
#define TP_DEFLATE_MAX_W 15u
/* 6.1: a manifest with a deflated asset has chunks of at most this many bytes, so that a sealed
 * deflated chunk (chunk-size + 32 at most) stays within cm.chunk's 65,552 bytes (8.1) */
#define TP_DEFLATE_MAX_CHUNK 65520u

enum { TP_KIND_KEY = 0, TP_KIND_CERTIFICATE, TP_KIND_FIRMWARE, TP_KIND_CONFIG };
enum { TP_KEY_AES256 = 0, TP_KEY_EC_P256, TP_KEY_EC_P384, TP_KEY_ED25519, TP_KEY_RAW };

typedef struct {
    const uint8_t *name;
    size_t name_len;
    uint8_t kind;
    uint8_t key_type;
    uint8_t slot;
    const uint8_t *region;
    size_t region_len;
    uint64_t length;
    uint32_t chunks;
    const uint8_t *nonce; /* 7 bytes (GCM) or 8 (CCM) */
    const uint8_t *digest;
    uint8_t deflate; /* W of "deflate" (6.1): chunks are raw DEFLATE of window 2^W; 0: none */
} tp_asset;

typedef struct {
    const uint8_t *payload; /* the manifest payload the CMAC covered */
    size_t payload_len;
    const uint8_t *family;
    const uint8_t *bundle_id;
    uint32_t epoch;
    uint32_t min_svn;
    uint8_t aead;
    uint32_t chunk_size;
    uint8_t authorized;
    const uint8_t *root;
    uint32_t count;
    uint32_t nassets;
    uint32_t ndevice_keys;
    uint8_t deflated;       /* 1: an asset has "deflate" (8.4 reserves the inflater's RAM) */
    tp_cbor_in assets;      /* positioned on the first asset */
    tp_cbor_in device_keys; /* positioned on the first device key */
} tp_manifest;

enum {
    TP_MANIFEST_OK = 0,
    TP_MANIFEST_BAD = -1,      /* `bad-manifest` */
    TP_MANIFEST_VERSION = -2,  /* `bundle-version` */
    TP_MANIFEST_FAMILY = -3    /* `wrong-family`: the header names another family */
};

/* verifies the COSE_Mac0 under K_AUTH and parses its payload (see the invariants) */
int tp_manifest_open(const uint8_t *mac0, size_t len, const uint8_t k_auth[32],
                     const uint8_t family[8], tp_manifest *m);
/* a device key of 6.8: {"name", "key-type": "ec-p256", "slot"} */
typedef struct {
    const uint8_t *name;
    size_t name_len;
    uint8_t slot;
} tp_device_key;

/* the device key at index (0 .. ndevice_keys - 1); 0 or -1 */
int tp_manifest_device_key(const tp_manifest *m, uint32_t index, tp_device_key *k);
/* the asset at index (0 .. nassets - 1); 0 or -1 */
int tp_manifest_asset(const tp_manifest *m, uint32_t index, tp_asset *a);

#endif
