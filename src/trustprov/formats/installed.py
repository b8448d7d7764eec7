"""The public digest of a chip's installed state, and the capacity every chip holds to.

Invariants (docs/protocol.md 6.7):
- the digest is SHA-256 over one canonical CBOR array built from public values only (domain id,
  bundle id, epoch; per slot its asset name, key type and manifest digest; per region its asset
  name, length and content id). No key value, no plaintext and nothing derived from a secret
  other than the public DOMAIN_ID goes in, so a chip can report it to anyone;
- a host computes the same digest from the bundle it sent and the chip's domain id alone
  (`expected_installed_digest`), because an update replaces the whole installed state: what a
  chip holds after installing a bundle depends on that bundle and the domain only;
- `check_capacity` is the one definition of what a chip may store; a state within it always
  loads at power-on.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from trustprov.crypto.digest import sha256
from trustprov.errors import FormatError
from trustprov.formats import cbor
from trustprov.formats.bundle import Bundle, Manifest
from trustprov.formats.limits import LIMITS

DIGEST_MAGIC = "trustprov-installed"
DIGEST_FORMAT = 1

#: per slot: asset name, key type, the asset's manifest digest (its hash-chain head)
SlotView = tuple[str, str, bytes]
#: per region: asset name, plaintext length, content id
RegionView = tuple[str, int, bytes]


def content_id(domain_id: bytes, digest: bytes) -> bytes:
    """Names a data asset's content on a chip: SHA-256(DOMAIN_ID || manifest digest)."""
    return sha256(domain_id, digest)


def installed_digest(
    *,
    domain_id: bytes,
    bundle_id: bytes,
    epoch: int,
    slots: Mapping[int, SlotView],
    regions: Mapping[str, RegionView],
) -> bytes:
    # every chip of a lot holding one bundle has the same public view: computed once
    return _installed_digest(
        domain_id,
        bundle_id,
        epoch,
        tuple((n, tuple(s)) for n, s in slots.items()),
        tuple((name, tuple(r)) for name, r in regions.items()),
    )


@functools.lru_cache(maxsize=64)
def _installed_digest(
    domain_id: bytes,
    bundle_id: bytes,
    epoch: int,
    slots: tuple[tuple[int, tuple[Any, ...]], ...],
    regions: tuple[tuple[str, tuple[Any, ...]], ...],
) -> bytes:
    return sha256(
        cbor.encode(
            [
                DIGEST_MAGIC,
                DIGEST_FORMAT,
                domain_id,
                bundle_id,
                epoch,
                {n: list(s) for n, s in slots},
                {name: list(r) for name, r in regions},
            ]
        )
    )


def expected_installed_digest(bundle: Bundle | Manifest, domain_id: bytes) -> bytes:
    """The digest a chip of OEM domain ``domain_id`` reports once it has installed ``bundle``,
    whatever it held before (the host's side: it needs neither a key nor a plaintext)."""
    m = bundle.manifest if isinstance(bundle, Bundle) else bundle
    slots: dict[int, SlotView] = {}
    regions: dict[str, RegionView] = {}
    for a in m.assets:
        if a.is_key:
            assert a.slot is not None  # noqa: S101 - Manifest checked it
            assert a.key_type is not None  # noqa: S101 - Manifest checked it
            slots[a.slot] = (a.name, a.key_type, a.digest)
        else:
            assert a.region is not None  # noqa: S101 - Manifest checked it
            regions[a.region] = (a.name, a.length, content_id(domain_id, a.digest))
    for d in m.device_keys:  # per chip, but what stands for it in the digest is not
        slots[d.slot] = (d.name, d.key_type, d.digest)
    return installed_digest(
        domain_id=domain_id, bundle_id=m.bundle_id, epoch=m.epoch, slots=slots, regions=regions
    )


def check_capacity(slots: int, regions: int, encoded_len: int) -> None:
    """Raise `FormatError` if a state of this many slots and regions, encoding to
    ``encoded_len`` bytes, is more than a chip stores."""
    if slots > LIMITS.installed_slots:
        raise FormatError(f"installed state: more than {LIMITS.installed_slots} key slots")
    if regions > LIMITS.installed_regions:
        raise FormatError(f"installed state: more than {LIMITS.installed_regions} flash regions")
    if encoded_len > LIMITS.installed_state:
        raise FormatError(f"installed state: more than {LIMITS.installed_state} bytes")
