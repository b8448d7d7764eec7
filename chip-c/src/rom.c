/*
 * The boot ROM's ops (protocol.md 5, 5.2, 8, 8.6): rom.status, rom.identity, rom.attest (its
 * token in attest.c), the manufacturing ops rom.burn, rom.make-identity,
 * rom.store-certificate; rom.boot.
 *
 * Invariants:
 * - Each op checks its arguments (`malformed`), then the chip's state, then its input (8.3).
 * - No op reads back a secret: rom.status shows the image's public parts only (family,
 *   prov-keys, prov-suite), never a share, a K_OEM key or the identity key.
 * - rom.boot stops the running software first, then runs section 5's steps in order; the
 *   security counter only rises, in one commit, before the software starts.
 */
#include <string.h>

#include "tp/chip.h"
#include "tp/config.h"
#include "tp/cose.h"
#include "tp/receipts.h"
#include "tp_hal_crypto.h"
#include "tp_hal_trng.h"


static int secret32(tp_cbor_in *in, const uint8_t **out)
{
    size_t n;
    return tp_cbor_bstr(in, out, &n) == 0 && n == 32u ? 0 : -1;
}

/* protocol.md 8.6: 0 if img is an immutable image naming a suite of 5.1 */
static int parse_image(const uint8_t *img, size_t len, tp_image *im)
{
    tp_cbor_in in;
    uint64_t n;
    size_t flen;

    memset(im, 0, sizeof(*im));
    if (len > TP_MAX_IMMUTABLE ||
        tp_cbor_check(img, len, TP_IMAGE_ITEMS, TP_IMAGE_DEPTH, TP_CBOR_NO_TAG) != 0) {
        return -1;
    }
    tp_cbor_in_init(&in, img, len);
    if (tp_cbor_array(&in, &n) != 0 || n != 6u || tp_cbor_bstr(&in, &im->family, &flen) != 0 ||
        flen != TP_FAMILY_LEN || secret32(&in, &im->hw_share) != 0 ||
        secret32(&in, &im->rom_share) != 0 || secret32(&in, &im->k_oem_share) != 0 ||
        secret32(&in, &im->k_oem_master_share) != 0) {
        return -1;
    }
    if (tp_cbor_peek(&in) == TP_CBOR_BSTR) {
        if (tp_cbor_bstr(&in, &im->keys[0], &im->key_lens[0]) != 0) {
            return -1;
        }
        im->nkeys = 1;
        im->algs[0] = tp_hal_spki_alg(im->keys[0], im->key_lens[0]);
        if (im->algs[0] == TP_ALG_NONE) {
            return -1;
        }
    } else {
        /* the hybrid: [[-7, P-256 SPKI], [-49, ML-DSA-65 SPKI]] */
        static const tp_alg HYBRID[2] = {TP_ALG_ES256, TP_ALG_MLDSA65};
        if (tp_cbor_array(&in, &n) != 0 || n != 2u) {
            return -1;
        }
        for (size_t i = 0; i < 2u; i++) {
            int64_t alg;
            if (tp_cbor_array(&in, &n) != 0 || n != 2u || tp_cbor_int(&in, &alg) != 0 ||
                alg != HYBRID[i] || tp_cbor_bstr(&in, &im->keys[i], &im->key_lens[i]) != 0 ||
                tp_hal_spki_alg(im->keys[i], im->key_lens[i]) != HYBRID[i]) {
                return -1;
            }
            im->algs[i] = HYBRID[i];
        }
        im->nkeys = 2;
    }
    return in.pos == len ? 0 : -1;
}

int tp_rom_image(const tp_chip *chip, tp_image *im)
{
    size_t len;
    const uint8_t *img = tp_nvm_area(&chip->nv, TP_AREA_IMAGE, &len);
    return img != NULL && parse_image(img, len, im) == 0 ? 0 : -1;
}

static const char *suite_name(const tp_image *im)
{
    if (im->nkeys == 2u) {
        return "ES256+ML-DSA-65";
    }
    switch (im->algs[0]) {
    case TP_ALG_ES256:
        return "ES256";
    case TP_ALG_ES384:
        return "ES384";
    case TP_ALG_EDDSA:
        return "EdDSA";
    case TP_ALG_MLDSA65:
        return "ML-DSA-65";
    default:
        return "ML-DSA-87";
    }
}

static const char *lifecycle_name(uint8_t lc)
{
    static const char *const NAMES[4] = {"BLANK", "MANUFACTURED", "PROVISIONED", "LOCKED"};
    return NAMES[lc & 3u];
}

static void refuse(tp_result *res, tp_code code, const char *message)
{
    res->code = code;
    res->message = message;
}

static int commit(tp_chip *chip, const tp_persist *next, const tp_blob *blobs, size_t n,
                  tp_result *res)
{
    if (tp_nvm_commit(&chip->nv, next, blobs, n) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return -1;
    }
    return 0;
}

static void rom_status(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                       tp_result *res)
{
    tp_arg spec[1] = {{"digests", TP_ARG_ANY, 1, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_image im;
    int burned;

    if (tp_args_parse(args, nargs, spec, 1) != 0) {
        refuse(res, TP_E_MALFORMED, "rom.status: arguments are not its own");
        return;
    }
    /* only true asks for digests; any other value counts as false */
    int digests = spec[0].present && spec[0].len == 1u && spec[0].data[0] == 0xf5u;
    burned = tp_rom_image(chip, &im) == 0;
    /* canonical order: lot, uid, family, installed, lifecycle, prov-keys, prov-suite,
     * installed-digest, security-counter */
    tp_cbor_put_map(ok, 9);
    tp_cbor_put_tstr(ok, "lot");
    tp_cbor_put_text(ok, (const uint8_t *)chip->nv.lot, chip->nv.lot_len);
    tp_cbor_put_tstr(ok, "uid");
    tp_cbor_put_bstr(ok, chip->nv.uid, TP_UID_LEN);
    tp_cbor_put_tstr(ok, "family");
    if (burned) {
        tp_cbor_put_bstr(ok, im.family, TP_FAMILY_LEN);
    } else {
        tp_cbor_put_null(ok);
    }
    tp_cbor_put_tstr(ok, "installed");
    tp_installed_status(chip, ok, digests);
    tp_cbor_put_tstr(ok, "lifecycle");
    tp_cbor_put_tstr(ok, lifecycle_name(chip->nv.lifecycle));
    tp_cbor_put_tstr(ok, "prov-keys");
    if (burned) {
        tp_cbor_put_array(ok, im.nkeys);
        for (size_t i = 0; i < im.nkeys; i++) {
            tp_cbor_put_bstr(ok, im.keys[i], im.key_lens[i]);
        }
    } else {
        tp_cbor_put_null(ok);
    }
    tp_cbor_put_tstr(ok, "prov-suite");
    if (burned) {
        tp_cbor_put_tstr(ok, suite_name(&im));
    } else {
        tp_cbor_put_null(ok);
    }
    tp_cbor_put_tstr(ok, "installed-digest");
    size_t enc_len;
    const uint8_t *enc = tp_nvm_area(&chip->nv, TP_AREA_INSTALLED, &enc_len);
    if (enc != NULL) {
        uint8_t digest[32];
        tp_hal_seg seg = {enc, enc_len};
        tp_hal_sha256(&seg, 1, digest);
        tp_cbor_put_bstr(ok, digest, 32);
    } else {
        tp_cbor_put_null(ok);
    }
    tp_cbor_put_tstr(ok, "security-counter");
    tp_cbor_put_uint(ok, chip->nv.security_counter);
}

static void rom_identity(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                         tp_result *res)
{
    size_t len;
    const uint8_t *cert;
    uint8_t spki[91];
    if (tp_args_parse(args, nargs, NULL, 0) != 0) {
        refuse(res, TP_E_MALFORMED, "rom.identity takes no arguments");
        return;
    }
    /* the identity key's public half once made (protocol.md 8.1, 13.6): a host that lost the
       answer to rom.make-identity certifies the key the chip holds */
    if (chip->nv.identity_made && tp_hal_p256_public(chip->nv.identity_d, spki) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    cert = tp_nvm_area(&chip->nv, TP_AREA_CERT, &len);
    tp_cbor_put_map(ok, 2);
    tp_cbor_put_tstr(ok, "public-key"); /* canonical order: the shorter key first */
    if (chip->nv.identity_made) {
        tp_cbor_put_bstr(ok, spki, sizeof(spki));
    } else {
        tp_cbor_put_null(ok);
    }
    tp_cbor_put_tstr(ok, "certificate");
    if (cert != NULL) {
        tp_cbor_put_bstr(ok, cert, len);
    } else {
        tp_cbor_put_null(ok);
    }
}

static void rom_burn(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                     tp_result *res)
{
    tp_arg spec[1] = {{"image", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_image im;
    size_t len;

    if (tp_args_parse(args, nargs, spec, 1) != 0 || spec[0].len > TP_MAX_IMMUTABLE) {
        refuse(res, TP_E_MALFORMED, "rom.burn: arguments are not its own");
        return;
    }
    if (parse_image(spec[0].data, spec[0].len, &im) != 0) {
        refuse(res, TP_E_MALFORMED, "immutable memory: wrong layout");
        return;
    }
    if (tp_nvm_area(&chip->nv, TP_AREA_IMAGE, &len) != NULL) {
        refuse(res, TP_E_IMMUTABLE_WRITTEN, "immutable memory is already written");
        return;
    }
    tp_persist next = chip->nv;
    next.area_len[TP_AREA_IMAGE] = (uint16_t)spec[0].len;
    tp_blob blob = {TP_AREA_IMAGE, spec[0].data, spec[0].len};
    if (commit(chip, &next, &blob, 1, res) == 0) {
        tp_cbor_put_map(ok, 0);
    }
    tp_hal_zeroize(&next, sizeof(next));
}

static void rom_make_identity(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                              tp_result *res)
{
    uint8_t material[40];
    uint8_t spki[91];
    size_t len;

    if (tp_args_parse(args, nargs, NULL, 0) != 0) {
        refuse(res, TP_E_MALFORMED, "rom.make-identity takes no arguments");
        return;
    }
    if (tp_nvm_area(&chip->nv, TP_AREA_IMAGE, &len) == NULL) {
        refuse(res, TP_E_LIFECYCLE, "chip is blank: immutable memory not written");
        return;
    }
    if (chip->nv.identity_made) {
        refuse(res, TP_E_IDENTITY_EXISTS, "identity key already made");
        return;
    }
    tp_persist next = chip->nv;
    if (tp_hal_trng(material, sizeof(material)) != 0 ||
        tp_hal_p256_from_material(material, next.identity_d, spki) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
    } else {
        next.identity_made = 1;
        if (commit(chip, &next, NULL, 0, res) == 0) {
            tp_cbor_put_map(ok, 1);
            tp_cbor_put_tstr(ok, "public-key");
            tp_cbor_put_bstr(ok, spki, sizeof(spki));
        }
    }
    tp_hal_zeroize(material, sizeof(material));
    tp_hal_zeroize(&next, sizeof(next));
}

static void rom_store_certificate(tp_chip *chip, tp_cbor_in *args, uint64_t nargs,
                                  tp_cbor_out *ok, tp_result *res)
{
    tp_arg spec[1] = {{"certificate", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    uint8_t spki[91];
    size_t len;

    if (tp_args_parse(args, nargs, spec, 1) != 0 || spec[0].len > TP_MAX_CERTIFICATE) {
        refuse(res, TP_E_MALFORMED, "rom.store-certificate: arguments are not its own");
        return;
    }
    if (!chip->nv.identity_made || tp_nvm_area(&chip->nv, TP_AREA_CERT, &len) != NULL) {
        refuse(res, TP_E_LIFECYCLE,
               "certificate: only once, after the identity key is made");
        return;
    }
    if (tp_hal_p256_public(chip->nv.identity_d, spki) != 0) {
        refuse(res, TP_E_INTERNAL, NULL);
        return;
    }
    if (spec[0].len == 0u || tp_hal_cert_key_is(spec[0].data, spec[0].len, spki, sizeof(spki)) != 0) {
        refuse(res, TP_E_BAD_CERTIFICATE,
               "certificate: not DER X.509 of this chip's identity key");
        return;
    }
    tp_persist next = chip->nv;
    next.area_len[TP_AREA_CERT] = (uint16_t)spec[0].len;
    if (next.lifecycle < TP_LC_MANUFACTURED) {
        next.lifecycle = TP_LC_MANUFACTURED;
    }
    tp_blob blob = {TP_AREA_CERT, spec[0].data, spec[0].len};
    if (commit(chip, &next, &blob, 1, res) == 0) {
        tp_cbor_put_map(ok, 0);
    }
    tp_hal_zeroize(&next, sizeof(next));
}

static void rom_boot(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                     tp_result *res)
{
    tp_arg spec[1] = {{"image", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    tp_software sw;
    tp_image im;
    uint8_t digest[32];

    if (tp_args_parse(args, nargs, spec, 1) != 0) {
        refuse(res, TP_E_MALFORMED, "rom.boot: arguments are not its own");
        return;
    }
    tp_software_stop(chip, 1); /* 8.3: whatever the outcome */
    if (chip->nv.lifecycle < TP_LC_MANUFACTURED || tp_rom_image(chip, &im) != 0) {
        refuse(res, TP_E_LIFECYCLE, "chip is not manufactured");
        return;
    }
    int form = tp_cose_software_parse(spec[0].data, spec[0].len, &sw);
    if (form < 0) {
        refuse(res, TP_E_BAD_SOFTWARE, "boot refused: the image is not signed software");
        return;
    }
    /* step 2: exactly the chip's suite; a hybrid (COSE_Sign) is not verified by this port */
    if (form != 0 || im.nkeys != 1u ||
        tp_cose_software_verify(&sw, im.algs[0], im.keys[0], im.key_lens[0]) != 0) {
        refuse(res, TP_E_BAD_SIGNATURE, "boot refused: signature not valid under the chip's key");
        return;
    }
    tp_hal_seg code = {chip->code, chip->code_len};
    tp_hal_sha256(&code, 1, digest);
    if (memcmp(digest, sw.code, sizeof(digest)) != 0) {
        refuse(res, TP_E_CODE_MISMATCH, "boot refused: tp-code is not this chip's firmware");
        return;
    }
    if (sw.svn < chip->nv.security_counter) {
        refuse(res, TP_E_ROLLBACK, "boot refused: security version below the counter");
        return;
    }
    if (sw.svn > chip->nv.security_counter) {
        tp_persist next = chip->nv;
        next.security_counter = sw.svn;
        int rc = commit(chip, &next, NULL, 0, res);
        tp_hal_zeroize(&next, sizeof(next));
        if (rc != 0) {
            return;
        }
    }
    chip->running = 1;
    chip->svn = sw.svn;
    chip->sw_name_len = (uint8_t)sw.name_len;
    memcpy(chip->sw_name, sw.name, sw.name_len);
    chip->sw_version_len = (uint8_t)sw.version_len;
    memcpy(chip->sw_version, sw.version, sw.version_len);
    tp_cbor_put_map(ok, 1);
    tp_cbor_put_tstr(ok, "security-counter");
    tp_cbor_put_uint(ok, chip->nv.security_counter);
}

static int is_op(const uint8_t *op, size_t op_len, const char *name)
{
    return strlen(name) == op_len && memcmp(name, op, op_len) == 0;
}

/* direct calls, no table of function pointers: the stack analysis (make size) sees every edge */
int tp_rom_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                    uint64_t nargs, tp_cbor_out *ok, tp_result *res)
{
    if (is_op(op, op_len, "rom.status")) {
        rom_status(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "rom.identity")) {
        rom_identity(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "rom.attest")) {
        tp_rom_attest(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "rom.burn")) {
        rom_burn(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "rom.make-identity")) {
        rom_make_identity(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "rom.store-certificate")) {
        rom_store_certificate(chip, args, nargs, ok, res);
    } else if (is_op(op, op_len, "rom.boot")) {
        rom_boot(chip, args, nargs, ok, res);
    } else {
        return 0;
    }
    return 1;
}
