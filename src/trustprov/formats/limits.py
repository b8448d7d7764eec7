"""Size limits on every untrusted input, in one place (as python-tuf's ngclient config).

Bytes alone do not bound what a message costs: one byte of CBOR (an empty map) becomes a Python
object of some 64 bytes, so each decoded artifact also has a `Shape`, checked on the encoded
bytes before anything is built. With both, decoding n bytes costs O(n + items) memory and work.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
Mi = 1024 * 1024  # a count, not a size


@dataclass(frozen=True)
class Shape:
    """At most ``items`` CBOR data items (every head: array, map, tag, string, number, simple
    value; a map of n pairs is 1 + 2n items, a tag and its content 2) nested at most ``depth``
    containers or tags deep (a bare item has depth 0, ``[[1]]`` has depth 2)."""

    items: int
    depth: int


@dataclass(frozen=True)
class Limits:
    software: int = 4 * MiB
    sealed_value: int = 1 * KiB
    manifest: int = 32 * KiB
    bundle: int = 1 * GiB
    assets_per_bundle: int = 64
    chunk: int = 64 * KiB
    name: int = 64  # UTF-8 bytes, not characters
    link_message: int = 4 * MiB + 64 * KiB  # the largest request carries the software image
    link_frame: int = 64 * KiB - 1  # largest frame payload: the frame's 16-bit length field
    lot_manifest: int = 2 * GiB
    asset_list: int = 1 * MiB
    certificate: int = 4 * KiB
    immutable: int = 4 * KiB  # the image rom.burn takes (formats.immutable)
    authorized_uids: int = 16 * Mi  # UIDs in one authorized set (formats.authz)
    authorized: int = 16 * 16 * Mi + 1 * KiB  # its AUTH file: 16 bytes a UID and a header
    # structure of each decoded artifact; the largest genuine one of each is far below
    software_shape: Shape = Shape(items=64, depth=6)  # a COSE_Sign nests its signatures
    sealed_value_shape: Shape = Shape(items=64, depth=4)
    protected_header_shape: Shape = Shape(items=32, depth=2)
    manifest_shape: Shape = Shape(items=4096, depth=6)  # 64 assets of ~16 items: ~1,050
    # 1 GiB of the smallest (256-byte) chunks, plus the header; a smaller bundle may hold only
    # one item per 256 bytes (+ 1024), so a genuine bundle costs little more than its bytes
    bundle_shape: Shape = Shape(items=4 * Mi + 1024, depth=4)
    link_message_shape: Shape = Shape(items=16384, depth=8)  # ~150 in the largest seen
    installed_state_shape: Shape = Shape(items=65536, depth=6)
    immutable_shape: Shape = Shape(items=32, depth=3)  # a hybrid names [alg, key] pairs
    cbor_default_shape: Shape = Shape(items=1024, depth=8)  # any other CBOR input
    # JSON and TOML: items are counted on the text before parsing (an upper bound)
    lot_manifest_items_per_kib: int = 16  # a chip's entry is ~1 KiB and 5 items
    asset_list_items: int = 8192
    text_depth: int = 8
    # a chip's installed state (docs/protocol.md 6.7): the chip refuses, before committing, an
    # install beyond these, and loads any state within them at power-on. The largest state the
    # formats allow (64 slots and 64 regions, 64-byte names, 64-byte keys) encodes in under 28 KiB.
    installed_slots: int = 64
    installed_regions: int = 64
    installed_state: int = 32 * KiB
    # the bytes of one flash region, so of one data asset: the most a chip's store holds in a
    # region (the reference chip keeps a region as one SQLite blob, which stops at 10^9 bytes);
    # the OEM's tools seal no larger data asset, and a chip refuses to commit one (`capacity`)
    region: int = 900 * MiB
    # a receipts file (oem reconcile): a receipt is about 1 KiB, so the receipts of the largest
    # authorized set (16 Mi chips), or any lot's with room to spare; each receipt, MAX_RECEIPT
    receipts_file: int = 16 * GiB


LIMITS = Limits()
#: chips per lot: each takes ~820 bytes of lot manifest, which LIMITS.lot_manifest caps at 2 GiB
MAX_LOT = 2_000_000
