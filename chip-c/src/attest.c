/*
 * rom.attest (protocol.md 8.8): the chip's attestation token, a COSE_Sign1 EAT over the host's
 * challenge, signed by the one signer of the receipts (tp_sign1).
 *
 * Invariants:
 * - The arguments are exactly one 32-byte `challenge` (else `malformed`), checked first; a chip
 *   without its certificate answers `lifecycle`.
 * - The token states what the chip has committed when it answers: it writes nothing, draws
 *   nothing from the TRNG but the signature's own randomness, and runs in any session state.
 * - Only public values are claimed (UID, lot, installed bundle id, digest, DOMAIN_ID, epoch,
 *   lifecycle, counter); the four installed claims are all null or none is.
 */
#include <string.h>

#include "tp/chip.h"
#include "tp/receipts.h"
#include "tp_hal_crypto.h"

static const char PROFILE[] = "tag:trustprov.dev,2026:attestation/1";

/* the claims of 8.8, canonical: 10 entries, 10, 256, 265 then -70001 .. -70010; at most
 * 1 + 35 + 21 + 41 + 71 (a 64-byte lot) + 22 + 39 + 6 + 10 + 22 + 10 = 278 bytes */
#define TP_ATTEST_CLAIMS 288u

int tp_attest_token(const tp_chip *chip, const uint8_t challenge[32], tp_cbor_out *ok)
{
    uint8_t claims[TP_ATTEST_CLAIMS];
    uint8_t ueid[17];
    uint8_t digest[32];
    tp_cbor_in in;
    const uint8_t *domain = NULL;
    const uint8_t *bundle_id = NULL;
    uint64_t epoch = 0;
    size_t enc_len = 0;
    tp_cbor_out c;

    const uint8_t *enc = tp_nvm_area(&chip->nv, TP_AREA_INSTALLED, &enc_len);
    int installed = enc != NULL && tp_installed_open(chip, &in, &domain, &bundle_id, &epoch) == 0;
    if (installed) {
        tp_hal_seg seg = {enc, enc_len};
        tp_hal_sha256(&seg, 1, digest);
    }
    ueid[0] = 0x01; /* RAND */
    memcpy(ueid + 1, chip->nv.uid, TP_UID_LEN);
    tp_cbor_out_init(&c, claims, sizeof(claims));
    tp_cbor_put_map(&c, 10);
    tp_cbor_put_uint(&c, 10);
    tp_cbor_put_bstr(&c, challenge, 32);
    tp_cbor_put_uint(&c, 256);
    tp_cbor_put_bstr(&c, ueid, sizeof(ueid));
    tp_cbor_put_uint(&c, 265);
    tp_cbor_put_tstr(&c, PROFILE);
    tp_cbor_put_int(&c, -70001);
    tp_cbor_put_text(&c, (const uint8_t *)chip->nv.lot, chip->nv.lot_len);
    tp_cbor_put_int(&c, -70002);
    if (installed) {
        tp_cbor_put_bstr(&c, bundle_id, 16);
    } else {
        tp_cbor_put_null(&c);
    }
    tp_cbor_put_int(&c, -70004);
    if (installed) {
        tp_cbor_put_bstr(&c, digest, 32);
    } else {
        tp_cbor_put_null(&c);
    }
    tp_cbor_put_int(&c, -70006);
    tp_cbor_put_uint(&c, chip->nv.lifecycle);
    tp_cbor_put_int(&c, -70007);
    tp_cbor_put_uint(&c, chip->nv.prov_counter);
    tp_cbor_put_int(&c, -70009);
    if (installed) {
        tp_cbor_put_bstr(&c, domain, 16);
    } else {
        tp_cbor_put_null(&c);
    }
    tp_cbor_put_int(&c, -70010);
    if (installed) {
        tp_cbor_put_uint(&c, epoch);
    } else {
        tp_cbor_put_null(&c);
    }
    if (c.overflow) {
        return -1;
    }
    return tp_sign1(chip, claims, c.len, ok);
}

void tp_rom_attest(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                   tp_result *res)
{
    tp_arg spec[1] = {{"challenge", TP_ARG_BSTR, 0, 0, NULL, 0, 0, {NULL, 0, 0}}};
    size_t len;

    if (tp_args_parse(args, nargs, spec, 1) != 0 || spec[0].len != 32u) {
        res->code = TP_E_MALFORMED;
        res->message = "rom.attest: arguments are not one 32-byte challenge";
        return;
    }
    if (tp_nvm_area(&chip->nv, TP_AREA_CERT, &len) == NULL || !chip->nv.identity_made) {
        res->code = TP_E_LIFECYCLE;
        res->message = "rom.attest: the chip has no certified identity yet";
        return;
    }
    tp_cbor_put_map(ok, 1);
    tp_cbor_put_tstr(ok, "token");
    if (tp_attest_token(chip, spec[0].data, ok) != 0) {
        res->code = TP_E_INTERNAL;
        res->message = NULL;
    }
}
