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
    name: int = 64
    link_message: int = 4 * MiB + 64 * KiB  # the largest request carries the software image
    link_frame: int = 64 * KiB - 1  # largest frame payload: the frame's 16-bit length field
    lot_manifest: int = 2 * GiB
    asset_list: int = 1 * MiB
    certificate: int = 4 * KiB


LIMITS = Limits()
