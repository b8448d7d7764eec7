/* The chip every fuzz input meets: blank, or burned with the conformance test family. */
#include <string.h>

#include "fuzz.h"
#include "tp/cbor.h"

static const char IMAGE_HEX[] =
    "8648175db4c7f73cd8ff5820d2df7e41c0bc259a8958541678c0515b2f9fd6442b80a3352bdd3d709780d3bf"
    "5820471af325ef663485fa061d27fbdad54f76d01d090e1c61ca5ac0ddd8b4988b5e582032c552bf9bd06735"
    "cc83f7464b562c6e33ca66149ecba2ab0261a8c112903994582082a5b148381835800e6104870468b6281b98"
    "1506343d8f8b4665477ca6697928582c302a300506032b657003210097ca9015d2a9a43aff40377b43c3666047"
    "534a2364bdf7b9f03fcea02d6f880d";

static const uint8_t CODE[] = "provisioning software";

void fuzz_chip(tp_chip *chip, int burned)
{
    tp_persist nv;
    tp_persist blank;
    uint8_t image[256];
    size_t n = strlen(IMAGE_HEX) / 2u;

    fuzz_erase_nvm();
    (void)tp_nvm_load(&nv);
    memset(&blank, 0, sizeof(blank));
    blank.lot_len = 4;
    memcpy(blank.lot, "FUZZ", 4);
    if (burned) {
        for (size_t i = 0; i < n; i++) {
            unsigned hi = (unsigned)(IMAGE_HEX[2 * i] <= '9' ? IMAGE_HEX[2 * i] - '0'
                                                             : IMAGE_HEX[2 * i] - 'a' + 10);
            unsigned lo = (unsigned)(IMAGE_HEX[2 * i + 1] <= '9' ? IMAGE_HEX[2 * i + 1] - '0'
                                                                 : IMAGE_HEX[2 * i + 1] - 'a' + 10);
            image[i] = (uint8_t)(hi << 4 | lo);
        }
        blank.area_len[TP_AREA_IMAGE] = (uint16_t)n;
        blank.lifecycle = TP_LC_MANUFACTURED; /* as if a certificate were stored */
        tp_blob blob = {TP_AREA_IMAGE, image, n};
        (void)tp_nvm_commit(&nv, &blank, &blob, 1);
    } else {
        (void)tp_nvm_commit(&nv, &blank, NULL, 0);
    }
    fuzz_save_nvm();
    tp_chip_power_on(chip, &nv, CODE, sizeof(CODE) - 1u);
}
