"""Reading a lot manifest: its ICM signature (LOT_JSON.cose) first, then its contents.

Every tool that reads a lot manifest reads it here. Where the lot-signing public key comes from
is the caller's (docs/protocol.md, "Signed lot manifests"): the OEM names the ICM's
``lot-signing.pub.pem`` (``--icm-key``) and so checks the lot's origin; a reader given no key
checks the signature under the key the signature embeds, which proves the manifest whole and
unchanged since it was signed, not who signed it (the CM's tools: the CM is trusted with nothing,
and the chips refuse what the OEM did not authorize).

Invariant: `read_lot` returns a manifest only after its signature verified over the very bytes it
parses; `verify_lot_file` checks a manifest of any size in constant memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trustprov.crypto.keys import PublicKey, load_public_key
from trustprov.errors import FormatError, InputError, VerificationError
from trustprov.formats.limits import LIMITS
from trustprov.formats.lot import LotManifest
from trustprov.formats.lotsig import SUFFIX, LotSignature, ManifestHash
from trustprov.roles.files import read_bytes

READ_CHUNK = 1 << 20


def signature_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + SUFFIX)


def load_lot_key(path: Path) -> PublicKey:
    """The ICM's lot-signing public key (``lot-signing.pub.pem``)."""
    try:
        return load_public_key(read_bytes(path, limit=16 * 1024, what="lot-signing key"))
    except (FormatError, ValueError) as e:
        raise InputError(f"{path}: not a public key") from e


def _signature(manifest: Path) -> LotSignature:
    path = signature_path(manifest)
    if not path.is_file():
        # a missing file is the user's to give (exit 2); a signature that fails is a refusal
        raise InputError(
            f"{manifest}: no ICM signature beside it ({path.name}): an unsigned lot manifest is "
            "refused"
        )
    return LotSignature.from_bytes(read_bytes(path, limit=4096, what="lot manifest signature"))


def signer_id(manifest: Path) -> bytes:
    """The key id of the key that signed ``manifest`` (what its signature names): lots checked
    without the ICM's key must at least all name one signer."""
    return _signature(manifest).kid


def _key(signature: LotSignature, key: PublicKey | None) -> PublicKey:
    return signature.embedded_key() if key is None else key


@dataclass(frozen=True)
class VerifiedLot:
    """What a verified signature says of a lot, before (or without) parsing its manifest."""

    lot: str
    family_id: bytes
    chips: int
    size: int


def verify_lot_file(manifest: Path, key: PublicKey | None = None) -> VerifiedLot:
    """Check ``manifest``'s signature in constant memory, streaming the file through SHA-256."""
    sig = _signature(manifest)
    h = ManifestHash()
    try:
        with open(manifest, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                h.update(chunk)
                if h.size > LIMITS.lot_manifest:
                    raise FormatError(f"{manifest}: larger than any lot manifest")
    except OSError as e:
        raise InputError(f"cannot read {manifest}: {e.strerror or e}") from e
    sig.verify(_key(sig, key), h.digest())
    return VerifiedLot(sig.lot, sig.family_id, sig.chips, h.size)


def read_lot(manifest: Path, key: PublicKey | None = None) -> LotManifest:
    """The lot manifest at ``manifest``, its signature verified over the bytes parsed, and the
    header's lot, family and count equal to the manifest's. Raises `VerificationError` on any
    substitution (spliced, dropped, swapped chips; a renamed lot; another lot's signature)."""
    sig = _signature(manifest)
    data = read_bytes(manifest, limit=LIMITS.lot_manifest, what="lot manifest")
    sig.verify(_key(sig, key), ManifestHash.of_chunks([data]))
    lot = LotManifest.from_json(data)
    if (lot.lot, lot.family_id, len(lot.chips)) != (sig.lot, sig.family_id, sig.chips):
        raise VerificationError(
            f"{manifest}: the signature names another lot, family or count",
            code="bad-signature",
        )
    return lot
