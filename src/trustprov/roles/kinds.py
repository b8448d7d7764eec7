"""What an existing file at an output path is, and whether an output may replace it (``--force``).

``--force`` replaces a file of the output's own kind, never another artifact and never a secret:
a mistyped ``--out`` must not turn the ICM's family secrets into a software image, nor a private
key into a lot manifest, nor an OEM's ENC(RND_SHARE) into a CSV report (the family, or the OEM's
ability to regenerate, would be lost for good). `recognise` names an existing file finely enough
for that: the coarse kind of `sniff.sniff_file`, refined where one coarse kind covers several
artifacts (a COSE_Sign1 is signed software, a lot signature or a receipt stream; a JSON file a
lot manifest, receipts as JSON lines or a party's metadata).

`roles.files` writes every output and asks this module which file it may replace; this module
imports nothing of it (the modes live here).

Invariants: at most `_HEAD` bytes of a file are read, whatever its size, and nothing of a secret
is kept or shown (its kind only); every output kind has its mode here, and a replaced file gets
its kind's mode (0600 for secrets), never the one it had. A file that is not recognised is
replaceable with ``--force`` unless its mode is private (no access for group and others): a raw
key, a PKCS#11 PIN file or anything else kept at 0600 is treated as a secret.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from trustprov.errors import FormatError, InputError, TrustprovError
from trustprov.roles.sniff import sniff_file

#: the two modes of an output: a secret (only its owner reads or writes it), or public
PRIVATE = 0o600
PUBLIC = 0o644
UNKNOWN = "unknown"
_HEAD = 64 * 1024  # the most of an existing file read to recognise it

#: every kind of output a command writes: (what it is in words, the mode it is written with)
OUTPUT_KINDS: dict[str, tuple[str, int]] = {
    "software": ("signed provisioning software", PUBLIC),
    "lot-manifest": ("lot manifest", PUBLIC),
    "lot-signature": ("lot manifest signature", PUBLIC),
    "authorized-set": ("authorized set", PUBLIC),
    "receipts": ("receipt stream", PUBLIC),
    "csv": ("CSV report", PUBLIC),
    "html": ("HTML report", PUBLIC),
    "asset-list": ("asset list", PUBLIC),
    "issued-epochs": ("record of issued epochs", PUBLIC),
    UNKNOWN: ("file", PUBLIC),
}

#: kinds of existing files recognised beyond the outputs' own
_WHAT = {
    "private-key": "a private key",
    "family-secrets": "the ICM's family secrets",
    "sealed-value": "a sealed value (ENC(...) of a share or an OEM input)",
    "certificate": "a certificate",
    "public-key": "a public key",
    "pem": "a PEM file",
    "sqlite": "a database (a chip farm or a records store)",
    "manifest": "a bundle manifest",
    "bundle": "a sealed bundle",
    "party-metadata": "a party's metadata (icm.json or oem.json)",
    "run-summary": "a provisioning run's summary",
}
_SECRETS = frozenset({"private-key", "family-secrets", "sealed-value"})
_FAMILY_SECRETS_KEYS = frozenset({"hw-share", "rom-share", "k-oem-share", "k-oem-master-share"})


@dataclass(frozen=True)
class Found:
    """What `recognise` found: a kind (an output kind, one of `_WHAT`, or `UNKNOWN`)."""

    kind: str
    secret: bool

    @property
    def what(self) -> str:
        if self.kind in _WHAT:
            return _WHAT[self.kind]
        return f"a {OUTPUT_KINDS[self.kind][0]}" if self.kind != UNKNOWN else "a file"


def output_mode(kind: str) -> int:
    """The mode an output of ``kind`` is written with."""
    return OUTPUT_KINDS[kind][1]


def check_replace(path: Path, kind: str) -> None:
    """Refuse to let an output of ``kind`` replace the regular file at ``path`` (``--force``)
    unless that file is of the same kind, or of no kind recognised and not private."""
    path = Path(path)
    try:
        found = recognise(path)
        st = os.stat(path)
    except InputError as e:
        raise InputError(f"{path}: cannot tell what it holds; refusing to replace it") from e
    except OSError:
        return  # gone meanwhile: nothing to protect (the placement checks again)
    if found.secret:
        raise InputError(
            f"{path} holds {found.what}, a secret; refusing to replace it, even with --force"
        )
    if found.kind not in (UNKNOWN, kind):
        raise InputError(
            f"{path} is {found.what}, not a {OUTPUT_KINDS[kind][0]}; refusing to replace it, "
            "even with --force"
        )
    if found.kind == UNKNOWN and not stat.S_IMODE(st.st_mode) & 0o077:
        raise InputError(
            f"{path} is a private file (mode {stat.S_IMODE(st.st_mode):04o}) of content trustprov "
            "does not know, perhaps a key or a PIN; refusing to replace it, even with --force"
        )


def recognise(path: Path) -> Found:
    """The kind of the file at ``path`` from at most its first `_HEAD` bytes. An unreadable
    file is an `InputError`."""
    coarse = sniff_file(path, strict=True)
    if coarse in ("unknown", "toml"):
        return _text(path, coarse)
    if coarse == "pem":
        return _pem(_head(path))
    if coarse == "json":
        return Found(_json_kind(_head(path)), secret=False)
    if coarse == "cbor-map":
        return _cbor_map(_head(path))
    if coarse == "software":
        return Found(_sign1_kind(path), secret=False)
    return Found(coarse, secret=coarse in _SECRETS)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_HEAD)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from e


def _text(path: Path, coarse: str) -> Found:
    if coarse == "toml" and b"[[asset]]" in _head(path):
        return Found("asset-list", secret=False)  # may hold keys given in it: refused anyway
    return Found(UNKNOWN, secret=False)


def _pem(head: bytes) -> Found:
    label = head.lstrip().split(b"\n", 1)[0]
    if b"PRIVATE KEY" in label:
        return Found("private-key", secret=True)
    if b"CERTIFICATE" in label:
        return Found("certificate", secret=False)
    if b"PUBLIC KEY" in label:
        return Found("public-key", secret=False)
    return Found("pem", secret=False)


def _cbor_map(head: bytes) -> Found:
    from trustprov.formats import cbor  # noqa: PLC0415 - lazy: only a forced output gets here

    try:
        value = cbor.decode(head, limit=_HEAD, what="file")
    except FormatError:
        return Found(UNKNOWN, secret=False)  # if it is a damaged secret, its mode says so
    is_secrets = isinstance(value, dict) and set(value) == _FAMILY_SECRETS_KEYS
    del value  # the shares: never kept
    return Found("family-secrets", secret=True) if is_secrets else Found(UNKNOWN, secret=False)


def _json_kind(head: bytes) -> str:
    first_line = head.split(b"\n", 1)[0]
    try:
        doc = json.loads(first_line)
    except (ValueError, RecursionError):
        doc = None
    keys = set(doc) if isinstance(doc, dict) else set()
    by_keys = {
        frozenset({"uid", "lot", "receipt"}): "receipts",  # cm receipts --format jsonl
        frozenset({"issued-epochs"}): "issued-epochs",  # the OEM state's record (roles/oem/role.py)
    }
    if (found := by_keys.get(frozenset(keys))) is not None:
        return found
    if head.lstrip().startswith(b'{"lot"') and b'"chips": [' in head[:512]:
        return "lot-manifest"  # as the ICM's writer starts one (too long to parse here)
    try:
        keys = set(doc) if isinstance(doc := json.loads(head), dict) else set()
    except (ValueError, RecursionError):
        return UNKNOWN
    if {"family", "alg", "created-by"} <= keys or {"software-version", "bundle-id"} <= keys:
        return "party-metadata"
    if {"lot", "station", "bundle_id", "chips", "provisioned", "failed"} <= keys:
        return "run-summary"
    return UNKNOWN


def _sign1_kind(path: Path) -> str:
    """A COSE_Sign1 file: a lot signature, a receipt stream, or (any other) signed software."""
    from trustprov.formats.cbor import sequence  # noqa: PLC0415 - lazy: forced outputs only
    from trustprov.formats.cose import TAG_SIGN1  # noqa: PLC0415
    from trustprov.formats.lotsig import LotSignature  # noqa: PLC0415
    from trustprov.formats.receipt import MAX_RECEIPT, RECEIPT_SHAPE, Receipt  # noqa: PLC0415

    head = _head(path)
    try:
        LotSignature.from_bytes(head)
    except FormatError:
        pass
    else:
        return "lot-signature"
    try:
        first = next(
            sequence(
                head[:MAX_RECEIPT],
                item_limit=MAX_RECEIPT,
                what="file",
                shape=RECEIPT_SHAPE,
                tags=frozenset({TAG_SIGN1}),
            )
        )
        Receipt.from_bytes(first)
    except (TrustprovError, StopIteration):
        return "software"
    return "receipts"
