/*
 * The error codes of docs/protocol.md 8.2. The code is normative; the message a chip sends
 * beside it is fixed text, names and numbers, never memory contents.
 */
#ifndef TP_ERRORS_H
#define TP_ERRORS_H

typedef enum {
    TP_OK = 0,
    TP_E_MALFORMED,
    TP_E_UNKNOWN_COMMAND,
    TP_E_IMMUTABLE_WRITTEN,
    TP_E_IDENTITY_EXISTS,
    TP_E_BAD_CERTIFICATE,
    TP_E_LIFECYCLE,
    TP_E_BAD_SOFTWARE,
    TP_E_BAD_SIGNATURE,
    TP_E_CODE_MISMATCH,
    TP_E_ROLLBACK,
    TP_E_BAD_REQUEST,
    TP_E_BAD_SEQUENCE,
    TP_E_BAD_SEALED_VALUE,
    TP_E_WRONG_FAMILY,
    TP_E_BAD_SHARE,
    TP_E_BAD_MANIFEST,
    TP_E_BUNDLE_VERSION,
    TP_E_SOFTWARE_TOO_OLD,
    TP_E_DOMAIN_MISMATCH,
    TP_E_STALE_EPOCH,
    TP_E_UNAUTHORIZED,
    TP_E_RAM_BUDGET,
    TP_E_BAD_CHUNK,
    TP_E_BAD_ASSET,
    TP_E_INCOMPLETE,
    TP_E_CAPACITY,
    TP_E_INTERNAL,
    TP_E_COUNT
} tp_code;

/* the code's wire spelling ("bad-request", ...) */
const char *tp_code_name(tp_code code);

#endif
