"""The entries of a bundle's manifest (formats/bundle/manifest.py): each asset, each key a chip
makes for itself at install, and the authorized set; the manifest's map is in manifest.py's
docstring, these are its "assets", "device-keys" and "authorized".

Invariants:
- An entry parsed from CBOR (`from_map`, `from_cbor`) has exactly its known fields, each of its
  type and within its bound (names ``LIMITS.name``, slots `MAX_SLOT`, lengths `MAX_ASSET_LEN`,
  the nonce prefix the AEAD's nonce length - 5), or a `FormatError` names the entry.
- An asset entry is checked whole (`validate`): a known kind, not empty, a chunk count that
  matches its length, a key's length fitting its key type, and a deflate window only on
  firmware or config, within 9..15 and on chunks of at most `MAX_DEFLATE_CHUNK` bytes.
- A device key's digest is a function of its entry alone, the same on every chip.
- An authorized set has a 32-byte root and 1..``LIMITS.authorized_uids`` chips.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from trustprov.crypto.aead import Aead
from trustprov.crypto.digest import DIGEST_LEN, sha256
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.bundle.chunks import chunk_count, chunk_plain_len, sealed_plain_range
from trustprov.formats.deflate import MAX_DEFLATE_CHUNK, MAX_WBITS, MIN_WBITS
from trustprov.formats.limits import LIMITS

ASSET_KINDS: tuple[str, ...] = ("key", "certificate", "firmware", "config")
KEY_TYPES = {
    "aes-256": (32,),
    "ec-p256": (32,),
    "ec-p384": (48,),
    "ed25519": (32,),
    "raw": (16, 24, 32, 48, 64),
}
MAX_KEY_LEN = 64
MAX_SLOT = 255
MAX_ASSET_LEN = 2**40
DEVICE_KEY_TYPES = ("ec-p256",)


@dataclass(frozen=True)
class DeviceKeySpec:
    """A key each chip makes for itself at install (asset kind "device-key")."""

    name: str
    key_type: str
    slot: int

    def to_map(self) -> dict[str, Any]:
        return {"name": self.name, "key-type": self.key_type, "slot": self.slot}

    @functools.cached_property
    def digest(self) -> bytes:
        """What stands for the key in the installed digest (docs/protocol.md 6.7): the same on
        every chip, so a host computes it from the manifest alone (and once per manifest)."""
        return sha256(cbor.encode(["tp-device-key", self.name, self.key_type, self.slot]))

    @classmethod
    def from_map(cls, value: Any, i: int) -> DeviceKeySpec:
        what = f"manifest device key {i}"
        m = cbor.expect_map(value, what, {"name", "key-type", "slot"})
        spec = cls(
            name=cbor.expect_name(m["name"], f"{what}: name", LIMITS.name),
            key_type=cbor.expect(m["key-type"], str, f"{what}: key type"),
            slot=cbor.expect_uint(m["slot"], f"{what}: slot", MAX_SLOT),
        )
        if spec.key_type not in DEVICE_KEY_TYPES:
            raise FormatError(f"{what}: key type must be one of {', '.join(DEVICE_KEY_TYPES)}")
        return spec


@dataclass(frozen=True)
class AssetEntry:
    name: str
    kind: str
    length: int
    chunks: int
    nonce: bytes
    digest: bytes
    key_type: str | None = None
    slot: int | None = None
    region: str | None = None
    deflate: int | None = None  # W of a deflated firmware or config asset (6.2)

    @property
    def is_key(self) -> bool:
        return self.kind == "key"

    def plain_len(self, chunk_size: int, index: int) -> int:
        """Bytes chunk ``index`` installs: from the length under the CMAC, not the stream."""
        return chunk_plain_len(self.length, chunk_size, index)

    def sealed_plain_range(self, chunk_size: int, index: int) -> tuple[int, int]:
        """(least, most) bytes of chunk ``index``'s AEAD plaintext (compressed if deflated)."""
        return sealed_plain_range(self.plain_len(chunk_size, index), self.deflate is not None)

    @property
    def target(self) -> str:
        return f"slot {self.slot}" if self.is_key else f"region {self.region}"

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "length": self.length,
            "chunks": self.chunks,
            "nonce": self.nonce,
            "digest": self.digest,
        }
        if self.is_key:
            m["key-type"] = self.key_type
            m["slot"] = self.slot
        else:
            m["region"] = self.region
        if self.deflate is not None:  # absent when not deflated: such an entry encodes as before
            m["deflate"] = self.deflate
        return m

    @classmethod
    def from_map(cls, value: Any, aead: Aead, chunk_size: int, i: int) -> AssetEntry:
        what = f"manifest asset {i}"
        base = {"name", "kind", "length", "chunks", "nonce", "digest"}
        kind = cbor.expect(cbor.expect(value, dict, what).get("kind"), str, f"{what}: kind")
        if kind not in ASSET_KINDS:
            raise FormatError(f"{what}: unknown kind")
        extra = {"key-type", "slot"} if kind == "key" else {"region"}
        m = cbor.expect_map(value, what, base | extra, {"deflate"})
        entry = cls(
            name=cbor.expect_name(m["name"], f"{what}: name", LIMITS.name),
            kind=kind,
            length=cbor.expect_uint(m["length"], f"{what}: length", MAX_ASSET_LEN),
            chunks=cbor.expect_uint(m["chunks"], f"{what}: chunks", MAX_ASSET_LEN),
            nonce=cbor.expect_bstr(m["nonce"], f"{what}: nonce", aead.nonce_len - 5),
            digest=cbor.expect_bstr(m["digest"], f"{what}: digest", DIGEST_LEN),
            key_type=cbor.expect(m["key-type"], str, f"{what}: key type")
            if kind == "key"
            else None,
            slot=cbor.expect_uint(m["slot"], f"{what}: slot", MAX_SLOT) if kind == "key" else None,
            region=cbor.expect_name(m["region"], f"{what}: region", LIMITS.name)
            if kind != "key"
            else None,
            deflate=cbor.expect_uint(m["deflate"], f"{what}: deflate", MAX_WBITS)
            if "deflate" in m
            else None,
        )
        entry.validate(chunk_size)
        return entry

    def validate(self, chunk_size: int) -> None:
        what = f"asset {self.name!r}"
        if self.kind not in ASSET_KINDS:
            raise FormatError(f"{what}: kind must be one of {', '.join(ASSET_KINDS)}")
        if self.length < 1:
            raise FormatError(f"{what}: empty")
        if self.chunks != chunk_count(self.length, chunk_size):
            raise FormatError(f"{what}: chunk count does not match its length")
        if self.is_key:
            if self.key_type not in KEY_TYPES:
                raise FormatError(f"{what}: unknown key type")
            if self.length not in KEY_TYPES[self.key_type]:
                raise FormatError(f"{what}: wrong length for a {self.key_type} key")
        if self.deflate is not None:
            if self.kind not in ("firmware", "config"):
                raise FormatError(f"{what}: only firmware and config assets are deflated")
            if not MIN_WBITS <= self.deflate <= MAX_WBITS:
                raise FormatError(f"{what}: deflate window must be {MIN_WBITS}..{MAX_WBITS}")
            if chunk_size > MAX_DEFLATE_CHUNK:
                raise FormatError(f"{what}: deflated in chunks above {MAX_DEFLATE_CHUNK} bytes")


@dataclass(frozen=True)
class Authorization:
    """The authorized set as a bundle names it: its Merkle root and its size (formats.authz)."""

    root: bytes
    count: int

    def __post_init__(self) -> None:
        if len(self.root) != DIGEST_LEN or not 1 <= self.count <= LIMITS.authorized_uids:
            raise FormatError("manifest: authorized set: a 32-byte root and 1 or more chips")

    def to_cbor(self) -> list[Any]:
        return [self.root, self.count]

    @classmethod
    def from_cbor(cls, value: Any, what: str) -> Authorization:
        v = cbor.expect(value, list, what)
        if len(v) != 2:
            raise FormatError(f"{what}: needs [root, count]")
        return cls(
            cbor.expect_bstr(v[0], f"{what}: root", DIGEST_LEN),
            cbor.expect_uint(v[1], f"{what}: count", LIMITS.authorized_uids),
        )
