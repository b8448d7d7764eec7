"""The bundle's manifest: a COSE_Mac0 (AES-CMAC under K_AUTH) over what the chunks must be.

Manifest payload (canonical CBOR map)::

    "v"           2             1 was the hash chain over every ciphertext byte: refused
    "family"      bstr .8       chip family id
    "bundle-id"   bstr .16      random, names this bundle
    "epoch"       uint          chips refuse an update whose epoch is not above the installed one
    "min-svn"     uint          lowest software security version allowed to install it
    "aead"        3 | 31        A256GCM | AES-CCM-16-128-256
    "chunk-size"  uint          plaintext bytes per chunk (the last may be shorter)
    "assets"      [+ asset]
    "authorized"  [root: bstr .32, count: uint] / null
                                the authorized set's Merkle root and size (formats.authz): only
                                those chips install it; null: any chip of the family
    ? "device-keys" [+ device-key]   ; only when the bundle has any (docs/protocol.md 6.8)

    device-key = { "name": tstr, "key-type": "ec-p256", "slot": uint }
      ; made on each chip from its TRNG at install; its private half never leaves the chip

    asset = {
      "name": tstr, "kind": "key" | "certificate" | "firmware" | "config",
      ? "key-type": tstr,  ; keys: "aes-256" | "ec-p256" | "ec-p384" | "ed25519" | "raw"
      ? "slot": uint,              ; keys: key slot
      ? "region": tstr,            ; everything else: flash region
      "length": uint,              ; plaintext bytes (of a deflated asset: inflated)
      "chunks": uint,
      "nonce": bstr,               ; STREAM nonce prefix, AEAD nonce length - 5 bytes
      "digest": bstr .32,          ; head of the chain over the chunks' AEAD tags (crypto.digest)
      ? "deflate": 9..15           ; firmware, config: each chunk's plaintext is raw DEFLATE
                                   ; with a window of 2^W (formats.deflate); never on keys
    }

COSE_Mac0 protected header: {1: -65537 (AES-CMAC-256/128, private use), 3:
"application/vnd.trustprov.manifest+cbor", "tp-family": family id}.

Chunk i (0-based) of asset a is AEAD(K, nonce = prefix || [i]_32 || [last]_8, plaintext chunk,
aad = CBOR ["tp-chunk", bundle-id, a]) with K = K_ENCK for keys and K_ENCD for the rest: the
nonce, AAD and lengths of a chunk are functions of the manifest here.

Invariants: a manifest is checked whole in its constructor (names, slots, regions unique, each
length fitting its key type, chunk counts matching lengths); its "v" is read before any other
field, so a bundle of another construction gets its own code (`bundle-version`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from trustprov.crypto.aead import AEAD_BY_ID, CMAC_ALG_ID, TAG_LEN, Aead
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor, cose
from trustprov.formats.bundle.entries import (
    AssetEntry,
    Authorization,
    DeviceKeySpec,
)
from trustprov.formats.limits import LIMITS

MANIFEST_CONTENT_TYPE = "application/vnd.trustprov.manifest+cbor"
#: the manifest's "v": 2 since the chain runs over the AEAD tags (docs/protocol.md 6.3). A v1
#: manifest's digests are heads of a chain over the ciphertext, which no chip of this software
#: checks: both the host and the chip refuse it with code ``bundle-version``, telling to reseal.
MANIFEST_VERSION = 2
BUNDLE_ID_LEN = 16
MIN_CHUNK = 256


@dataclass(frozen=True)
class Manifest:
    family_id: bytes
    bundle_id: bytes
    epoch: int
    min_security_version: int
    aead: Aead
    chunk_size: int
    assets: tuple[AssetEntry, ...]
    authorized: Authorization | None = None
    device_keys: tuple[DeviceKeySpec, ...] = ()

    def __post_init__(self) -> None:
        if len(self.family_id) != FAMILY_ID_LEN or len(self.bundle_id) != BUNDLE_ID_LEN:
            raise FormatError("manifest: bad family or bundle id length")
        if not MIN_CHUNK <= self.chunk_size <= min(LIMITS.chunk, self.aead.max_message):
            top = min(LIMITS.chunk, self.aead.max_message)
            raise FormatError(f"manifest: chunk size must be {MIN_CHUNK}..{top} ({self.aead.name})")
        if not 1 <= len(self.assets) <= LIMITS.assets_per_bundle:
            raise FormatError(f"manifest: 1..{LIMITS.assets_per_bundle} assets")
        if len(self.assets) + len(self.device_keys) > LIMITS.assets_per_bundle:
            raise FormatError(f"manifest: more than {LIMITS.assets_per_bundle} assets")
        for what, values in (
            ("name", [a.name for a in self.assets] + [d.name for d in self.device_keys]),
            (
                "slot",
                [a.slot for a in self.assets if a.is_key] + [d.slot for d in self.device_keys],
            ),
            ("region", [a.region for a in self.assets if not a.is_key]),
        ):
            if len(set(values)) != len(values):
                raise FormatError(f"manifest: duplicate asset {what}")
        for a in self.assets:
            a.validate(self.chunk_size)
            if a.is_key and a.chunks != 1:
                raise FormatError(f"manifest: key asset {a.name!r} must be one chunk")

    @property
    def deflated(self) -> bool:
        """Whether any asset is deflated: its chips reserve the inflater (docs/protocol.md 8.4)."""
        return any(a.deflate is not None for a in self.assets)

    def to_payload(self) -> bytes:
        return cbor.encode(
            {
                "v": MANIFEST_VERSION,
                "family": self.family_id,
                "bundle-id": self.bundle_id,
                "epoch": self.epoch,
                "min-svn": self.min_security_version,
                "aead": self.aead.cose_id,
                "chunk-size": self.chunk_size,
                "assets": [a.to_map() for a in self.assets],
                "authorized": None if self.authorized is None else self.authorized.to_cbor(),
                # absent when empty: a bundle without device keys encodes as before they were
                **(
                    {"device-keys": [d.to_map() for d in self.device_keys]}
                    if self.device_keys
                    else {}
                ),
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Manifest:
        """The manifest of ``payload``, checked field by field. Every chip of a lot receives
        the same payload: the manifest of a payload already parsed in this process is that
        parse's (immutable) result, found by the payload's bytes; the CMAC over them is each
        chip's own."""
        return _manifest_of(bytes(payload))

    @classmethod
    def _parse(cls, payload: bytes) -> Manifest:
        what = "manifest"
        decoded = cbor.decode(
            payload, limit=LIMITS.manifest, what=what, shape=LIMITS.manifest_shape
        )
        _check_version(decoded)
        m = cbor.expect_map(
            decoded,
            what,
            {
                "v",
                "family",
                "bundle-id",
                "epoch",
                "min-svn",
                "aead",
                "chunk-size",
                "assets",
                "authorized",
            },
            {"device-keys"},
        )
        aead_id = cbor.expect(m["aead"], int, f"{what}: aead")
        if aead_id not in AEAD_BY_ID:
            raise FormatError(f"{what}: unsupported AEAD {cbor.show(aead_id)}")
        aead = AEAD_BY_ID[aead_id]
        chunk_size = cbor.expect_uint(m["chunk-size"], f"{what}: chunk size", LIMITS.chunk)
        assets = cbor.expect(m["assets"], list, f"{what}: assets")
        if len(assets) > LIMITS.assets_per_bundle:
            raise FormatError(f"{what}: more than {LIMITS.assets_per_bundle} assets")
        if chunk_size < MIN_CHUNK:
            raise FormatError(f"{what}: chunk size below {MIN_CHUNK}")
        device_keys: tuple[DeviceKeySpec, ...] = ()
        if "device-keys" in m:  # absent, not empty, when the bundle has none
            listed = cbor.expect(m["device-keys"], list, f"{what}: device keys")
            if not 1 <= len(listed) <= LIMITS.assets_per_bundle:
                raise FormatError(f"{what}: 1..{LIMITS.assets_per_bundle} device keys")
            device_keys = tuple(DeviceKeySpec.from_map(d, i) for i, d in enumerate(listed))
        return cls(
            family_id=cbor.expect_bstr(m["family"], f"{what}: family", FAMILY_ID_LEN),
            bundle_id=cbor.expect_bstr(m["bundle-id"], f"{what}: bundle id", BUNDLE_ID_LEN),
            epoch=cbor.expect_uint(m["epoch"], f"{what}: epoch", 2**32 - 1),
            min_security_version=cbor.expect_uint(m["min-svn"], f"{what}: min-svn", 2**32 - 1),
            aead=aead,
            chunk_size=chunk_size,
            assets=tuple(AssetEntry.from_map(a, aead, chunk_size, i) for i, a in enumerate(assets)),
            authorized=None
            if m["authorized"] is None
            else Authorization.from_cbor(m["authorized"], f"{what}: authorized"),
            device_keys=device_keys,
        )


@functools.lru_cache(maxsize=16)
def _manifest_of(payload: bytes) -> Manifest:
    return Manifest._parse(payload)  # a refusal raises: only good parses are kept


@dataclass(frozen=True)
class SignedManifest:
    """The manifest inside its COSE_Mac0. Parsing does not verify: only a chip can (K_AUTH)."""

    manifest: Manifest
    message: cose.CoseMessage = field(repr=False)

    @staticmethod
    def protected_header(family_id: bytes) -> dict[Any, Any]:
        return {
            cose.ALG: CMAC_ALG_ID,
            cose.CONTENT_TYPE: MANIFEST_CONTENT_TYPE,
            "tp-family": family_id,
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedManifest:
        return cls.from_message(
            cose.decode(
                data,
                cose.TAG_MAC0,
                limit=LIMITS.manifest,
                what="manifest",
                shape=LIMITS.manifest_shape,
            )
        )

    @classmethod
    def from_message(cls, m: cose.CoseMessage) -> SignedManifest:
        what = "manifest"
        h = cbor.expect_map(
            m.protected, f"{what}: protected header", {cose.ALG, cose.CONTENT_TYPE, "tp-family"}
        )
        if h[cose.ALG] != CMAC_ALG_ID or h[cose.CONTENT_TYPE] != MANIFEST_CONTENT_TYPE:
            raise FormatError(f"{what}: not a trustprov manifest (AES-CMAC COSE_Mac0)")
        if m.unprotected:
            raise FormatError(f"{what}: unexpected unprotected header")
        if len(m.auth) != TAG_LEN:
            raise FormatError(f"{what}: CMAC tag must be {TAG_LEN} bytes")
        manifest = Manifest.from_payload(m.body)
        if h["tp-family"] != manifest.family_id:
            raise FormatError(f"{what}: header and payload name different families")
        return cls(manifest, m)

    def to_bytes(self) -> bytes:
        return self.message.to_bytes()


def _check_version(decoded: Any) -> None:
    """The manifest's "v" before anything else of it: a bundle of another version gets its own
    code and a message that says what to do, not a complaint about its fields."""
    if not isinstance(decoded, dict) or "v" not in decoded:
        return  # expect_map says what is wrong with it
    v = decoded["v"]
    if isinstance(v, bool) or not isinstance(v, int):
        raise FormatError("manifest: version is not an integer")
    if v == 1:
        raise FormatError(
            "bundle of manifest v1 (hash chain over the ciphertext), which this trustprov no "
            f"longer installs: reseal the assets into a v{MANIFEST_VERSION} bundle "
            "(oem keygen or oem regen)",
            code="bundle-version",
        )
    if v != MANIFEST_VERSION:
        raise FormatError(
            f"bundle of manifest v{cbor.show(v)}: this trustprov installs v{MANIFEST_VERSION} only",
            code="bundle-version",
        )
