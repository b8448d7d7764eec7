/*
 * The chip: its committed state (nvm.h), what runs in RAM (the software, its session) and the
 * request runner the link calls (protocol.md 8).
 *
 * Invariants:
 * - A request is decoded within the limits of a link message (protocol.md 1) before anything
 *   reads it; every answer is canonical CBOR of at most TP_MAX_RESPONSE bytes, an error answer
 *   a fixed text that holds no memory contents.
 * - Every write to the chip's state is one tp_nvm_commit(); a refused op commits nothing.
 * - rom.boot stops the running software (and its session) before it checks the new image.
 */
#ifndef TP_CHIP_H
#define TP_CHIP_H

#include <stddef.h>
#include <stdint.h>

#include "tp/cbor.h"
#include "tp/errors.h"
#include "tp/keys.h"
#include "tp/manifest.h"
#include "tp/nvm.h"
#include "tp_hal_crypto.h"

enum { TP_SESSION_NONE = 0, TP_SESSION_SEALING = 1, TP_SESSION_PROVISIONING = 2 };

/* the immutable image (protocol.md 8.6), parsed: pointers into the chip's NVM */
typedef struct {
    const uint8_t *family;
    const uint8_t *hw_share;
    const uint8_t *rom_share;
    const uint8_t *k_oem_share;
    const uint8_t *k_oem_master_share;
    /* K_PUK_ICM_PROV: one key, or the hybrid's two */
    size_t nkeys;
    tp_alg algs[2];
    const uint8_t *keys[2];
    size_t key_lens[2];
} tp_image;

/* a bundle's parameters (oem.keygen, oem.regen: protocol.md 8.1 params) */
typedef struct {
    uint32_t epoch;
    uint32_t min_svn;
    uint32_t chunk_size;
    uint8_t aead;
    uint8_t authorized; /* 1: root and count below */
    uint8_t root[32];
    uint32_t count;
} tp_params;

/* an open session's keys and progress: the 512 bytes of protocol.md 8.4 */
typedef struct {
    tp_domain_keys keys;
    uint8_t seed[32];
    uint8_t bundle_id[16];
    tp_params params;
    /* provisioning (FIG. 3): the manifest (in the RAM arena) and where the chunks are */
    tp_manifest manifest;
    uint32_t asset;
    uint32_t chunk;
    uint8_t chain[32]; /* the chain value the next chunk must match (6.3) */
    /* where the current asset's plaintext is staged (tp_nvm_stage): its area and offset */
    uint32_t stage_off;
    uint32_t nkeys;        /* key records staged */
    uint64_t region_bytes; /* the regions' total length */
    uint8_t over_capacity; /* a region beyond TP_MAX_REGION_BYTES: cm.finish answers capacity */
    /* sealing (FIG. 2/4): the entries sealed so far are in the RAM arena */
    uint32_t sealed;      /* entries */
    uint8_t asset_open;   /* the last entry still takes chunks */
    uint32_t seal_next;   /* the chunk index it takes next (last to first) */
} tp_session;

typedef struct {
    tp_persist nv;
    /* the firmware image the ROM measures (protocol.md 5.3) */
    const uint8_t *code;
    size_t code_len;
    /* RAM: the running software and its session, lost at power-on and idle timeout */
    uint8_t running;
    uint32_t svn;
    uint8_t sw_name_len;
    uint8_t sw_name[TP_MAX_NAME];
    uint8_t sw_version_len;
    uint8_t sw_version[TP_MAX_NAME];
    uint8_t session;
    uint32_t ram_reserved;
    tp_session s; /* secret: zeroized when the session ends */
} tp_chip;

/* what an op answers: the `ok` map's content is written by the op into out */
typedef struct {
    tp_code code;
    const char *message; /* fixed text for an error */
} tp_result;

/* a decoded argument map */
enum { TP_ARG_BSTR = 1, TP_ARG_TSTR, TP_ARG_UINT, TP_ARG_ANY };
typedef struct {
    const char *key;
    int type;
    int optional;
    /* out */
    int present;
    const uint8_t *data; /* bstr/tstr content, or the item's first byte for ANY */
    size_t len;
    uint64_t uint;
    tp_cbor_in item; /* a reader positioned on the value */
} tp_arg;

/* 0: exactly these keys with these types; -1: a key missing, another present, a wrong type */
int tp_args_parse(const tp_cbor_in *args, uint64_t count, tp_arg *spec, size_t nspec);
/* the same for the keys only, whatever their values' types (protocol.md 8.3 step 1) */
int tp_args_names(const tp_cbor_in *args, uint64_t count, tp_arg *spec, size_t nspec);

/* rom.c: the chip's immutable image; 0, or -1 on a blank chip */
int tp_rom_image(const tp_chip *chip, tp_image *image);
/* provisioning.c: reserves RAM of the budget of protocol.md 8.4; 0, or -1 (nothing reserved) */
int tp_ram_reserve(tp_chip *chip, uint32_t bytes);
/* sealing.c: opens a sealed value of the kind (protocol.md 4): 0, -1 (not one of that kind, or
 * it does not open: `bad-share`/`bad-sealed-value`), -2 (another family: `wrong-family`) */
int tp_sealed_open(const uint8_t *data, size_t len, const char *kind, const uint8_t family[8],
                   const uint8_t key[32], uint8_t out[32], size_t *out_len);
/* install.c: RFC 9162 2.1.3.2, 0 if the npath hashes at path lead from leaf(uid) at index in a
 * tree of size leaves to root (protocol.md 15.3), else -1 */
int tp_proof_verify(tp_cbor_in path, uint64_t npath, uint64_t index, uint64_t size,
                    const uint8_t uid[16], const uint8_t root[32]);
/* install.c: cm.begin and cm.chunk; 1 if op is one of them, with the answer written */
int tp_install_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                        uint64_t nargs, tp_cbor_out *ok, tp_result *res);
/* seal_assets.c: seal.asset, seal.chunk, seal.generate, seal.finish; same contract */
int tp_seal_assets_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                            uint64_t nargs, tp_cbor_out *ok, tp_result *res);
/* sealing.c: the FIG. 2/4 ops; 1 if op is one of them, with the answer written */
int tp_sealing_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                        uint64_t nargs, tp_cbor_out *ok, tp_result *res);

/* power-on: RAM is empty; the committed state is taken as it is */
void tp_chip_power_on(tp_chip *chip, const tp_persist *nv, const uint8_t *code, size_t code_len);
/* runs one request message; writes the response, returns its length */
size_t tp_chip_run(tp_chip *chip, const uint8_t *req, size_t len, uint8_t *resp, size_t cap);
/* the idle timeout (protocol.md 12.5): drops the software and its session, keeps the link */
void tp_chip_idle(tp_chip *chip);

/* rom.c: the boot ROM's ops; 1 if op is one, with the answer written, 0 if not */
int tp_rom_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                    uint64_t nargs, tp_cbor_out *ok, tp_result *res);
/* attest.c: rom.attest (protocol.md 8.8), the answer or the refusal written */
void tp_rom_attest(tp_chip *chip, tp_cbor_in *args, uint64_t nargs, tp_cbor_out *ok,
                   tp_result *res);
/* provisioning.c: the software's ops, same contract */
int tp_software_dispatch(tp_chip *chip, const uint8_t *op, size_t op_len, tp_cbor_in *args,
                         uint64_t nargs, tp_cbor_out *ok, tp_result *res);
/* ends the session (keys zeroized, RAM released) and stops the software if stop is set */
void tp_software_stop(tp_chip *chip, int stop);

#endif
