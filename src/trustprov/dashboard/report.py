"""`cm report --html`: a lot's audit report as one self-contained HTML file.

Invariants: the numbers are `lot_report`'s (those of `cm report --json`); the file needs nothing
but itself to open (style inline, charts inline SVG, no script) and its CSP forbids any request;
it is written through `roles.files.output_file` (atomic, never over anything but a regular file,
and over that only with ``--force``), and its SHA-256 is returned for the operator to print
beside it. Throughput is good chips only: a failed chip is drawn in a chart of its own, never as
throughput. Provenance says where each value comes from: the records (times, stations, software
version), the chips' receipts as stored (parsed, not verified, unless reconciled), the bundle
file (its manifest's epoch and authorized set); reconciliation counts only when the device CA
is given, computed as `oem reconcile` computes them.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from trustprov.dashboard.model import Column, Provenance, latest_failures
from trustprov.dashboard.render import report_page
from trustprov.errors import FormatError, InputError
from trustprov.line.records import JobRef, RecordStore, as_utc, results
from trustprov.line.report import GOOD_OUTCOMES, LotReport, bucket_width, find_job
from trustprov.roles.files import check_output, output_file


def check_html_path(path: Path, *, force: bool) -> None:
    """Refuse an unusable output path before any work is done."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: {parent} does not exist")
    check_output(Path(path), force=force, kind="html")


def columns(store: RecordStore, ref: JobRef) -> list[Column]:
    """Good and failed chips per bucket (`bucket_width`), gaps included."""
    if store.dialect == "postgresql":
        second = sa.cast(sa.func.floor(sa.extract("epoch", results.c.time)), sa.BigInteger)
    else:
        second = sa.cast(sa.func.strftime("%s", results.c.time), sa.Integer)
    good = sa.case((results.c.result.in_(GOOD_OUTCOMES), 1), else_=0)
    with store.transaction() as c:
        rows = [
            (int(s), int(g), int(n))
            for s, g, n in c.execute(
                sa.select(second, sa.func.sum(good), sa.func.count())
                .where(results.c.job_id == ref.id)
                .group_by(second)
                .order_by(second)
            )
        ]
    if not rows:
        return []
    first, last = rows[0][0], rows[-1][0]
    width = bucket_width(last - first + 1)
    count = (last - first) // width + 1
    good_n, failed_n = [0] * count, [0] * count
    for s, g, n in rows:
        good_n[(s - first) // width] += g
        failed_n[(s - first) // width] += n - g
    out = []
    for i in range(count):
        start = first + i * width
        seconds = min(width, last + 1 - start)
        at = datetime.datetime.fromtimestamp(start, datetime.UTC)
        out.append(Column(at, seconds, good_n[i], failed_n[i]))
    return out


def provenance(
    store: RecordStore,
    ref: JobRef,
    report: LotReport,
    *,
    bundle_file: Path | None = None,
    ca: Path | None = None,
    auth: Path | None = None,
) -> Provenance:
    p = Provenance(ref.bundle_id, stations=sorted(report.stations))
    mine = results.c.job_id == ref.id
    with store.transaction() as c:
        first, last = c.execute(
            sa.select(sa.func.min(results.c.time), sa.func.max(results.c.time)).where(mine)
        ).one()
        p.first_chip = as_utc(first) if first is not None else None
        p.last_chip = as_utc(last) if last is not None else None
        p.software_versions = sorted(
            v for (v,) in c.execute(sa.select(results.c.software_version).where(mine).distinct())
        )
        latest = c.execute(
            sa.select(results.c.receipt)
            .where(mine, results.c.receipt.is_not(None))
            .order_by(results.c.time.desc())
            .limit(1)
        ).scalar()
    if latest is not None:
        from trustprov.formats.receipt import Receipt  # noqa: PLC0415 - only with receipts

        try:
            claims = Receipt.from_bytes(bytes(latest)).claims
        except FormatError:
            claims = None  # shown as unknown: reconciliation (--ca) names a bad receipt
        if claims is not None:
            p.software_name = claims.software_name
            p.security_version = claims.security_version
            p.receipt_epoch = claims.epoch
    if bundle_file is not None:
        _from_bundle(p, ref, bundle_file)
    if ca is not None:
        if bundle_file is None:
            raise InputError("--ca reconciles the receipts against a bundle: give --bundle FILE")
        p.reconciliation = _reconcile(store, ref, bundle_file, ca, auth)
        p.reconciled_against = f"device CA {ca.name}" + (
            f", authorized set {auth.name}" if auth else ""
        )
    return p


def _from_bundle(p: Provenance, ref: JobRef, path: Path) -> None:
    from trustprov.roles.bundle_io import BundleFile  # noqa: PLC0415 - only with a bundle

    m = BundleFile(path).manifest
    if m.bundle_id.hex() != ref.bundle_id:
        raise InputError(f"--bundle {path}: bundle {m.bundle_id.hex()}, not this job's")
    p.epoch = m.epoch
    p.min_security_version = m.min_security_version
    p.authorized = (
        "any chip of the family (no authorized set)"
        if m.authorized is None
        else f"{m.authorized.count} chips, Merkle root {m.authorized.root.hex()}"
    )


def _receipts(store: RecordStore, ref: JobRef) -> Iterator[bytes]:
    q = (
        sa.select(results.c.receipt)
        .where(results.c.job_id == ref.id, results.c.receipt.is_not(None))
        .order_by(results.c.uid)
        .execution_options(yield_per=5000)
    )
    with store.transaction() as c:
        for (receipt,) in c.execute(q):
            yield bytes(receipt)


def _reconcile(
    store: RecordStore, ref: JobRef, bundle_file: Path, ca: Path, auth: Path | None
) -> dict[str, int]:
    """`oem reconcile`'s counts over the job's stored receipts."""
    from cryptography import x509  # noqa: PLC0415 - only with --ca
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - only with --ca

    from trustprov.formats.authz import AuthorizedSet  # noqa: PLC0415 - only with --ca
    from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - only with --ca
    from trustprov.roles.bundle_io import BundleFile  # noqa: PLC0415 - only with --ca
    from trustprov.roles.files import read_bytes  # noqa: PLC0415 - only with --ca
    from trustprov.roles.oem.reconcile import reconcile, reference  # noqa: PLC0415 - only with --ca

    raw = read_bytes(ca, limit=LIMITS.certificate * 4, what="device CA")
    try:
        cert = (
            x509.load_pem_x509_certificate(raw)
            if raw.startswith(b"-----")
            else x509.load_der_x509_certificate(raw)
        )
    except ValueError as e:
        raise InputError(f"device CA {ca}: not an X.509 certificate") from e
    authorized = (
        AuthorizedSet.from_bytes(read_bytes(auth, limit=LIMITS.authorized, what="AUTH"))
        if auth is not None
        else None
    )
    ref_ = reference(cert.public_bytes(serialization.Encoding.DER), BundleFile(bundle_file))
    r = reconcile(_receipts(store, ref), ref_, authorized)
    counts = dict(r.counts)
    if r.authorized is not None:
        counts["missing"] = len(r.missing)
    return counts


def write_html(
    store: RecordStore,
    report: LotReport,
    path: Path,
    *,
    force: bool = False,
    bundle_file: Path | None = None,
    ca: Path | None = None,
    auth: Path | None = None,
    now: datetime.datetime | None = None,
) -> str:
    """Write the audit report; the SHA-256 (hex) of the file's bytes."""
    check_html_path(path, force=force)
    ref, _ = find_job(store, report.lot, report.bundle_id)
    with store.transaction() as c:
        failures = latest_failures(c, ref)
    origin = provenance(store, ref, report, bundle_file=bundle_file, ca=ca, auth=auth)
    generated = now or datetime.datetime.now(datetime.UTC)
    page = report_page(report, failures, generated, columns(store, ref), origin)
    data = page.encode("utf-8")
    with output_file(Path(path), force=force, kind="html") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()
