"""The commented asset list that `trustprov oem template` prints.

Invariant: `TEMPLATE` is itself a valid asset list (tests/roles/test_roles_asset_template.py
loads it with the files it names, and `oem keygen` seals it); every field and every kind of
`roles.assets` is explained in it. docs/assets.md is the reference it points to.
"""

from __future__ import annotations

#: files the template's example names, with what each must hold (for the test and the reader)
EXAMPLE_FILES = {
    "app-key.bin": "32 raw bytes (an AES-256 key)",
    "attest-key.pem": "an EC P-256 private key, PEM (PKCS#8 or SEC1)",
    "device.pem": "an X.509 certificate, PEM or DER",
    "app.bin": "the firmware image",
}

TEMPLATE = """\
# trustprov asset list: what the OEM seals into a bundle on its provisioning chip, and where each
# asset goes on the chips. Reference: docs/assets.md. Use it with
#   trustprov oem keygen --farm FARM --chip UID --software SOFTWARE --assets THIS_FILE --out OEM_DIR
# Paths in `file` are relative to this file. Every key, value and file named here is the OEM's
# secret: keep this list and its files with the OEM; the CM receives only the sealed bundle.

# [bundle] is optional; each field has the default shown.
[bundle]
# Chips refuse a bundle whose epoch is not above the one they hold: raise it for every update.
# 0 .. 4294967295.
epoch = 1
# The AEAD that seals the assets: "AES-GCM" (default; COSE name "A256GCM") or "AES-CCM"
# (patent claim 6; COSE name "AES-CCM-16-128-256").
aead = "AES-GCM"
# Plaintext bytes per chunk, 256 .. 32768. A chip holds one chunk at a time in its 64 KiB of RAM,
# so a firmware image of any size installs chunk by chunk. Default (omit the line): the largest
# multiple of 1024 that fits beside this list's manifest, the fewest chunks to send.
# chunk-size = 16384
# The lowest security version of the provisioning software allowed to install this bundle.
# Default: the security version of the software that seals it (omit the line to keep that).
# min-security-version = 1

# One [[asset]] table per asset, at most 64. Every asset has a `name` (unique in the bundle,
# 1..64 printable characters) and a `kind`:
#   key          a key the OEM supplies, installed into a key slot
#   generate     a key made on the chip from the OEM's seed; only its public key leaves
#   device-key   a key each chip makes for itself at the CM; its public key comes back in
#                the chip's receipt (oem reconcile --csv), its private key never leaves it
#   certificate  an X.509 certificate, installed (as DER) into a flash region
#   firmware     a firmware image, installed into a flash region
#   config       configuration data, installed into a flash region
# Keys (key, generate, device-key) go to a `slot` (0..255, each slot once); the others to a
# `region` (a flash region name, each region once). A key's `key-type` is one of
#   aes-256 (32 bytes)  ec-p256 (32)  ec-p384 (48)  ed25519 (32)  raw (16, 24, 32, 48 or 64 bytes)
# The content comes from exactly one of
#   hex   = "..."   the bytes in hex (key, certificate, firmware, config)
#   file  = "..."   a file (key, certificate, firmware, config); a key file may be PEM or DER
#                   (PKCS#8, or SEC1 for EC keys, unencrypted) or the raw bytes
#   value = "..."   UTF-8 text (config only)

[[asset]]
name = "app-key"
kind = "key"
key-type = "aes-256"
slot = 1
file = "app-key.bin"          # 32 raw bytes; or: hex = "<64 hex digits>"

[[asset]]
name = "attest-key"
kind = "key"
key-type = "ec-p256"
slot = 2
file = "attest-key.pem"       # PEM or DER, PKCS#8 or SEC1; or the raw 32-byte scalar

# A generated key is made on the chip from the OEM's seed: it is the SAME key on every chip
# that installs this bundle (one key for the whole product, not one per device), and regen
# (FIG. 4) makes it again bit for bit. Its public key is written to OEM_DIR/generated/NAME.pub.pem.
# key-type: ec-p256, ec-p384, ed25519 or aes-256 (an AES key has no public part).
[[asset]]
name = "fleet-signing-key"
kind = "generate"
key-type = "ec-p256"
slot = 8

# A device key is the opposite of a generated one: each chip makes its OWN key from its random
# number generator when it installs the bundle at the CM. Nobody ever holds the private key,
# the CM included; the public key travels in the receipt the chip signs, and `oem reconcile
# --csv` lists it per chip, for the OEM's own CA. key-type: ec-p256. No content.
[[asset]]
name = "cloud-identity-key"
kind = "device-key"
key-type = "ec-p256"
slot = 9

[[asset]]
name = "device-cert"
kind = "certificate"
region = "cert"
file = "device.pem"           # PEM or DER; installed as DER

[[asset]]
name = "application"
kind = "firmware"
region = "app"
file = "app.bin"              # any size: sealed in chunks of chunk-size bytes
# firmware, config: "deflate" (each chunk compressed; the chip inflates it and installs the
# file's exact bytes) or "none". Default: deflate when that saves at least 5 %.
compress = "deflate"

[[asset]]
name = "settings"
kind = "config"
region = "config"
value = "mode=production"     # or: hex = "...", or: file = "settings.bin"
"""
