"""Whether a bundle fits a chip and the CM's tool: one set of numbers for both sides.

The chip reserves its RAM with these functions (`firmware.provisioning`, `firmware.sealing`,
`chip.ram`), and the OEM's tools check an asset list against them before a chip is touched
(`roles.oem`, `roles.assets`), so what the OEM's tool accepts is exactly what every chip of the
family and `cm provision` accept, and the numbers cannot drift apart.

Invariants:
- ``provisioning_ram(m, c)`` is the most a provisioning session holds at once: the session's keys
  and counters, the manifest (``m`` bytes, held from cm.begin to cm.finish) and one chunk's
  ciphertext and plaintext (chunk size ``c``), and with ``deflate`` (any asset of the bundle
  deflated) the inflater's state and the 16 bytes a deflated chunk may exceed ``c`` in each of
  the two chunk buffers (`trustprov.formats.deflate.DEFLATE_RAM`, 8,224 bytes).
- ``sealing_ram(n, c)`` is the most a sealing session (FIG. 2/4) holds with ``n`` assets sealed.
- ``check_bundle`` raises `FormatError` with one line saying which limit a bundle breaks.
"""

from __future__ import annotations

from trustprov.errors import FormatError
from trustprov.formats.deflate import DEFLATE_RAM
from trustprov.formats.limits import LIMITS, KiB

CHIP_RAM = 64 * KiB  # the working RAM of every chip of the family
SESSION_RAM = 512  # a firmware session's keys, seed and counters
ENTRY_RAM = 160  # one manifest entry while a bundle is being sealed
CHUNK_OVERHEAD = 32  # a chunk's tag and chain link beside its ciphertext and plaintext
SEAL_OVERHEAD = 16  # the tag of the chunk being sealed


def begin_ram(manifest_len: int) -> int:
    """What cm.begin reserves: the session and the manifest it keeps until cm.finish."""
    return SESSION_RAM + manifest_len


def chunk_ram(chunk_size: int, deflate: bool = False) -> int:
    """What a provisioning session adds once the manifest is verified: one chunk in, one out,
    and the inflater when any asset of the manifest is deflated."""
    return 2 * chunk_size + CHUNK_OVERHEAD + (DEFLATE_RAM if deflate else 0)


def provisioning_ram(manifest_len: int, chunk_size: int, deflate: bool = False) -> int:
    return begin_ram(manifest_len) + chunk_ram(chunk_size, deflate)


def sealing_ram(assets: int, chunk_size: int) -> int:
    return SESSION_RAM + ENTRY_RAM * assets + 2 * chunk_size + SEAL_OVERHEAD


def check_bundle(
    *,
    manifest_len: int,
    chunk_size: int,
    assets: int,
    bundle_len: int,
    ram: int = CHIP_RAM,
    deflate: bool = False,
) -> None:
    """Raise `FormatError` unless a bundle of this shape seals on a chip, installs on every chip
    of the family and is read by `cm provision`."""
    if manifest_len > LIMITS.manifest:
        raise FormatError(
            f"the manifest would be {manifest_len} bytes, above the limit of {LIMITS.manifest}: "
            "use fewer assets or shorter names"
        )
    need = provisioning_ram(manifest_len, chunk_size, deflate)
    if need > ram:
        inflater = ", the inflater of its deflated assets" if deflate else ""
        raise FormatError(
            f"a chip would need {need} bytes of RAM to install the bundle (manifest "
            f"{manifest_len} bytes, chunks of {chunk_size}{inflater}), above its {ram}: use "
            "smaller chunks, fewer assets or shorter names"
        )
    need = sealing_ram(assets, chunk_size)
    if need > ram:
        raise FormatError(
            f"the provisioning chip would need {need} bytes of RAM to seal {assets} assets in "
            f"chunks of {chunk_size}, above its {ram}"
        )
    if bundle_len > LIMITS.bundle:
        raise FormatError(
            f"the bundle would be {bundle_len:,} bytes, above the {LIMITS.bundle:,} that "
            "cm provision reads: use fewer or smaller assets"
        )
