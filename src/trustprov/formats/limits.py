"""Size limits on every untrusted input, in one place (as python-tuf's ngclient config)."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


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
    lot_manifest: int = 2 * GiB
    asset_list: int = 1 * MiB
    certificate: int = 4 * KiB
    # a chip's installed state (docs/protocol.md 6.7): the chip refuses, before committing, an
    # install beyond these, and loads any state within them at power-on. The largest state the
    # formats allow (64 slots and 64 regions, 64-byte names, 64-byte keys) encodes in under 28 KiB.
    installed_slots: int = 64
    installed_regions: int = 64
    installed_state: int = 32 * KiB


LIMITS = Limits()
