/* libFuzzer: manifests (COSE_Mac0 and payload, protocol.md 6.1) under the vector K_AUTH, and
 * the authorized set's inclusion proofs (15.3): the input's first byte picks which. */
#include <string.h>

#include "fuzz.h"
#include "tp/manifest.h"

static const uint8_t K_AUTH[32] = {0xab, 0x1a, 0x02, 0x91, 0x9d, 0xa6, 0xb1, 0x7f, 0xe6, 0x68, 0xd1,
                                   0x57, 0xb8, 0xbe, 0xfa, 0x49, 0x20, 0x0e, 0x1c, 0x41, 0xe1, 0x6d,
                                   0xe5, 0x8a, 0x76, 0xec, 0xd6, 0x51, 0x91, 0x2c, 0x00, 0x99};
static const uint8_t FAMILY[8] = {0x17, 0x5d, 0xb4, 0xc7, 0xf7, 0x3c, 0xd8, 0xff};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    if (data[0] == 'P') {
        /* [index, size, [* hash]] as cm.begin takes it, against a fixed UID and root */
        static const uint8_t uid[16] = {0};
        static const uint8_t root[32] = {0};
        tp_cbor_in in;
        uint64_t n, index, tree;
        if (tp_cbor_check(data + 1, size - 1u, 128, 2, TP_CBOR_NO_TAG) != 0) {
            return 0;
        }
        tp_cbor_in_init(&in, data + 1, size - 1u);
        if (tp_cbor_array(&in, &n) == 0 && n == 3u && tp_cbor_uint(&in, &index) == 0 &&
            tp_cbor_uint(&in, &tree) == 0 && tp_cbor_array(&in, &n) == 0 && n <= 64u) {
            (void)tp_proof_verify(in, n, index, tree, uid, root);
        }
        return 0;
    }
    tp_manifest m;
    if (tp_manifest_open(data + 1, size - 1u, K_AUTH, FAMILY, &m) == TP_MANIFEST_OK) {
        tp_asset a;
        for (uint32_t i = 0; i < m.nassets; i++) {
            if (tp_manifest_asset(&m, i, &a) != 0 || a.name_len == 0u || a.name_len > 64u) {
                __builtin_trap();
            }
        }
    }
    return 0;
}
