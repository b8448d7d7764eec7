/*
 * The installed encoding, the status view of it and the receipt (protocol.md 6.7, 6.8, 8.1).
 * Invariants in include/tp/receipts.h.
 */
#include "tp/receipts.h"

#include <string.h>

#include "tp/config.h"
#include "tp_hal_crypto.h"

static const char *const KEY_TYPE_NAMES[] = {"aes-256", "ec-p256", "ec-p384", "ed25519", "raw"};
static const char PROFILE[] = "tag:trustprov.dev,2026:receipt/1";

int tp_region_before(const tp_asset *a, const tp_asset *b)
{
    if (a->region_len != b->region_len) {
        return a->region_len < b->region_len;
    }
    return memcmp(a->region, b->region, a->region_len) < 0;
}

/* the manifest's region assets by region: indexes, sorted */
static uint32_t sorted(const tp_manifest *m, int keys, uint8_t order[TP_MAX_ASSETS])
{
    tp_asset a, b;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nassets; i++) {
        if (tp_manifest_asset(m, i, &a) != 0 || (a.kind == TP_KIND_KEY) != keys) {
            continue;
        }
        uint32_t j = n++;
        while (j > 0u) {
            (void)tp_manifest_asset(m, order[j - 1u], &b);
            int before = keys ? a.slot < b.slot : tp_region_before(&a, &b);
            if (!before) {
                break;
            }
            order[j] = order[j - 1u];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    return n;
}

size_t tp_installed_encode(const tp_manifest *m, const uint8_t domain[16], uint8_t *buf,
                           size_t cap)
{
    uint8_t order[TP_MAX_ASSETS];
    tp_asset a;
    tp_cbor_out o;
    tp_cbor_out_init(&o, buf, cap);
    tp_cbor_put_array(&o, 7);
    tp_cbor_put_tstr(&o, "trustprov-installed");
    tp_cbor_put_uint(&o, 1);
    tp_cbor_put_bstr(&o, domain, 16);
    tp_cbor_put_bstr(&o, m->bundle_id, 16);
    tp_cbor_put_uint(&o, m->epoch);
    /* the slots: key assets and device keys (6.8), by slot number */
    struct {
        uint8_t slot, index, device;
    } refs[TP_MAX_ASSETS];
    uint32_t n = 0;
    tp_device_key k;
    for (uint32_t i = 0; i < m->nassets + m->ndevice_keys && n < TP_MAX_ASSETS; i++) {
        int device = i >= m->nassets;
        uint8_t slot;
        if (device) {
            if (tp_manifest_device_key(m, i - m->nassets, &k) != 0) {
                return 0;
            }
            slot = k.slot;
        } else if (tp_manifest_asset(m, i, &a) == 0 && a.kind == TP_KIND_KEY) {
            slot = a.slot;
        } else {
            continue;
        }
        uint32_t j = n++;
        while (j > 0u && refs[j - 1u].slot > slot) {
            refs[j] = refs[j - 1u];
            j--;
        }
        refs[j].slot = slot;
        refs[j].index = (uint8_t)(device ? i - m->nassets : i);
        refs[j].device = (uint8_t)device;
    }
    tp_cbor_put_map(&o, n);
    for (uint32_t i = 0; i < n; i++) {
        tp_cbor_put_uint(&o, refs[i].slot);
        tp_cbor_put_array(&o, 3);
        if (refs[i].device) {
            /* [name, "ec-p256", SHA-256(CBOR ["tp-device-key", name, key-type, slot])] */
            uint8_t item[8 + 14 + 2 + TP_MAX_NAME + 8 + 2];
            uint8_t digest[32];
            tp_cbor_out d;
            (void)tp_manifest_device_key(m, refs[i].index, &k);
            tp_cbor_out_init(&d, item, sizeof(item));
            tp_cbor_put_array(&d, 4);
            tp_cbor_put_tstr(&d, "tp-device-key");
            tp_cbor_put_text(&d, k.name, k.name_len);
            tp_cbor_put_tstr(&d, "ec-p256");
            tp_cbor_put_uint(&d, k.slot);
            tp_hal_seg seg = {item, d.len};
            tp_hal_sha256(&seg, 1, digest);
            tp_cbor_put_text(&o, k.name, k.name_len);
            tp_cbor_put_tstr(&o, "ec-p256");
            tp_cbor_put_bstr(&o, digest, 32);
        } else {
            (void)tp_manifest_asset(m, refs[i].index, &a);
            tp_cbor_put_text(&o, a.name, a.name_len);
            tp_cbor_put_tstr(&o, KEY_TYPE_NAMES[a.key_type]);
            tp_cbor_put_bstr(&o, a.digest, 32);
        }
    }
    n = sorted(m, 0, order);
    tp_cbor_put_map(&o, n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t content_id[32];
        (void)tp_manifest_asset(m, order[i], &a);
        tp_hal_seg segs[2] = {{domain, 16}, {a.digest, 32}};
        tp_hal_sha256(segs, 2, content_id);
        tp_cbor_put_text(&o, a.region, a.region_len);
        tp_cbor_put_array(&o, 3);
        tp_cbor_put_text(&o, a.name, a.name_len);
        tp_cbor_put_uint(&o, a.length);
        tp_cbor_put_bstr(&o, content_id, 32);
    }
    return o.overflow ? 0u : o.len;
}

int tp_installed_open(const tp_chip *chip, tp_cbor_in *in, const uint8_t **domain,
                      const uint8_t **bundle_id, uint64_t *epoch)
{
    size_t len, n16;
    uint64_t n, version;
    const uint8_t *enc = tp_nvm_area(&chip->nv, TP_AREA_INSTALLED, &len);
    if (enc == NULL) {
        return -1;
    }
    tp_cbor_in_init(in, enc, len);
    if (tp_cbor_array(in, &n) != 0 || n != 7u || tp_cbor_tstr_is(in, "trustprov-installed") != 1 ||
        tp_cbor_uint(in, &version) != 0 || tp_cbor_bstr(in, domain, &n16) != 0 || n16 != 16u ||
        tp_cbor_bstr(in, bundle_id, &n16) != 0 || n16 != 16u || tp_cbor_uint(in, epoch) != 0) {
        return -1;
    }
    return 0;
}

int tp_installed_domain(const tp_chip *chip, const uint8_t **domain, uint32_t *epoch)
{
    tp_cbor_in in;
    const uint8_t *bundle_id;
    uint64_t e;
    if (tp_installed_open(chip, &in, domain, &bundle_id, &e) != 0) {
        return -1;
    }
    *epoch = (uint32_t)e;
    return 0;
}

/* the value of the key in slot, from the keys area; NULL if none */
static const uint8_t *slot_value(const tp_chip *chip, uint64_t slot, size_t *len)
{
    size_t area_len;
    const uint8_t *keys = tp_nvm_area(&chip->nv, TP_AREA_KEYS, &area_len);
    for (size_t off = 0; keys != NULL && off + TP_KEY_RECORD <= area_len; off += TP_KEY_RECORD) {
        if (keys[off] == slot && keys[off + 1u] <= 64u) {
            *len = keys[off + 1u];
            return keys + off + 2u;
        }
    }
    return NULL;
}

void tp_installed_status(const tp_chip *chip, tp_cbor_out *ok, int digests)
{
    tp_cbor_in in;
    const uint8_t *domain, *bundle_id, *name, *kt, *region;
    size_t name_len, kt_len, region_len;
    uint64_t epoch, n, slot, length, three;
    uint8_t digest[32];

    if (tp_installed_open(chip, &in, &domain, &bundle_id, &epoch) != 0) {
        tp_cbor_put_null(ok);
        return;
    }
    /* {"epoch", "slots", "regions", "bundle-id", "domain-id"}: canonical order */
    tp_cbor_put_map(ok, 5);
    tp_cbor_put_tstr(ok, "epoch");
    tp_cbor_put_uint(ok, epoch);
    tp_cbor_put_tstr(ok, "slots");
    (void)tp_cbor_map(&in, &n);
    tp_cbor_put_map(ok, n);
    for (uint64_t i = 0; i < n; i++) {
        size_t value_len = 0;
        (void)tp_cbor_uint(&in, &slot);
        (void)tp_cbor_array(&in, &three);
        (void)tp_cbor_tstr(&in, &name, &name_len);
        (void)tp_cbor_tstr(&in, &kt, &kt_len);
        (void)tp_cbor_skip(&in);
        tp_cbor_put_uint(ok, slot);
        tp_cbor_put_map(ok, digests ? 3u : 2u);
        tp_cbor_put_tstr(ok, "asset");
        tp_cbor_put_text(ok, name, name_len);
        tp_cbor_put_tstr(ok, "key-type");
        tp_cbor_put_text(ok, kt, kt_len);
        if (digests) {
            uint8_t spki[91];
            const uint8_t *value = slot_value(chip, slot, &value_len);
            tp_cbor_put_tstr(ok, "public-key");
            /* ec-p384 and ed25519 public keys are not in this port's HAL yet: null */
            if (value != NULL && kt_len == 7u && memcmp(kt, "ec-p256", 7) == 0 &&
                value_len == 32u && tp_hal_p256_public(value, spki) == 0) {
                tp_cbor_put_bstr(ok, spki, sizeof(spki));
            } else {
                tp_cbor_put_null(ok);
            }
        }
    }
    tp_cbor_put_tstr(ok, "regions");
    (void)tp_cbor_map(&in, &n);
    tp_cbor_put_map(ok, n);
    size_t offset = 0;
    size_t regions_len;
    const uint8_t *contents = tp_nvm_area(&chip->nv, TP_AREA_REGIONS, &regions_len);
    for (uint64_t i = 0; i < n; i++) {
        (void)tp_cbor_tstr(&in, &region, &region_len);
        (void)tp_cbor_array(&in, &three);
        (void)tp_cbor_tstr(&in, &name, &name_len);
        (void)tp_cbor_uint(&in, &length);
        (void)tp_cbor_skip(&in);
        tp_cbor_put_text(ok, region, region_len);
        tp_cbor_put_map(ok, digests ? 3u : 2u);
        tp_cbor_put_tstr(ok, "asset");
        tp_cbor_put_text(ok, name, name_len);
        tp_cbor_put_tstr(ok, "length");
        tp_cbor_put_uint(ok, length);
        if (digests) {
            tp_cbor_put_tstr(ok, "sha256");
            if (contents != NULL && offset <= regions_len && length <= regions_len - offset) {
                tp_hal_seg seg = {contents + offset, (size_t)length};
                tp_hal_sha256(&seg, 1, digest);
                tp_cbor_put_bstr(ok, digest, 32);
            } else {
                tp_cbor_put_null(ok);
            }
        }
        offset += (size_t)length;
    }
    tp_cbor_put_tstr(ok, "bundle-id");
    tp_cbor_put_bstr(ok, bundle_id, 16);
    tp_cbor_put_tstr(ok, "domain-id");
    tp_cbor_put_bstr(ok, domain, 16);
}

int tp_sign1(const tp_chip *chip, const uint8_t *claims, size_t claims_len, tp_cbor_out *ok)
{
    static const uint8_t PROTECTED[3] = {0xa1, 0x01, 0x26};
    /* Sig_structure = ["Signature1", h'a10126', h'', claims] */
    static const uint8_t prefix[16] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't',
                                       'u',  'r',  'e', '1', 0x43, 0xa1, 0x01, 0x26};
    static const uint8_t empty = 0x40;
    uint8_t hash[32];
    uint8_t sig[64];
    uint8_t head[9];
    size_t cert_len;
    const uint8_t *cert = tp_nvm_area(&chip->nv, TP_AREA_CERT, &cert_len);
    tp_cbor_out h;

    if (cert == NULL || !chip->nv.identity_made) {
        return -1;
    }
    tp_cbor_out_init(&h, head, sizeof(head));
    tp_cbor_put_head(&h, TP_CBOR_BSTR, claims_len);
    tp_hal_seg segs[4] = {{prefix, sizeof(prefix)}, {&empty, 1}, {head, h.len}, {claims, claims_len}};
    tp_hal_sha256(segs, 4, hash);
    if (tp_hal_p256_sign(chip->nv.identity_d, hash, sig) != 0) {
        return -1;
    }
    /* 18([h'a10126', {33: cert}, claims, signature]) as a bstr: its head, then its items */
    uint8_t cert_head[9];
    tp_cbor_out ch;
    tp_cbor_out_init(&ch, cert_head, sizeof(cert_head));
    tp_cbor_put_head(&ch, TP_CBOR_BSTR, cert_len);
    size_t total = 1u + 1u + 4u + 1u + 2u + ch.len + cert_len + h.len + claims_len + 2u + 64u;
    tp_cbor_put_head(ok, TP_CBOR_BSTR, total);
    size_t before = ok->len;
    tp_cbor_put_tag(ok, 18);
    tp_cbor_put_array(ok, 4);
    tp_cbor_put_bstr(ok, PROTECTED, sizeof(PROTECTED));
    tp_cbor_put_map(ok, 1);
    tp_cbor_put_uint(ok, 33);
    tp_cbor_put_bstr(ok, cert, cert_len);
    tp_cbor_put_bstr(ok, claims, claims_len);
    tp_cbor_put_bstr(ok, sig, sizeof(sig));
    return ok->overflow || ok->len - before != total ? -1 : 0;
}

int tp_receipt(const tp_chip *chip, const tp_manifest *m, const uint8_t installed_digest[32],
               const uint8_t domain[16], uint8_t *scratch, size_t scratch_cap, tp_cbor_out *ok)
{
    uint8_t ueid[17];
    uint8_t manifest_digest[32];
    tp_cbor_out c;

    ueid[0] = 0x01;
    memcpy(ueid + 1, chip->nv.uid, 16);
    tp_hal_seg seg = {m->payload, m->payload_len};
    tp_hal_sha256(&seg, 1, manifest_digest);
    tp_cbor_out_init(&c, scratch, scratch_cap);
    tp_cbor_put_map(&c, 15);
    tp_cbor_put_uint(&c, 256);
    tp_cbor_put_bstr(&c, ueid, sizeof(ueid));
    tp_cbor_put_uint(&c, 265);
    tp_cbor_put_tstr(&c, PROFILE);
    tp_cbor_put_uint(&c, 270);
    tp_cbor_put_text(&c, chip->sw_name, chip->sw_name_len);
    tp_cbor_put_uint(&c, 271);
    tp_cbor_put_array(&c, 1);
    tp_cbor_put_text(&c, chip->sw_version, chip->sw_version_len);
    tp_cbor_put_uint(&c, 275);
    tp_cbor_put_uint(&c, 3);
    tp_cbor_put_int(&c, -70001);
    tp_cbor_put_text(&c, (const uint8_t *)chip->nv.lot, chip->nv.lot_len);
    tp_cbor_put_int(&c, -70002);
    tp_cbor_put_bstr(&c, m->bundle_id, 16);
    tp_cbor_put_int(&c, -70003);
    tp_cbor_put_bstr(&c, manifest_digest, 32);
    tp_cbor_put_int(&c, -70004);
    tp_cbor_put_bstr(&c, installed_digest, 32);
    tp_cbor_put_int(&c, -70005);
    tp_cbor_put_uint(&c, chip->svn);
    tp_cbor_put_int(&c, -70006);
    tp_cbor_put_uint(&c, chip->nv.lifecycle);
    tp_cbor_put_int(&c, -70007);
    tp_cbor_put_uint(&c, chip->nv.prov_counter);
    tp_cbor_put_int(&c, -70008);
    tp_cbor_put_array(&c, m->ndevice_keys);
    for (uint32_t i = 0; i < m->ndevice_keys; i++) {
        tp_device_key k;
        uint8_t spki[91];
        size_t value_len = 0;
        const uint8_t *d = NULL;
        if (tp_manifest_device_key(m, i, &k) == 0) {
            d = slot_value(chip, k.slot, &value_len);
        }
        if (d == NULL || value_len != 32u || tp_hal_p256_public(d, spki) != 0) {
            return -1;
        }
        tp_cbor_put_array(&c, 3);
        tp_cbor_put_uint(&c, k.slot);
        tp_cbor_put_text(&c, k.name, k.name_len);
        tp_cbor_put_bstr(&c, spki, sizeof(spki));
    }
    tp_cbor_put_int(&c, -70009);
    tp_cbor_put_bstr(&c, domain, 16);
    tp_cbor_put_int(&c, -70010);
    tp_cbor_put_uint(&c, m->epoch);
    if (c.overflow) {
        return -1;
    }
    return tp_sign1(chip, scratch, c.len, ok);
}
