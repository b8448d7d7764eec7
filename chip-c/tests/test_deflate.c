/* Deflated assets on the chip: the inflate HAL against the raw DEFLATE cases of
 * tools/deflate_h.py (protocol.md 6.6), and the manifest's "deflate" key (6.1). */
#include "support.h"

#include <string.h>

#include "deflate_vectors.h"
#include "tp/cbor.h"
#include "tp/manifest.h"
#include "tp/receipts.h"
#include "tp_hal_crypto.h"
#include "tp_hal_inflate.h"
#include "vectors.h"

#define CANARY 0xa5u
#define SLACK 64u

/* the work area and the output as the chip lays them out, each with canaries past its end */
static struct {
    _Alignas(8) uint8_t work[TP_HAL_INFLATE_WORK];
    uint8_t after_work[SLACK];
    uint8_t out[65536 + SLACK];
} ram;

static int run_case(const deflate_case *c)
{
    memset(&ram, CANARY, sizeof(ram));
    int rc = tp_hal_inflate(c->wbits, c->stream, c->stream_len, ram.out, c->length, ram.work,
                            sizeof(ram.work));
    /* never a byte written past the chunk's buffer or the work area, whatever the stream */
    for (size_t i = 0; i < SLACK; i++) {
        assert_int_equal(ram.out[c->length + i], CANARY);
        assert_int_equal(ram.after_work[i], CANARY);
    }
    return rc;
}

static void every_good_stream_inflates_to_exactly_its_plaintext(void **state)
{
    (void)state;
    assert_true(DEFLATE_GOOD_COUNT >= 8u);
    for (size_t i = 0; i < DEFLATE_GOOD_COUNT; i++) {
        const deflate_case *c = &DEFLATE_CASES[i];
        assert_non_null(c->plain);
        if (run_case(c) != 0) {
            fail_msg("%s: refused", c->name);
        }
        assert_memory_equal(ram.out, c->plain, c->length);
    }
}

/* bomb, short, truncated, no final block, trailing bytes, distance beyond 2^W or before the
 * start, invalid block type, empty: each refused, with W = 9 (two passes) and W = 15 (one) */
static void every_bad_stream_is_refused_within_its_buffer(void **state)
{
    (void)state;
    assert_true(DEFLATE_CASE_COUNT - DEFLATE_GOOD_COUNT >= 16u);
    for (size_t i = DEFLATE_GOOD_COUNT; i < DEFLATE_CASE_COUNT; i++) {
        const deflate_case *c = &DEFLATE_CASES[i];
        assert_null(c->plain);
        if (run_case(c) != -1) {
            fail_msg("%s: accepted", c->name);
        }
    }
}

/* the same distance-1000 stream is good under W = 10 (1,024): only the window refused it */
static void a_distance_is_judged_against_the_declared_window(void **state)
{
    (void)state;
    for (size_t i = 0; i < DEFLATE_CASE_COUNT; i++) {
        deflate_case c = DEFLATE_CASES[i];
        if (strcmp(c.name, "too_far_1000_w9") == 0) {
            assert_int_equal(run_case(&c), -1);
            c.wbits = 10;
            assert_int_equal(run_case(&c), 0);
            assert_memory_equal(ram.out, ram.out + 1000, 1000);
            return;
        }
    }
    fail_msg("no too_far_1000_w9 case");
}

static void arguments_out_of_range_are_refused(void **state)
{
    (void)state;
    const deflate_case *c = &DEFLATE_CASES[0];
    for (unsigned w = 0; w < 20u; w++) {
        if (w < 9u || w > 15u) {
            assert_int_equal(tp_hal_inflate(w, c->stream, c->stream_len, ram.out, c->length,
                                            ram.work, sizeof(ram.work)),
                             -1);
        }
    }
    assert_int_equal(tp_hal_inflate(15, c->stream, c->stream_len, ram.out, 0, ram.work,
                                    sizeof(ram.work)),
                     -1);
    /* a work area too small for zlib's state: refused, not overrun */
    assert_int_equal(tp_hal_inflate(15, c->stream, c->stream_len, ram.out, c->length, ram.work,
                                    1024),
                     -1);
}

/* -- the manifest's "deflate" key (6.1) ------------------------------------------------------- */
static const uint8_t FAMILY[8] = {'t', 'p', '-', 't', 'e', 's', 't', '1'};
static const uint8_t AUTH[32] = {7};

/* a manifest of one asset, MACed under AUTH: kind, and "deflate" when deflate_w >= 0 */
static size_t manifest_of(uint8_t *buf, size_t cap, const char *kind, int64_t deflate_w,
                          uint32_t chunk_size)
{
    static uint8_t payload[512], prot[128];
    static const uint8_t zero[32] = {0};
    int key = strcmp(kind, "key") == 0;
    tp_cbor_out p, h, o;
    tp_cbor_out_init(&p, payload, sizeof(payload));
    tp_cbor_put_map(&p, 9);
    tp_cbor_put_tstr(&p, "v");
    tp_cbor_put_uint(&p, 2);
    tp_cbor_put_tstr(&p, "aead");
    tp_cbor_put_uint(&p, 3);
    tp_cbor_put_tstr(&p, "epoch");
    tp_cbor_put_uint(&p, 1);
    tp_cbor_put_tstr(&p, "assets");
    tp_cbor_put_array(&p, 1);
    tp_cbor_put_map(&p, 7u + (deflate_w >= 0 ? 1u : 0u) + (key ? 1u : 0u));
    tp_cbor_put_tstr(&p, "kind");
    tp_cbor_put_tstr(&p, kind);
    tp_cbor_put_tstr(&p, "name");
    tp_cbor_put_tstr(&p, "a");
    if (key) {
        tp_cbor_put_tstr(&p, "slot");
        tp_cbor_put_uint(&p, 1);
    }
    tp_cbor_put_tstr(&p, "nonce");
    tp_cbor_put_bstr(&p, zero, 7);
    tp_cbor_put_tstr(&p, "chunks");
    tp_cbor_put_uint(&p, key ? 1u : (600u + chunk_size - 1u) / chunk_size);
    tp_cbor_put_tstr(&p, "digest");
    tp_cbor_put_bstr(&p, zero, 32);
    tp_cbor_put_tstr(&p, "length");
    tp_cbor_put_uint(&p, key ? 32u : 600u);
    if (!key) {
        tp_cbor_put_tstr(&p, "region");
        tp_cbor_put_tstr(&p, "r");
    }
    if (deflate_w >= 0) {
        tp_cbor_put_tstr(&p, "deflate");
        tp_cbor_put_uint(&p, (uint64_t)deflate_w);
    }
    if (key) {
        tp_cbor_put_tstr(&p, "key-type");
        tp_cbor_put_tstr(&p, "aes-256");
    }
    tp_cbor_put_tstr(&p, "family");
    tp_cbor_put_bstr(&p, FAMILY, 8);
    tp_cbor_put_tstr(&p, "min-svn");
    tp_cbor_put_uint(&p, 0);
    tp_cbor_put_tstr(&p, "bundle-id");
    tp_cbor_put_bstr(&p, zero, 16);
    tp_cbor_put_tstr(&p, "authorized");
    tp_cbor_put_null(&p);
    tp_cbor_put_tstr(&p, "chunk-size");
    tp_cbor_put_uint(&p, chunk_size);
    tp_cbor_out_init(&h, prot, sizeof(prot));
    tp_cbor_put_map(&h, 3);
    tp_cbor_put_uint(&h, 1);
    tp_cbor_put_int(&h, -65537);
    tp_cbor_put_uint(&h, 3);
    tp_cbor_put_tstr(&h, "application/vnd.trustprov.manifest+cbor");
    tp_cbor_put_tstr(&h, "tp-family");
    tp_cbor_put_bstr(&h, FAMILY, 8);
    assert_false(p.overflow || h.overflow);
    /* 17([protected, {}, payload, tag]); the tag over ["MAC0", protected, h'', payload] */
    tp_cbor_out_init(&o, buf, cap);
    tp_cbor_put_tag(&o, 17);
    tp_cbor_put_array(&o, 4);
    size_t prot_at = o.len;
    tp_cbor_put_bstr(&o, prot, h.len);
    size_t prot_end = o.len;
    tp_cbor_put_map(&o, 0);
    size_t payload_at = o.len;
    tp_cbor_put_bstr(&o, payload, p.len);
    size_t payload_end = o.len;
    static const uint8_t prefix[6] = {0x84, 0x64, 'M', 'A', 'C', '0'};
    static const uint8_t empty = 0x40;
    tp_hal_seg segs[4] = {{prefix, 6},
                          {buf + prot_at, prot_end - prot_at},
                          {&empty, 1},
                          {buf + payload_at, payload_end - payload_at}};
    uint8_t tag[16];
    assert_int_equal(tp_hal_cmac(AUTH, segs, 4, tag), 0);
    tp_cbor_put_bstr(&o, tag, 16);
    assert_false(o.overflow);
    return o.len;
}

static size_t manifest(uint8_t *buf, size_t cap, const char *kind, int64_t deflate_w)
{
    return manifest_of(buf, cap, kind, deflate_w, 256);
}

static void the_deflate_key_is_firmware_and_config_only_9_to_15_chunks_to_65520(void **state)
{
    (void)state;
    static uint8_t mac0[1024];
    tp_manifest m;
    tp_asset a;
    size_t n = manifest(mac0, sizeof(mac0), "firmware", -1);
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_OK);
    assert_int_equal(tp_manifest_asset(&m, 0, &a), 0);
    assert_int_equal(a.deflate, 0);
    assert_int_equal(m.deflated, 0);
    static const char *const kinds[2] = {"firmware", "config"};
    for (size_t k = 0; k < 2u; k++) {
        for (int64_t w = 0; w <= 17; w++) {
            n = manifest(mac0, sizeof(mac0), kinds[k], w);
            int got = tp_manifest_open(mac0, n, AUTH, FAMILY, &m);
            if (w < 9 || w > 15) {
                assert_int_equal(got, TP_MANIFEST_BAD);
                continue;
            }
            assert_int_equal(got, TP_MANIFEST_OK);
            assert_int_equal(tp_manifest_asset(&m, 0, &a), 0);
            assert_int_equal(a.deflate, w);
            assert_int_equal(m.deflated, 1);
            assert_int_equal(a.length, 600); /* the plaintext's length, as without "deflate" */
        }
    }
    n = manifest(mac0, sizeof(mac0), "key", -1);
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_OK);
    n = manifest(mac0, sizeof(mac0), "key", 15); /* keys are never compressed */
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_BAD);
    n = manifest(mac0, sizeof(mac0), "certificate", 15);
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_BAD);
    /* chunks of at most 65,520 bytes beside a deflated asset (a sealed one fits 65,552) */
    n = manifest_of(mac0, sizeof(mac0), "firmware", 15, 65520);
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_OK);
    n = manifest_of(mac0, sizeof(mac0), "firmware", 15, 65521);
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_BAD);
    n = manifest_of(mac0, sizeof(mac0), "firmware", -1, 65521);
    assert_int_equal(tp_manifest_open(mac0, n, AUTH, FAMILY, &m), TP_MANIFEST_OK);
}

/* the Python side's vector bundle with a deflated firmware (W = 9): its manifest opens, its
 * chunks' streams inflate to exactly the asset's bytes, and to nothing at another length */
static void the_vector_bundles_deflated_chunks_inflate_to_their_plaintext(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *mac0, *auth, *family, *domain, *installed;
        const size_t *mac0_len, *installed_len;
    } bundles[] = {
#define BUNDLE(i) {bundle_##i##_mac0, bundle_##i##_auth, bundle_##i##_family, bundle_##i##_domain, \
                   bundle_##i##_installed, &bundle_##i##_mac0_len, &bundle_##i##_installed_len}
        BUNDLE(0), BUNDLE(1), BUNDLE(2),
    };
    static uint8_t enc[4096];
    assert_int_equal(VECTOR_BUNDLE_COUNT, 3);
    assert_true(VECTOR_DEFLATED_COUNT >= 1u);
    for (size_t i = 0; i < VECTOR_DEFLATED_COUNT; i++) {
        const vector_deflated *d = &VECTOR_DEFLATED[i];
        assert_true(d->bundle < 3u);
        tp_manifest m;
        tp_asset a;
        assert_int_equal(tp_manifest_open(bundles[d->bundle].mac0, *bundles[d->bundle].mac0_len,
                                          bundles[d->bundle].auth, bundles[d->bundle].family, &m),
                         TP_MANIFEST_OK);
        assert_int_equal(m.deflated, 1);
        assert_int_equal(tp_manifest_asset(&m, d->asset, &a), 0);
        assert_int_equal(a.deflate, d->wbits);
        assert_int_equal(a.length, d->plain_len);
        assert_int_equal(a.chunks, d->nstreams);
        /* the installed encoding is the plain asset's (6.7) */
        size_t n = tp_installed_encode(&m, bundles[d->bundle].domain, enc, sizeof(enc));
        assert_int_equal(n, *bundles[d->bundle].installed_len);
        assert_memory_equal(enc, bundles[d->bundle].installed, n);
        for (size_t k = 0; k < d->nstreams; k++) {
            size_t at = k * d->chunk_size;
            size_t want = d->plain_len - at < d->chunk_size ? d->plain_len - at : d->chunk_size;
            deflate_case c = {"vector", d->wbits, d->streams[k], d->stream_lens[k], want, NULL};
            assert_int_equal(run_case(&c), 0);
            assert_memory_equal(ram.out, d->plain + at, want);
            c.length = want + 1u; /* ends short */
            assert_int_equal(run_case(&c), -1);
            c.length = want - 1u; /* would go past */
            assert_int_equal(run_case(&c), -1);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_good_stream_inflates_to_exactly_its_plaintext),
        cmocka_unit_test(every_bad_stream_is_refused_within_its_buffer),
        cmocka_unit_test(a_distance_is_judged_against_the_declared_window),
        cmocka_unit_test(arguments_out_of_range_are_refused),
        cmocka_unit_test(the_deflate_key_is_firmware_and_config_only_9_to_15_chunks_to_65520),
        cmocka_unit_test(the_vector_bundles_deflated_chunks_inflate_to_their_plaintext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
