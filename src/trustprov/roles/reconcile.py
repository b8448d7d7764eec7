"""The OEM's reconciliation: what the chips themselves say they installed (docs/protocol.md 6.8).

Every receipt is classified once, in this order, and counted in exactly one class, so that
``receipts = valid + duplicate + replayed + unauthorized + forged + wrong-bundle + wrong-state``:

1. ``forged``: not a well-formed receipt, or its certificate is not issued by the ICM's device
   CA, is not a P-256 key, or names another UID, or the signature does not verify under it.
2. Among the authentic receipts of one UID, the one with the highest provisioning counter is
   the chip's; each other is ``duplicate`` (the same counter: the same install reported again)
   or ``replayed`` (a lower counter: an older install of the chip passed off as a new one).
3. The chip's receipt is ``unauthorized`` if its UID is not in the authorized set (``--auth``),
   ``wrong-bundle`` if it names another bundle id or manifest digest, ``wrong-state`` if what
   the chip holds is not exactly the bundle (installed digest, epoch), its lifecycle is not
   PROVISIONED or LOCKED or its software is below the bundle's minimum security version, and
   ``valid`` otherwise.

``missing`` counts the authorized UIDs with no authentic receipt. The per-receipt checks (1 and
3, ECDSA verification twice a receipt) run in worker processes; step 2 needs every receipt and
runs in this one. Invariants: verification raises inside, and a receipt is valid only if every
check ran and passed; nothing here holds a secret.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.crypto.digest import sha256
from trustprov.errors import InputError, TrustprovError
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Manifest
from trustprov.formats.installed import expected_installed_digest
from trustprov.formats.receipt import Receipt
from trustprov.roles.receipts_file import Progress, read_receipts

__all__ = ["CLASSES", "Reconciliation", "check", "read_receipts", "reconcile", "reference", "run"]

CLASSES = (
    "valid",
    "duplicate",
    "replayed",
    "unauthorized",
    "forged",
    "wrong-bundle",
    "wrong-state",
)
PROVISIONED, LOCKED = 2, 3  # chip.model.Lifecycle: host code does not import chip/
BATCH = 2000  # receipts per task: amortizes the inter-process traffic
IN_FLIGHT = 2  # tasks queued per worker: the pool never reads ahead of what it checks


@dataclass(frozen=True)
class _Reference:
    """What each receipt is checked against: the device CA and the OEM's bundle."""

    ca_der: bytes
    bundle_id: bytes
    manifest_digest: bytes
    epoch: int
    min_svn: int
    manifest: Manifest = field(repr=False)


_REF: _Reference | None = None
_CA: Any = None
_EXPECTED: dict[bytes, bytes] = {}  # domain id -> the installed digest of the bundle


def _init(ref: _Reference) -> None:
    global _REF, _CA  # noqa: PLW0603 - one reference per worker process, set once at start
    _REF = ref
    _CA = x509.load_der_x509_certificate(ref.ca_der)
    _EXPECTED.clear()


# one receipt's verdict: (class, uid or b"", counter, device keys as [slot, name, spki hex])
Verdict = tuple[str, bytes, int, tuple[tuple[int, str, str], ...]]


def check(data: bytes) -> Verdict:
    """Steps 1 and 3 but the authorized set (`reconcile` checks it): a class, never a bool."""
    ref = _REF
    assert ref is not None  # noqa: S101 - _init ran in this process
    try:
        receipt = Receipt.from_bytes(data)
        c = receipt.claims
        cert = x509.load_der_x509_certificate(receipt.certificate)
        cert.verify_directly_issued_by(_CA)
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            return ("forged", b"", 0, ())
        serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if len(serial) != 1 or serial[0].value != c.uid.hex():
            return ("forged", b"", 0, ())
        receipt.verify(key)
    except (TrustprovError, ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        # cryptography refuses a malformed certificate (ValueError), another issuer's name
        # (ValueError), a key it cannot check (TypeError, UnsupportedAlgorithm) or another
        # issuer's signature (InvalidSignature): each is a forgery to the OEM
        return ("forged", b"", 0, ())
    keys = tuple((k.slot, k.name, k.public_key.hex()) for k in c.device_keys)
    if c.bundle_id != ref.bundle_id or c.manifest_digest != ref.manifest_digest:
        return ("wrong-bundle", c.uid, c.counter, keys)
    expected = _EXPECTED.get(c.domain_id)
    if expected is None:
        expected = _EXPECTED[c.domain_id] = expected_installed_digest(ref.manifest, c.domain_id)
    if (
        c.installed_digest != expected
        or c.epoch != ref.epoch
        or c.lifecycle not in (PROVISIONED, LOCKED)
        or c.security_version < ref.min_svn
    ):
        return ("wrong-state", c.uid, c.counter, keys)
    return ("valid", c.uid, c.counter, keys)


def _check_batch(batch: list[bytes]) -> list[Verdict]:
    return [check(d) for d in batch]


@dataclass
class Reconciliation:
    counts: dict[str, int]
    receipts: int
    authorized: int | None  # None: no authorized set given
    missing: list[bytes]
    by_class: dict[str, list[bytes]]  # the UIDs of each class but valid (forged: none known)
    valid: dict[bytes, tuple[int, tuple[tuple[int, str, str], ...]]]  # uid -> counter, keys

    @property
    def ok(self) -> bool:
        """Nothing but valid receipts and missing chips."""
        return all(n == 0 for k, n in self.counts.items() if k != "valid")

    def to_json(self) -> dict[str, Any]:
        return {
            "receipts": self.receipts,
            "authorized": self.authorized,
            "counts": {**self.counts, "missing": len(self.missing) if self.authorized else None},
            "missing": [u.hex() for u in self.missing],
            "uids": {k: [u.hex() for u in v] for k, v in self.by_class.items()},
        }

    def write_csv(self, out: BinaryIO) -> int:
        """The valid chips with their per-device public keys, for the OEM's own CA: one row a
        key, ``uid,counter,slot,name,public_key`` (SubjectPublicKeyInfo DER in hex); a chip
        without device keys has one row with the last three empty. Returns the chips written."""
        out.write(b"uid,counter,slot,name,public_key\n")
        for uid in sorted(self.valid):
            counter, keys = self.valid[uid]
            for slot, name, spki in keys or ((None, "", ""),):
                cell = '"' + name.replace('"', '""') + '"' if name else ""
                out.write(
                    f"{uid.hex()},{counter},{'' if slot is None else slot},{cell},{spki}\n".encode()
                )
        return len(self.valid)


def reference(ca_der: bytes, bundle: Any) -> _Reference:
    m = bundle.manifest
    return _Reference(
        ca_der=ca_der,
        bundle_id=m.bundle_id,
        manifest_digest=sha256(bundle.signed.message.body),
        epoch=m.epoch,
        min_svn=m.min_security_version,
        manifest=m,
    )


def reconcile(
    receipts: Iterable[bytes],
    ref: _Reference,
    auth: AuthorizedSet | None,
    *,
    jobs: int | None = None,
) -> Reconciliation:
    """Classify every receipt (module docstring) with ``jobs`` worker processes (default: one
    per core; 1: in this process)."""
    jobs = jobs or os.cpu_count() or 1
    counts = dict.fromkeys(CLASSES, 0)
    best: dict[bytes, Verdict] = {}  # uid -> its receipt with the highest counter so far
    # each UID once (an ordered set): a file of one receipt repeated costs one UID's memory
    by_class: dict[str, dict[bytes, None]] = {k: {} for k in CLASSES if k != "valid"}
    total = 0
    for verdict in _verdicts(receipts, ref, jobs):
        total += 1
        cls, uid = verdict[0], verdict[1]
        if cls == "forged":
            counts["forged"] += 1
            continue
        held = best.get(uid)
        if held is None:
            best[uid] = verdict
            continue
        # the lower counter is the replay; an equal one, the same install reported again
        kind = "duplicate" if verdict[2] == held[2] else "replayed"
        counts[kind] += 1
        by_class[kind][uid] = None
        if verdict[2] > held[2]:
            best[uid] = verdict
    valid: dict[bytes, tuple[int, tuple[tuple[int, str, str], ...]]] = {}
    for uid, (found, _, counter, keys) in best.items():
        # step 3 in its order: a chip outside the order is unauthorized whatever it holds
        cls = "unauthorized" if auth is not None and uid not in auth else found
        counts[cls] += 1
        if cls == "valid":
            valid[uid] = (counter, keys)
        else:
            by_class[cls][uid] = None
    missing = [u for u in auth.uids if u not in best] if auth is not None else []
    uids = {k: list(v) for k, v in by_class.items()}
    return Reconciliation(
        counts, total, len(auth) if auth is not None else None, missing, uids, valid
    )


def _verdicts(receipts: Iterable[bytes], ref: _Reference, jobs: int) -> Iterator[Verdict]:
    if jobs <= 1:
        _init(ref)
        for data in receipts:
            yield check(data)
        return
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(jobs, initializer=_init, initargs=(ref,)) as pool:
        # not pool.imap: its feeder reads the whole input ahead, so memory would grow with the
        # file; at most IN_FLIGHT batches per worker are read and queued, in order
        pending: deque[Any] = deque()
        for batch in _batches(receipts):
            pending.append(pool.apply_async(_check_batch, (batch,)))
            if len(pending) >= IN_FLIGHT * jobs:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _batches(receipts: Iterable[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for r in receipts:
        batch.append(r)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def run(
    *,
    auth: Path | None,
    ca: Path,
    bundle: Path,
    receipts: Path,
    jobs: int | None = None,
    on_progress: Progress | None = None,
) -> Reconciliation:
    """`oem reconcile`: load the inputs (bad ones: `InputError` or `FormatError`), reconcile;
    ``on_progress`` sees the receipts file read (`receipts_file.read_receipts`)."""
    from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - only here
    from trustprov.roles.bundle_io import BundleFile  # noqa: PLC0415 - only here
    from trustprov.roles.files import read_bytes  # noqa: PLC0415 - only here

    ca_bytes = read_bytes(ca, limit=LIMITS.certificate * 4, what="device CA")
    try:
        ca_cert = (
            x509.load_pem_x509_certificate(ca_bytes)
            if ca_bytes.startswith(b"-----")
            else x509.load_der_x509_certificate(ca_bytes)
        )
    except ValueError as e:
        raise InputError(f"device CA {ca}: not an X.509 certificate") from e
    parsed = BundleFile(bundle)  # its manifest is what counts: the chunks stay in the file
    authorized = (
        AuthorizedSet.from_bytes(read_bytes(auth, limit=LIMITS.authorized, what="AUTH"))
        if auth is not None
        else None
    )
    ref = reference(ca_cert.public_bytes(serialization.Encoding.DER), parsed)
    return reconcile(read_receipts(receipts, on_progress=on_progress), ref, authorized, jobs=jobs)
