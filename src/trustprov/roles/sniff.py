"""What a file is, from its first bytes: the recogniser `inspect` starts from, and that names
what a file is when a command is given the wrong one ("this is signed provisioning software, not
a sealed bundle").

Invariants: at most the first 32 bytes of a file are read, whatever it holds; the answer is a
coarse kind (the artifact's own bounded parser decides the rest), "unknown" for anything else.
"""

from __future__ import annotations

from pathlib import Path

from trustprov.errors import InputError

SQLITE_MAGIC = b"SQLite format 3\x00"
_HEAD = 32


def sniff_file(path: Path, *, strict: bool = False) -> str:
    """The kind the first bytes of ``path`` announce (a coarse kind: "software" is any
    COSE_Sign1, "json" any JSON object, "sqlite" a farm or a records store); "unknown" if none,
    or if the file cannot be read (its reader then says why) — with ``strict``, a file that
    cannot be read is an `InputError` naming it."""
    try:
        return _sniff(_head(Path(path)))
    except InputError:
        if strict:
            raise
        return "unknown"


def sniffed_what(kind: str) -> str:
    """What a coarse kind of `sniff_file` is, in words."""
    return what(kind)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_HEAD)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from e


#: (first bytes, kind); text formats match after leading white space
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (SQLITE_MAGIC, "sqlite"),
    # a tag and its array's head: one byte alone would announce an artifact in one raw key or
    # firmware file of 85, which would then be called a damaged one
    (b"\xd2\x84", "software"),  # CBOR tag 18, COSE_Sign1: array(4)
    (b"\xd0\x83", "sealed-value"),  # tag 16, COSE_Encrypt0: array(3)
    (b"\xd1\x84", "manifest"),  # tag 17, COSE_Mac0: array(4)
    (b"\x84\x70trustprov-bundle", "bundle"),  # array(4), text(16)
    (b"\x85\x74trustprov-authorized", "authorized-set"),  # array(5), text(20)
    (b"\xa4", "cbor-map"),  # map(4): the family secrets' shape
)
_TEXT_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"-----BEGIN ", "pem"),
    (b"{", "json"),
    (b"#", "toml"),
    (b"[", "toml"),
)


def _sniff(head: bytes) -> str:
    """The kind the first bytes announce; "unknown" if none."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    text = head.lstrip()
    for magic, kind in _TEXT_MAGIC:
        if text.startswith(magic):
            return kind
    return "unknown"


_WHAT = {
    "sqlite": "database",
    "pem": "PEM file",
    "json": "JSON file",
    "software": "signed provisioning software",
    "sealed-value": "sealed value",
    "manifest": "bundle manifest",
    "bundle": "bundle",
    "cbor-map": "CBOR file",
    "toml": "asset list",
    "lot-manifest": "lot manifest",
    "authorized-set": "authorized set",
}


def what(kind: str) -> str:
    """A kind of `sniff_file` (or a finer one of `inspect.describe`) in words."""
    return _WHAT.get(kind, "unknown content")
