"""The contract manufacturer: check what it was sent, then run FIG. 3 on each chip.

The CM is not trusted and holds no key: these checks are for a clear error before a chip is
touched. Every chip checks everything again itself.

Fail fast (docs/protocol.md section 9, "Stopping a lot"): `Job.check_lot` checks, before any chip
is touched, what a chip's public status lets the host check: the family of the chips against the
family of the share and bundle, and the software's signature under the K_PUK_ICM_PROV the chips
report. `SYSTEMIC` names the refusals that depend only on the artifacts and the family, so that
every chip of the lot would repeat them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustprov.crypto.keys import load_public_key
from trustprov.errors import (
    ChipRefused,
    FormatError,
    InputError,
    TrustprovError,
    VerificationError,
)
from trustprov.formats.attestation import CHALLENGE_LEN, Attestation
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Bundle
from trustprov.formats.expected import Expected
from trustprov.formats.limits import LIMITS
from trustprov.formats.receipt import MAX_RECEIPT
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link.client import ChipClient, PreparedBundle
from trustprov.roles.bundle_io import BundleFile
from trustprov.roles.files import read_bytes

SHOWN_UIDS = 5  # the chips a refusal names, of any number


@dataclass(frozen=True)
class Job:
    """What every chip of a lot receives: the software image and the prepared bundle requests."""

    image: bytes
    software: SignedSoftware
    prepared: PreparedBundle
    family_id: bytes
    boot_request: bytes = field(repr=False)  # "rom.boot" with the image, encoded once per lot
    expected: Expected = field(repr=False)  # what a chip holding the bundle signs

    @classmethod
    def load(cls, software: Path, share: Path, bundle: Path, auth: Path | None = None) -> Job:
        """``auth``: the AUTH file of a bundle for authorized chips only (the chips' proofs)."""
        image = read_bytes(software, limit=LIMITS.software, what="software")
        enc_share = read_bytes(share, limit=LIMITS.sealed_value, what="ENC(OEM_SHARE)")
        # indexed, not loaded: the chunks stay in the file until they are sent (bundle_io)
        bundle_file = BundleFile(bundle)
        authorized = (
            None
            if auth is None
            else AuthorizedSet.from_bytes(
                read_bytes(auth, limit=LIMITS.authorized, what="authorized set")
            )
        )
        return cls.from_parts(image, enc_share, bundle_file, authorized)

    @classmethod
    def from_bytes(
        cls,
        image: bytes,
        enc_share: bytes,
        bundle_bytes: bytes,
        authorized: AuthorizedSet | None = None,
    ) -> Job:
        return cls.from_parts(image, enc_share, Bundle.from_bytes(bundle_bytes), authorized)

    @classmethod
    def from_parts(
        cls,
        image: bytes,
        enc_share: bytes,
        parsed: Bundle | BundleFile,
        authorized: AuthorizedSet | None = None,
    ) -> Job:
        parsed_software = SignedSoftware.from_bytes(image)
        sealed = SealedValue.from_bytes(enc_share, "oem-share")
        if sealed.family_id != parsed.manifest.family_id:
            raise FormatError("ENC(OEM_SHARE) and the bundle are for different chip families")
        if parsed_software.security_version < parsed.manifest.min_security_version:
            needed = parsed.manifest.min_security_version
            raise InputError(
                f"the bundle needs software security version {needed};"
                f" this software is {parsed_software.security_version}"
            )
        named = parsed.manifest.authorized
        if named is not None and authorized is None:
            raise InputError(
                "the bundle is for authorized chips only: give --auth AUTH, the OEM's set"
            )
        if named is not None and authorized is not None and authorized.root != named.root:
            raise InputError("the authorized set given is not the one the bundle names")
        if named is None and authorized is not None:
            raise InputError(
                "--auth given, but the bundle names no authorized set (any chip of its family "
                "installs it): leave --auth out, or ask the OEM for the bundle made with it"
            )
        return cls(
            image,
            parsed_software,
            PreparedBundle.prepare(parsed, enc_share, authorized),
            sealed.family_id,
            ChipClient.boot_request(image),
            Expected.of(parsed),
        )

    def check_authorized(self, uids: Sequence[bytes]) -> None:
        """Refuse, before any chip is touched, a lot with chips outside the authorized set the
        bundle names (each would refuse it: ``unauthorized``), listing the first of them."""
        authorized = self.prepared.authorized
        if authorized is None:
            return
        outside = [u for u in uids if u not in authorized]
        if outside:
            shown = ", ".join(u.hex() for u in outside[:SHOWN_UIDS])
            more = f" and {len(outside) - SHOWN_UIDS} more" if len(outside) > SHOWN_UIDS else ""
            raise InputError(
                f"{len(outside)} of the lot's {len(uids)} chips are not in the authorized set "
                f"the bundle names, so each would refuse it: {shown}{more}"
            )

    def check_lot(self, status: dict[str, Any]) -> None:
        """Raise unless every chip reporting ``status`` (`rom.status` of a chip of the lot) can
        accept this job as far as public data tells: the same family, and software signed by
        the key the chips verify it with. A chip reporting no family (blank) proves nothing."""
        family, keys = status.get("family"), status.get("prov-keys")
        suite = status.get("prov-suite")
        if not isinstance(family, bytes):
            return
        if family != self.family_id:
            raise VerificationError(
                f"the lot's chips are of family {family.hex()}; ENC(OEM_SHARE) and the bundle"
                f" are for family {self.family_id.hex()}",
                code="wrong-family",
            )
        if isinstance(keys, list) and keys and all(isinstance(k, bytes) for k in keys):
            try:
                self.software.verify(
                    [load_public_key(k) for k in keys],
                    suite=suite if isinstance(suite, str) else None,
                )
            except TrustprovError as e:
                raise VerificationError(
                    f"the software is not signed by the key of family {family.hex()}'s chips"
                    " (another ICM's or another family's software?)",
                    code="bad-signature",
                ) from e


#: refusals that depend only on the job and the family, never on one chip's own state: the
#: first chip saying one of these stops the lot (`line.station`). Not here: ``wrong-family``
#: (the host checked the family before the lot, so a chip saying it is a foreign chip),
#: ``lifecycle``, ``rollback``, ``stale-epoch``, ``domain-mismatch`` (what the chip holds),
#: ``unauthorized`` (a chip outside the OEM's authorized set: the next may be in it), and
#: ``transport``, ``internal``, ``bad-sequence`` (one chip or its socket).
SYSTEMIC = frozenset(
    {
        "bad-software",
        "bad-signature",
        "code-mismatch",
        "bad-share",
        "bad-sealed-value",
        "bad-manifest",
        "bundle-version",
        "software-too-old",
        "bad-chunk",
        "bad-asset",
        "incomplete",
        "ram-budget",
        "bad-request",
        "unknown-command",
    }
)


@dataclass(frozen=True)
class Outcome:
    uid: bytes
    result: str  # "provisioned" | "already-provisioned" | "failed" | "bad-receipt"
    error_code: str | None
    error: str | None
    duration_us: int
    finished_at: float
    # the chip's signed receipt (docs/protocol.md 6.8), stored as the chip sent it; None for a
    # chip settled as already-provisioned (no install, no new receipt)
    receipt: bytes | None = field(default=None, repr=False)
    # the chip's attestation token (8.8) over ``challenge``, for a chip found holding the bundle
    attestation: bytes | None = field(default=None, repr=False)
    challenge: bytes | None = field(default=None, repr=False)
    # the certificate the chip itself reported (rom.identity): in-process chips only, for a
    # station given no lot manifest (`roles.trust`)
    certificate: bytes | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.result in ("provisioned", "already-provisioned")


def provision_chip(
    chip: ChipClient,
    uid: bytes,
    job: Job,
    *,
    status_first: bool = False,
    certificate: bool = False,
    rng: Callable[[int], bytes] = os.urandom,
) -> Outcome:
    """FIG. 3 on one chip. A chip that already holds this bundle is settled by what it signs.

    A chip fresh from the lot goes straight to boot and FIG. 3; it is asked to attest (a token
    it signs over a fresh challenge from ``rng``) only if it refuses (a chip holding the bundle
    refuses it as a stale epoch, writing nothing). With ``status_first`` (a claim a dead station
    left: the chip may hold the bundle) it attests before anything is sent, and a chip whose
    token says it holds the bundle is not booted at all. Nothing here verifies a signature: the
    outcome carries the receipt or the token, and the station verifies it under the certificate
    it trusts for ``uid`` before it records anything (`roles.trust.LotTrust.verify`). With
    ``certificate`` the chip's own certificate is read too (in-process chips).
    """
    start = time.perf_counter()
    result, code, error, receipt = "provisioned", None, None, None
    token: tuple[bytes, bytes] | None = None
    cert: bytes | None = None
    try:
        if certificate:
            cert = chip.certificate()
        if status_first and (token := _attested(chip, job, rng)) is not None:
            result = "already-provisioned"
        else:
            chip.send(job.boot_request)
            receipt = _receipt(chip.provision(job.prepared, uid))
    except TrustprovError as e:
        result, code, error = "failed", e.code, e.message
        if not status_first and (token := _attested_after_refusal(chip, job, rng)) is not None:
            result, code, error = "already-provisioned", None, None
    duration = int((time.perf_counter() - start) * 1e6)
    attestation, challenge = token if token is not None else (None, None)
    return Outcome(
        uid, result, code, error, duration, time.time(), receipt, attestation, challenge, cert
    )


def _receipt(answer: dict[str, Any]) -> bytes | None:
    """The receipt of a cm.finish answer, if it is bytes of a receipt's size at most; the
    station verifies it before it records the chip provisioned (none: ``bad-receipt``)."""
    receipt = answer.get("receipt")
    if isinstance(receipt, bytes) and len(receipt) <= MAX_RECEIPT:
        return receipt
    return None


def _attested(
    chip: ChipClient, job: Job, rng: Callable[[int], bytes]
) -> tuple[bytes, bytes] | None:
    """The chip's token and the challenge it answers, if its claims say it holds the bundle
    (bundle id, installed digest for its domain, epoch); None if they do not. Its signature is
    the station's to verify. A chip that cannot attest (``unknown-command``: no ``rom.attest``)
    raises ``no-attestation``: it is not settled."""
    challenge = rng(CHALLENGE_LEN)
    try:
        token = chip.attest(challenge)
    except TrustprovError as e:
        if e.code == "unknown-command":
            raise ChipRefused(
                "the chip cannot attest what it holds (no rom.attest): it is not settled",
                code="no-attestation",
            ) from e
        raise
    try:
        claims = Attestation.from_bytes(token).claims
    except TrustprovError:
        return (token, challenge)  # settled as nothing; the station refuses it as it is
    if claims.bundle_id != job.prepared.bundle_id or claims.domain_id is None:
        return None
    expected = job.expected.installed_digest(claims.domain_id)
    if claims.installed_digest != expected or claims.epoch != job.expected.epoch:
        return None
    return (token, challenge)


def _attested_after_refusal(
    chip: ChipClient, job: Job, rng: Callable[[int], bytes]
) -> tuple[bytes, bytes] | None:
    try:
        return _attested(chip, job, rng)
    except TrustprovError:  # the refusal stands as the chip's answer
        return None
