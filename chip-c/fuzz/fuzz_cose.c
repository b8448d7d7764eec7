/* libFuzzer: signed software (COSE_Sign1, COSE_Sign: protocol.md 5) into the ROM's parser and
 * verifier, under the conformance family's Ed25519 key. */
#include <string.h>

#include "fuzz.h"
#include "tp/cose.h"

static const uint8_t SPKI[44] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21,
                                 0x00, 0x97, 0xca, 0x90, 0x15, 0xd2, 0xa9, 0xa4, 0x3a, 0xff, 0x40,
                                 0x37, 0x7b, 0x43, 0xc3, 0x66, 0x60, 0x47, 0x53, 0x4a, 0x23, 0x64,
                                 0xbd, 0xf7, 0xb9, 0xf0, 0x3f, 0xce, 0xa0, 0x2d, 0x6f, 0x88, 0x0d};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tp_software sw;
    if (tp_cose_software_parse(data, size, &sw) == 0) {
        /* every pointer lies in the input */
        if (sw.payload < data || sw.payload + sw.payload_len > data + size || sw.code < data ||
            sw.code + 32 > data + size || sw.name_len == 0u || sw.name_len > 64u) {
            __builtin_trap();
        }
        (void)tp_cose_software_verify(&sw, TP_ALG_EDDSA, SPKI, sizeof(SPKI));
    }
    return 0;
}
