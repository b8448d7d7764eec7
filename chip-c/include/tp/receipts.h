/*
 * What an install leaves and signs (protocol.md 6.7, 6.8): the installed encoding and its
 * digest, the status view of it, and the receipt.
 *
 * Invariants: only public values enter the installed encoding and the receipt (never a key
 * value nor a hash of one); both are canonical CBOR, their maps in canonical key order; the
 * receipt and the attestation token are signed with the chip's identity key, by tp_sign1 and
 * nothing else.
 */
#ifndef TP_RECEIPTS_H
#define TP_RECEIPTS_H

#include <stddef.h>
#include <stdint.h>

#include "tp/chip.h"

/* the installed encoding of 6.7 for the manifest m under DOMAIN_ID; its length, 0 if it does
 * not fit cap */
size_t tp_installed_encode(const tp_manifest *m, const uint8_t domain[16], uint8_t *buf,
                           size_t cap);
/* the order the installed encoding lists the regions in: 1 if region a sorts before region b */
int tp_region_before(const tp_asset *a, const tp_asset *b);
/* a reader on the chip's installed encoding, past its first five elements (DOMAIN_ID, bundle id
 * and epoch out): 0, or -1 when nothing is installed */
int tp_installed_open(const tp_chip *chip, tp_cbor_in *in, const uint8_t **domain,
                      const uint8_t **bundle_id, uint64_t *epoch);
/* the chip's installed DOMAIN_ID and epoch: 0, or -1 when nothing is installed */
int tp_installed_domain(const tp_chip *chip, const uint8_t **domain, uint32_t *epoch);
/* rom.status's "installed" value (8.1), a map or null, written into ok */
void tp_installed_status(const tp_chip *chip, tp_cbor_out *ok, int digests);
/* the one signer of the chip's tokens (6.8, 8.8): 18([h'a10126', {33: certificate}, claims,
 * ES256 signature with the identity key]) as a bstr item into ok; 0, or -1 without a
 * certificate or on a fault */
int tp_sign1(const tp_chip *chip, const uint8_t *claims, size_t claims_len, tp_cbor_out *ok);
/* rom.attest's token (8.8) over a 32-byte challenge, as a bstr item into ok; 0 or -1 */
int tp_attest_token(const tp_chip *chip, const uint8_t challenge[32], tp_cbor_out *ok);
/* cm.finish's receipt (6.8) as a bstr item into ok; 0 or -1 */
int tp_receipt(const tp_chip *chip, const tp_manifest *m, const uint8_t installed_digest[32],
               const uint8_t domain[16], uint8_t *scratch, size_t scratch_cap, tp_cbor_out *ok);

#endif
