"""The OEM's reconciliation: what the chips themselves say they installed (docs/protocol.md 6.8).

Every receipt is classified once, in this order, and counted in exactly one class, so that
``receipts = valid + duplicate + replayed + unauthorized + wrong-lot + forged + wrong-bundle +
wrong-state``:

1. ``forged``: not a well-formed receipt, or its certificate is not issued by the ICM's device
   CA, is not a P-256 key, or names another UID, or the signature does not verify under it.
2. Among the authentic receipts of one UID, the one with the highest provisioning counter is
   the chip's; each other is ``duplicate`` (the same counter: the same install reported again)
   or ``replayed`` (a lower counter: an older install of the chip passed off as a new one).
3. The chip's receipt is ``unauthorized`` if its UID is not in the authorized set (``--auth``),
   ``wrong-lot`` if its signed lot is not the lot the ICM's signed lot manifests (``--lot``)
   give for its UID (or none of them lists it), ``wrong-bundle`` if it names another bundle id
   or manifest digest, ``wrong-state`` if what the chip holds is not exactly the bundle
   (installed digest, epoch), its lifecycle is not PROVISIONED or LOCKED, its counter is 0 or
   its software is below the bundle's minimum security version, and ``valid`` otherwise. The
   bundle and state checks are `formats.expected.Expected.check_receipt`, the station's own.

``missing`` counts the authorized UIDs with no authentic receipt. The per-receipt checks (1 and
3, ECDSA verification twice a receipt) run in worker processes; step 2 needs every receipt and
runs in this one. Invariants: verification raises inside, and a receipt is valid only if every
check ran and passed; nothing here holds a secret.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov.errors import InputError, TrustprovError
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.expected import ClaimMismatch, Expected
from trustprov.formats.receipt import Receipt
from trustprov.roles.oem.receipts_file import Progress, read_receipts

__all__ = [
    "CLASSES",
    "Reconciliation",
    "check",
    "lot_map",
    "read_receipts",
    "reconcile",
    "reference",
    "run",
]

CLASSES = (
    "valid",
    "duplicate",
    "replayed",
    "unauthorized",
    "wrong-lot",
    "forged",
    "wrong-bundle",
    "wrong-state",
)
BATCH = 2000  # receipts per task: amortizes the inter-process traffic
IN_FLIGHT = 2  # tasks queued per worker: the pool never reads ahead of what it checks


@dataclass(frozen=True)
class _Reference:
    """What each receipt is checked against: the device CA and the OEM's bundle."""

    ca_der: bytes
    expected: Expected = field(repr=False)


_REF: _Reference | None = None
_CA: Any = None


def _init(ref: _Reference) -> None:
    global _REF, _CA  # noqa: PLW0603 - one reference per worker process, set once at start
    _REF = ref
    _CA = x509.load_der_x509_certificate(ref.ca_der)


# one receipt's verdict: (class, uid or b"", counter, device keys as [slot, name, spki hex],
# its signed lot)
Verdict = tuple[str, bytes, int, tuple[tuple[int, str, str], ...], str]


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
            return ("forged", b"", 0, (), "")
        serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if len(serial) != 1 or serial[0].value != c.uid.hex():
            return ("forged", b"", 0, (), "")
        receipt.verify(key)
    except (TrustprovError, ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        # cryptography refuses a malformed certificate (ValueError), another issuer's name
        # (ValueError), a key it cannot check (TypeError, UnsupportedAlgorithm) or another
        # issuer's signature (InvalidSignature): each is a forgery to the OEM
        return ("forged", b"", 0, (), "")
    keys = tuple((k.slot, k.name, k.public_key.hex()) for k in c.device_keys)
    try:
        ref.expected.check_receipt(c)  # the lot is checked by `reconcile`, which has the lots
    except ClaimMismatch as e:
        return (e.kind, c.uid, c.counter, keys, c.lot)
    return ("valid", c.uid, c.counter, keys, c.lot)


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
    return _Reference(ca_der=ca_der, expected=Expected.of(bundle))


def reconcile(
    receipts: Iterable[bytes],
    ref: _Reference,
    auth: AuthorizedSet | None,
    *,
    jobs: int | None = None,
    lots: Mapping[bytes, str] | None = None,
) -> Reconciliation:
    """Classify every receipt (module docstring) with ``jobs`` worker processes (default: one
    per core; 1: in this process); ``lots``: each UID's lot, from the ICM's signed lot
    manifests (none given: no receipt is wrong-lot)."""
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
    for uid, (found, _, counter, keys, lot) in best.items():
        # step 3 in its order: a chip outside the order is unauthorized whatever it holds; a
        # receipt whose signed lot is not the chip's in the ICM's manifests is wrong-lot
        if auth is not None and uid not in auth:
            cls = "unauthorized"
        elif lots is not None and lots.get(uid) != lot:
            cls = "wrong-lot"
        else:
            cls = found
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


def lot_map(lots: Sequence[Path], icm_key: Path | None) -> dict[bytes, str] | None:
    """Each UID's lot, from the ICM's signed lot manifests ``lots`` (each verified under
    ``icm_key``, or without it under the one key all their signatures name); None: no lots."""
    from trustprov.roles.lots import load_lot_key, read_lot, signer_id  # noqa: PLC0415 - here

    if not lots:
        if icm_key is not None:
            raise InputError("--icm-key checks the signature of --lot; give it with --lot")
        return None
    key = load_lot_key(icm_key) if icm_key is not None else None
    if key is None and len({signer_id(p) for p in lots}) > 1:
        raise InputError("the lots are signed by different keys; give --icm-key to name the ICM's")
    found: dict[bytes, str] = {}
    for path in lots:
        lot = read_lot(path, key)
        for c in lot.chips:
            if found.setdefault(c.uid, lot.lot) != lot.lot:
                raise InputError(f"{path}: chip {c.uid.hex()} is in another lot given too")
    return found


def run(
    *,
    auth: Path | None,
    ca: Path,
    bundle: Path,
    receipts: Path,
    jobs: int | None = None,
    lots: Sequence[Path] = (),
    icm_key: Path | None = None,
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
    by_uid = lot_map(lots, icm_key)
    ref = reference(ca_cert.public_bytes(serialization.Encoding.DER), parsed)
    return reconcile(
        read_receipts(receipts, on_progress=on_progress), ref, authorized, jobs=jobs, lots=by_uid
    )
