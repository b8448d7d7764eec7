"""`trustprov inspect` of the count-and-proof artifacts: a lot manifest's signature (LOT_JSON.cose)
and an authorized set (AUTH). Everything in them is public: UIDs, hashes, a public key."""

from __future__ import annotations

from pathlib import Path

from trustprov.errors import FormatError, VerificationError
from trustprov.formats.limits import LIMITS
from trustprov.formats.lotsig import LotSignature, ManifestHash
from trustprov.roles.files import read_bytes
from trustprov.roles.lots import signature_path

FIRST_UIDS = 5
_SIGNATURE_MAX = 4096


def lot_signature(path: Path) -> LotSignature | None:
    """The lot signature at ``path``, or None if it is not one (a COSE_Sign1 of another kind)."""
    if path.stat().st_size > _SIGNATURE_MAX:
        return None
    try:
        return LotSignature.from_bytes(read_bytes(path, limit=_SIGNATURE_MAX, what="signature"))
    except FormatError:
        return None


def lot_signature_fields(sig: LotSignature) -> dict[str, object]:
    return {
        "lot": sig.lot,
        "family": sig.family_id.hex(),
        "chips": sig.chips,
        "manifest_sha256": sig.digest.hex(),
        "key_id": sig.kid.hex(),
        "signature": "not checked here: every reader of the lot manifest checks it "
        "(oem authorize --icm-key lot-signing.pub.pem checks who signed it)",
    }


def authorized_set_fields(path: Path) -> dict[str, object]:
    from trustprov.formats.authz import AuthorizedSet  # noqa: PLC0415 - lazy: start-up

    s = AuthorizedSet.from_bytes(read_bytes(path, limit=LIMITS.authorized, what="authorized set"))
    return {
        "family": "any" if s.family_id is None else s.family_id.hex(),
        "chips": len(s),
        "root": s.root.hex(),
        "first_uids": [u.hex() for u in s.uids[:FIRST_UIDS]],
    }


def lot_manifest_signature(path: Path, data: bytes, lot: str, chips: int) -> str:
    """What inspect says of a lot manifest's signature: checked whole under the key it names
    (who signed it takes the ICM's key: `oem authorize --icm-key`); a failing one is refused."""
    sig_path = signature_path(path)
    if not sig_path.is_file():
        return f"none ({sig_path.name} missing): every reader refuses an unsigned lot manifest"
    sig = LotSignature.from_bytes(read_bytes(sig_path, limit=_SIGNATURE_MAX, what="signature"))
    try:
        sig.verify(sig.embedded_key(), ManifestHash.of_chunks([data]))
    except VerificationError as e:
        raise VerificationError(f"{path}: {e.message}", code=e.code) from e
    if (sig.lot, sig.chips) != (lot, chips):
        raise VerificationError(f"{path}: its signature names another lot or count")
    return f"verified whole under the key it names (kid {sig.kid.hex()[:16]}...)"
