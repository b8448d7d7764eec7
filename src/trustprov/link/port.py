"""The chip's I/O port: requests in, responses out. Chip side of the link.

Before boot the port serves the boot ROM: status, identity, attestation, the manufacturing steps,
and boot.
After a successful boot it also serves the provisioning software's commands. A refusal is
answered with its code and fixed message; an unexpected fault is answered as "internal" with no
detail, so nothing of the chip's memory can ride out on an exception text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trustprov.chip.device import Chip
from trustprov.errors import ChipRefused, TrustprovError
from trustprov.firmware.commands import ProvisioningSoftware
from trustprov.formats import cbor
from trustprov.formats.attestation import CHALLENGE_LEN
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS
from trustprov.link import messages

log = logging.getLogger(__name__)


_last_image: tuple[bytes, ImmutableMemory] | None = None


def _parsed_image(data: bytes) -> ImmutableMemory:
    """`ImmutableMemory.from_bytes`, parsed once for a run of chips burned with the same image
    (a lot): the result is a frozen value of those exact bytes, so reusing it changes nothing
    but the time. A parse that fails is never kept."""
    global _last_image  # noqa: PLW0603 - one entry per process, like the farm's family cache
    last = _last_image
    if last is not None and last[0] == data:
        return last[1]
    image = ImmutableMemory.from_bytes(data)
    _last_image = (bytes(data), image)
    return image


class ChipPort:
    def __init__(self, chip: Chip) -> None:
        self._chip = chip
        self._software: ProvisioningSoftware | None = None

    def __repr__(self) -> str:
        return f"ChipPort(uid={self._chip.uid.hex()})"

    def handle(self, request: bytes) -> bytes:
        try:
            op, args = messages.decode_request(request)
            return messages.encode_ok(self._dispatch(op, args))
        except TrustprovError as e:
            return messages.encode_error(e.code, e.message)
        except Exception as e:  # noqa: BLE001 - a fault must never take chip memory out in its text
            log.warning("chip %s: internal fault %s", self._chip.uid.hex(), type(e).__name__)
            return messages.encode_error("internal", f"internal fault ({type(e).__name__})")

    def _dispatch(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        rom = _ROM.get(op)
        if rom is not None:
            return rom(self, args)
        if self._software is None:
            raise ChipRefused(
                f"unknown command {op!r} (no software booted)", code="unknown-command"
            )
        return self._software.handle(op, args)

    def _identity(self, args: dict[str, Any]) -> dict[str, Any]:
        cbor.expect_map(args, "identity", set())
        return {
            "certificate": self._chip.certificate,
            "public-key": self._chip.identity_public_key(),
        }

    def _burn(self, args: dict[str, Any]) -> dict[str, Any]:
        m = cbor.expect_map(args, "burn", {"image"})
        self._chip.burn_immutable(_parsed_image(cbor.expect_bstr(m["image"], "image")))
        return {}

    def _make_identity(self, args: dict[str, Any]) -> dict[str, Any]:
        cbor.expect_map(args, "make-identity", set())
        return {"public-key": self._chip.make_identity()}

    def _store_certificate(self, args: dict[str, Any]) -> dict[str, Any]:
        m = cbor.expect_map(args, "store-certificate", {"certificate"})
        self._chip.store_certificate(
            cbor.expect_bstr(m["certificate"], "certificate", max_len=LIMITS.certificate)
        )
        return {}

    def _boot(self, args: dict[str, Any]) -> dict[str, Any]:
        m = cbor.expect_map(args, "boot", {"image"})
        if self._software is not None:  # the running software stops and frees its RAM
            self._software.close()
        self._software = None  # a failed boot leaves no software running
        self._software = ProvisioningSoftware(
            self._chip.boot(cbor.expect_bstr(m["image"], "image"))
        )
        return {"security-counter": self._chip.security_counter}

    def _attest(self, args: dict[str, Any]) -> dict[str, Any]:
        m = cbor.expect_map(args, "attest", {"challenge"})
        challenge = cbor.expect_bstr(m["challenge"], "challenge", CHALLENGE_LEN)
        return {"token": self._chip.attest(challenge)}

    def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        # "digests": also each region's content SHA-256 and each asymmetric slot's public key
        digests = cbor.expect_map(args, "status", set(), {"digests"}).get("digests") is True
        chip = self._chip
        status: dict[str, Any] = {
            "uid": chip.uid,
            "lot": chip.lot,
            "family": chip.family_id,
            # public: lets a host check the software before a lot (docs/protocol.md section 8)
            "prov-keys": list(keys) if (keys := chip.prov_keys) is not None else None,
            "prov-suite": chip.prov_suite,
            "lifecycle": chip.lifecycle.name,
            "security-counter": chip.security_counter,
            "installed": None,
            "installed-digest": None,
        }
        if chip.installed is not None:
            i = chip.installed
            status["installed"] = {
                "domain-id": i.domain_id,
                "bundle-id": i.bundle_id,
                "epoch": i.epoch,
                "slots": {
                    n: {"asset": s.asset, "key-type": s.key_type} for n, s in i.slots.items()
                },
                "regions": {n: {"asset": r[0], "length": r[1]} for n, r in i.regions.items()},
            }
            status["installed-digest"] = i.digest()  # public values only (protocol.md 6.7)
            if digests:  # public by design: docs/threat-model.md, "Region digests"
                for n, slot in status["installed"]["slots"].items():
                    slot["public-key"] = chip.slot_public_key(n)
                for n, region in status["installed"]["regions"].items():
                    region["sha256"] = chip.region_digest(n)
        return status


# the boot ROM's commands, by op (functions, not bound methods: a port holds no cycle to itself)
_ROM: dict[str, Callable[[ChipPort, dict[str, Any]], dict[str, Any]]] = {
    "rom.status": ChipPort._status,
    "rom.attest": ChipPort._attest,
    "rom.identity": ChipPort._identity,
    "rom.burn": ChipPort._burn,
    "rom.make-identity": ChipPort._make_identity,
    "rom.store-certificate": ChipPort._store_certificate,
    "rom.boot": ChipPort._boot,
}
