"""Manufacturing a lot on the farm: blank chips burned, identities made and certified, and the
lot's manifest written and signed with the ICM's lot-signing key.

Invariants:
- A lot is one farm transaction, and its manifest appears (after its signature) only when the
  lot is complete, before the transaction commits: a failure leaves no partial lot and no partial
  manifest; if the manifest cannot be written, no chip is made.
- A lot is 1..``MAX_LOT`` chips with a valid name, new in its farm; a farm is added to, never
  replaced, and a farm file this makes is private (0600) from its first byte.
- Memory grows with the UIDs only, never with the certificates (`MadeLot` holds none).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.errors import FormatError, InputError, TransportError, VerificationError
from trustprov.formats.limits import MAX_LOT
from trustprov.formats.lot import (
    UID_LEN,
    LotChip,
    LotManifest,
    LotManifestWriter,
)
from trustprov.formats.lotsig import HashingWriter, LotSignature
from trustprov.link import messages
from trustprov.link.farm_link import FarmLink
from trustprov.roles.files import (
    PRIVATE,
    check_output,
    output_file,
    write_file,
)
from trustprov.roles.icm.certs import certify, lot_template
from trustprov.roles.icm.family import Clock, Icm, Random, utc_now
from trustprov.roles.lots import read_lot, signature_path


@dataclass(frozen=True)
class MadeLot:
    """What `manufacture` made: the lot's UIDs, in manifest order, and where its manifest is.

    Holds no certificates, so a lot of any size fits in memory; `load_manifest` reads them back.
    """

    lot: str
    family_id: bytes
    uids: tuple[bytes, ...] = field(repr=False)
    manifest: Path

    @property
    def count(self) -> int:
        return len(self.uids)

    def load_manifest(self) -> LotManifest:
        """The manifest as written, with every chip's certificate (memory grows with the lot),
        its signature verified."""
        try:
            parsed = read_lot(self.manifest)
        except VerificationError as e:
            raise InputError(f"{self.manifest} is no longer the manifest of lot {self.lot}") from e
        except FormatError as e:
            raise InputError(f"{self.manifest}: {e.message}") from e
        if (parsed.lot, parsed.family_id) != (self.lot, self.family_id) or tuple(
            c.uid for c in parsed.chips
        ) != self.uids:
            raise InputError(f"{self.manifest} is no longer the manifest of lot {self.lot}")
        return parsed


def _check_lot_key(icm: Icm) -> ec.EllipticCurvePrivateKey:
    if icm.lot_key is None:
        raise InputError(
            f"{icm.path}: this ICM has no lot-signing key (made before lots were signed); "
            "make the family again with 'trustprov icm init'"
        )
    return icm.lot_key


def check_new_lot(
    icm: Icm, lot: str, count: int | None, manifest_path: Path, *, force: bool
) -> None:
    """What a lot needs before any chip is made, on the farm or over the wire: the ICM's
    lot-signing key, 1..``MAX_LOT`` chips (``None``: as many as there are), a valid lot name, and
    a manifest and signature that can be written where they go."""
    _check_lot_key(icm)
    if count is not None and not 1 <= count <= MAX_LOT:
        raise InputError(f"count must be 1..{MAX_LOT:,} (a lot's manifest stays under 2 GiB)")
    try:
        LotChip.check_lot_name(lot)
    except FormatError as e:
        raise InputError(e.message) from e
    if not manifest_path.resolve().parent.is_dir():
        raise InputError(f"cannot write {manifest_path}: its directory does not exist")
    check_output(manifest_path, force=force, kind="lot-manifest")
    check_output(signature_path(manifest_path), force=force, kind="lot-signature")


def _new_private_farm(path: Path) -> None:
    """Create a missing farm file 0600 before SQLite does (0644): it holds every chip's
    immutable memory and key slots. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    except FileExistsError:
        return
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    os.close(fd)


def _make_chip(
    farm: FarmLink,
    uid: bytes,
    icm: Icm,
    *,
    template: x509.CertificateBuilder,
    burn: bytes,
    make_identity: bytes,
) -> x509.Certificate:
    """One blank chip of the farm burned, its identity key made, its certificate stored."""
    with farm.connect(uid) as chip:
        chip.send(burn)
        public = chip.send(make_identity).get("public-key")
        if not isinstance(public, bytes):
            raise TransportError("chip answered without 'public-key'")
        cert = certify(icm, template, uid, public)
        chip.store_certificate(cert.public_bytes(serialization.Encoding.DER))
    return cert


@contextlib.contextmanager
def signed_manifest(
    icm: Icm, lot: str, manifest_path: Path, *, force: bool = False
) -> Iterator[LotManifestWriter]:
    """A lot manifest written chip by chip (`LotManifestWriter.add`) into a file that appears
    at ``manifest_path`` only when the block ends without error, hashed as it is written and
    signed with the ICM's lot-signing key into ``manifest_path``.cose, which appears just
    before it. The farm's line and the wire's both write their manifests here."""
    lot_key = _check_lot_key(icm)
    sig_path = signature_path(manifest_path)
    with output_file(manifest_path, force=force, kind="lot-manifest") as out:
        hashing = HashingWriter(out)
        manifest = LotManifestWriter(hashing, lot, icm.family_id)
        yield manifest
        manifest.finish()
        signature = LotSignature.sign(
            lot_key,
            lot=lot,
            family_id=icm.family_id,
            chips=manifest.count,
            digest=hashing.hash.digest(),
        )
        write_file(sig_path, signature.to_bytes(), force=force, kind="lot-signature")


def manufacture(
    icm: Icm,
    farm_path: Path,
    lot: str,
    count: int,
    manifest_path: Path,
    *,
    rng: Random = os.urandom,
    now: Clock = utc_now,
    force: bool = False,
    on_chip: Callable[[bytes], None] | None = None,
) -> MadeLot:
    """Make ``count`` chips of the family into lot ``lot``: burn, identity, certificate;
    ``on_chip`` is told each chip's UID as it is made (a progress bar).

    The whole lot is one farm transaction, and its manifest is written chip by chip into a file
    that appears at ``manifest_path`` only when complete, before the transaction commits: a
    failure leaves no partial lot and no partial manifest behind, and if the manifest cannot be
    written no chip is made. Memory does not grow with the certificates (only with the UIDs).
    The manifest is hashed as it is written and signed with the ICM's lot-signing key into
    ``manifest_path``.cose (formats/lotsig.py), which appears just before the manifest.
    """
    check_new_lot(icm, lot, count, Path(manifest_path), force=force)
    sig_path = signature_path(Path(manifest_path))
    check_output(farm_path, force=False, existing_ok=True)  # a farm is added to, never replaced
    image = icm.immutable.to_bytes()  # unwraps the family secrets: refused before any file
    # the same two requests for every chip: encoded once
    burn = messages.encode_request("rom.burn", {"image": image})
    make_identity = messages.encode_request("rom.make-identity", {})
    template = lot_template(icm, now())
    _new_private_farm(Path(farm_path))
    uids: list[bytes] = []
    placed = False
    with FarmLink(farm_path, create=True) as farm:
        if lot in farm.lots():
            raise InputError(f"lot {lot!r} already exists in {farm_path}")
        try:
            with farm.batch():
                # inside the transaction: if the manifest cannot be written, no chip is made
                with signed_manifest(icm, lot, Path(manifest_path), force=force) as manifest:
                    for _ in range(count):
                        uid = rng(UID_LEN)
                        farm.add_blank(uid, lot)
                        cert = _make_chip(
                            farm,
                            uid,
                            icm,
                            template=template,
                            burn=burn,
                            make_identity=make_identity,
                        )
                        manifest.add(uid, cert)
                        uids.append(uid)
                        if on_chip is not None:
                            on_chip(uid)
                placed = True
        except BaseException:
            # the lot did not commit: withdraw the manifest (and signature) of chips never made
            sig_path.unlink(missing_ok=True)
            if placed:
                Path(manifest_path).unlink(missing_ok=True)
            raise
    return MadeLot(lot, icm.family_id, tuple(uids), Path(manifest_path))
