"""The IC manufacturer: family secrets, the software signing key, the device CA, manufacturing.

ICM_DIR layout (private files 0600)::

    icm.json               family id, signing suite                (public)
    prov-signing.pub.pem   K_PUK_ICM_PROV, SubjectPublicKeyInfo    (public)
    prov-signing-2.pub.pem a hybrid suite's second key (ML-DSA)    (public)
    device-ca.pem          the device identity CA certificate      (public)
    lot-signing.pub.pem    signs lot manifests (LOT_JSON.cose)     (public)
    prov-signing.key.pem   K_PRK_ICM_PROV, PKCS#8                  (0600)
    prov-signing-2.key.pem a hybrid suite's second private key     (0600)
    device-ca.key.pem      the device CA's private key, PKCS#8     (0600)
    lot-signing.key.pem    the lot-signing private key, PKCS#8     (0600)
    family-secrets.cbor    HW_SHARE, ROM_SHARE, K_OEM_SHARE, K_OEM_MASTER_SHARE (0600)

With ``init --keys pkcs11:...`` the EC private keys live in the token instead of their files, and
the family secrets are ``family-secrets.wrapped.cbor``, encrypted under an AES key made in the
token; icm.json names each (roles/icm/custody.py).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustprov import __version__
from trustprov.crypto.keys import (
    SIGNATURE_ALGORITHMS,
    SUITES,
    PrivateKey,
    key_type_of,
    public_key_der,
    public_key_pem,
)
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError, InputError, TransportError, VerificationError
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS, MAX_LOT
from trustprov.formats.lot import LotChip, LotManifest, LotManifestWriter, device_ca_common_name
from trustprov.formats.lotsig import HashingWriter, LotSignature
from trustprov.formats.software import CODE_ROOT, SignedSoftware, code_archive
from trustprov.link import messages
from trustprov.link.farm_link import FarmLink
from trustprov.roles.files import (
    PRIVATE,
    check_output,
    new_directory,
    output_file,
    read_bytes,
    write_file,
)
from trustprov.roles.icm.custody import (
    LOT_PUBLIC_FILE,
    SECRET_NAMES,
    FamilySecrets,
    forget_family,
    load_keys,
    load_secrets,
    make_keys,
    signing_key_files,
    store_secrets,
)
from trustprov.roles.icm.keyref import is_pkcs11
from trustprov.roles.lots import read_lot, signature_path

Random = Callable[[int], bytes]
Clock = Callable[[], datetime.datetime]
UID_LEN = 16
SOFTWARE_NAME = "trustprov-provisioning"
BATCH = 500


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _unknown_alg(alg: str) -> InputError:
    return InputError(f"unknown signature algorithm {alg!r} ({', '.join(SUITES)})")


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a chip's identity key only signs."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Icm:
    path: Path
    family_id: bytes
    alg: str  # the signing suite: one algorithm or a hybrid
    signing_keys: tuple[PrivateKey, ...] = field(repr=False)  # one per algorithm of the suite
    ca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    ca_cert: x509.Certificate
    secrets: FamilySecrets = field(repr=False, compare=False)
    lot_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)

    @property
    def signing_key(self) -> PrivateKey:
        """The (first) software signing key."""
        return self.signing_keys[0]

    @property
    def immutable(self) -> ImmutableMemory:
        """The image every chip of the family is burned with; wrapped family secrets are
        unwrapped in the token for it, each time (roles/icm/custody.py)."""
        s = self.secrets.open()
        return ImmutableMemory(
            family_id=self.family_id,
            hw_share=s["hw-share"],
            rom_share=s["rom-share"],
            k_oem_share=s["k-oem-share"],
            k_oem_master_share=s["k-oem-master-share"],
            software_keys=tuple(public_key_der(k) for k in self.signing_keys),
            software_suite=self.alg,
        )

    @classmethod
    def load(cls, path: Path) -> Icm:
        path = Path(path)
        if not (path / "icm.json").is_file():
            raise InputError(
                f"{path} is not an ICM directory (no icm.json; run 'trustprov icm init')"
            )
        try:
            meta = json.loads(read_bytes(path / "icm.json", limit=4096, what="ICM metadata"))
            family_id = bytes.fromhex(meta["family"])
            alg = meta["alg"]
            if len(family_id) != FAMILY_ID_LEN:
                raise ValueError("family id length")
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: ICM directory is damaged (icm.json)") from e
        if alg not in SUITES:
            raise InputError(f"{path}: ICM directory is damaged (signing suite)")
        secrets = load_secrets(meta, family_id, path)
        keys = load_keys(meta, alg, path)
        signing_keys, ca_key = keys.signing, keys.ca
        try:
            ca_cert = x509.load_pem_x509_certificate(
                read_bytes(path / "device-ca.pem", limit=16 * 1024, what="device CA")
            )
        except ValueError as e:
            raise InputError(f"{path}/device-ca.pem: not a PEM certificate") from e
        return cls(path, family_id, alg, signing_keys, ca_key, ca_cert, secrets, keys.lot)

    @functools.cached_property
    def chip_certificate_template(self) -> x509.CertificateBuilder:
        """What every chip certificate of the family shares, built once rather than per chip:
        issuer, no expiry (RFC 5280 4.1.2.5), and the extensions of an end entity that signs."""
        return (
            x509.CertificateBuilder()
            .issuer_name(self.ca_cert.subject)
            .not_valid_after(datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )


def init(
    path: Path,
    *,
    alg: str = "ES256",
    keys: str | None = None,
    rng: Random = os.urandom,
    now: Clock = utc_now,
) -> Icm:
    """Create a chip family: its secrets, the software signing key(s) and the device CA, the
    keys in files or, with ``keys`` a ``pkcs11:`` URI of a token, made inside that token."""
    if alg not in SUITES:
        raise _unknown_alg(alg)
    family_id = rng(FAMILY_ID_LEN)
    try:
        with new_directory(path) as d:
            _init_into(d, family_id, alg, keys, rng=rng, now=now)
    except BaseException:
        if keys is not None and is_pkcs11(keys):  # no key of a family never made stays in it
            with contextlib.suppress(InputError):  # the first error is the one to report
                forget_family(family_id, keys)
        raise
    return Icm.load(path)


def _init_into(
    d: Path, family_id: bytes, alg: str, keys: str | None, *, rng: Random, now: Clock
) -> None:
    made = make_keys(alg, family_id, keys)
    signing_keys, ca_key = made.signing, made.ca
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov ICM"),
            x509.NameAttribute(NameOID.COMMON_NAME, device_ca_common_name(family_id)),
        ]
    )
    t = now()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t - datetime.timedelta(minutes=5))
        .not_valid_after(t + datetime.timedelta(days=365 * 25))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    secrets = {name: rng(32) for name in SECRET_NAMES}
    secret_files, secrets_name = store_secrets(secrets, family_id, keys, rng)
    for name, data in {**secret_files, **made.files}.items():
        write_file(d / name, data, mode=PRIVATE)
    for key, (_, public) in zip(signing_keys, signing_key_files(alg), strict=True):
        write_file(d / public, public_key_pem(key))
    write_file(d / "device-ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    if made.lot is not None:
        write_file(d / LOT_PUBLIC_FILE, public_key_pem(made.lot))
    meta = {
        "family": family_id.hex(),
        "alg": alg,
        "keys": made.refs,
        "secrets": secrets_name,
        "created-by": f"trustprov {__version__}",
    }
    write_file(d / "icm.json", json.dumps(meta, indent=2).encode() + b"\n")


def sign_software(
    icm: Icm,
    out: Path,
    *,
    version: str = __version__,
    security_version: int = 1,
    alg: str | None = None,
    code_root: Path = CODE_ROOT,
    code: bytes | None = None,
    force: bool = False,
) -> SignedSoftware:
    """Sign the provisioning software's code with K_PRK_ICM_PROV (every key of a hybrid);
    ``out`` is replaced only with ``force``, and only if it is a regular file.

    ``code`` is a port's firmware image (docs/protocol.md 5.3), signed as it is: its SHA-256 is
    ``tp-code``. Without it, the code archive under ``code_root`` (the virtual chip's code)."""
    check_output(out, force=force, kind="software")  # before the work, so a refusal costs nothing
    if code is not None and not 0 < len(code) <= LIMITS.software:
        raise InputError(f"a firmware image is 1 to {LIMITS.software} bytes, not {len(code)}")
    alg = alg or icm.alg
    if alg not in SUITES:
        raise _unknown_alg(alg)
    if alg != icm.alg:  # its chips verify exactly the family's suite: nothing else would boot
        needed = "+".join(SIGNATURE_ALGORITHMS[a].key_type for a in SUITES[alg])
        have = "+".join(key_type_of(k) for k in icm.signing_keys)
        raise InputError(
            f"{alg} needs a {needed} signing key; this ICM's is {have} "
            f"(made by 'icm init --alg {icm.alg}')"
        )
    if not 0 <= security_version < 2**32:
        raise InputError("security version must be 0..2^32-1")
    software = SignedSoftware.sign(
        icm.signing_keys,
        alg=alg,
        name=SOFTWARE_NAME,
        version=version,
        security_version=security_version,
        code=code_archive(code_root) if code is None else code,
    )
    image = software.to_bytes()
    if len(image) > LIMITS.software:  # what a chip's boot ROM parses at most (section 1)
        raise InputError(
            f"the signed image would be {len(image)} bytes, above the {LIMITS.software} a chip "
            "takes: the firmware image is too large"
        )
    write_file(out, image, force=force, kind="software")
    return software


_CHIP_ORGANIZATION = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov chip")


def issue_certificate(
    icm: Icm, uid: bytes, public_der: bytes, now: Clock = utc_now
) -> x509.Certificate:
    """The chip's identity certificate: CN = UID in hex, no expiry (RFC 5280 4.1.2.5).

    Returned as the certificate object, so its DER (for the chip) and PEM (for the lot manifest)
    are both encoded from it without parsing it again.
    """
    return certify(icm, lot_template(icm, now()), uid, public_der)


def lot_template(icm: Icm, now: datetime.datetime) -> x509.CertificateBuilder:
    """The family's template with the validity start every certificate of one lot shares: the
    one path to a chip certificate, for the farm (`manufacture`) and the wire (line.icm_line)."""
    return icm.chip_certificate_template.not_valid_before(now - datetime.timedelta(minutes=5))


def certify(
    icm: Icm, template: x509.CertificateBuilder, uid: bytes, public_der: bytes
) -> x509.Certificate:
    public = serialization.load_der_public_key(public_der)
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
        public.curve, ec.SECP256R1
    ):
        raise FormatError("chip identity key must be EC P-256")
    name = x509.Name(
        [
            _CHIP_ORGANIZATION,
            x509.NameAttribute(NameOID.SERIAL_NUMBER, uid.hex()),
            x509.NameAttribute(NameOID.COMMON_NAME, uid.hex()),
        ]
    )
    return (
        template.subject_name(name)
        .public_key(public)
        .serial_number(int.from_bytes(uid) or 1)  # unique per UID (RFC 5280 4.1.2.2)
        .sign(icm.ca_key, hashes.SHA256())
    )


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
    if icm.lot_key is None:
        raise InputError(
            f"{icm.path}: this ICM has no lot-signing key (made before lots were signed); "
            "make the family again with 'trustprov icm init'"
        )
    sig_path = signature_path(manifest_path)
    with output_file(manifest_path, force=force, kind="lot-manifest") as out:
        hashing = HashingWriter(out)
        manifest = LotManifestWriter(hashing, lot, icm.family_id)
        yield manifest
        manifest.finish()
        signature = LotSignature.sign(
            icm.lot_key,
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
    if icm.lot_key is None:
        raise InputError(
            f"{icm.path}: this ICM has no lot-signing key (made before lots were signed); "
            "make the family again with 'trustprov icm init'"
        )
    sig_path = signature_path(Path(manifest_path))
    if not 1 <= count <= MAX_LOT:
        raise InputError(f"count must be 1..{MAX_LOT:,} (a lot's manifest stays under 2 GiB)")
    try:
        LotChip.check_lot_name(lot)
    except FormatError as e:
        raise InputError(e.message) from e
    if not Path(manifest_path).resolve().parent.is_dir():
        raise InputError(f"cannot write {manifest_path}: its directory does not exist")
    check_output(manifest_path, force=force, kind="lot-manifest")
    check_output(sig_path, force=force, kind="lot-signature")
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
