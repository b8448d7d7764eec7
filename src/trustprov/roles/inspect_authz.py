"""`trustprov inspect` of the count-and-proof artifacts: a lot manifest's signature (LOT_JSON.cose)
and an authorized set (AUTH). Everything in them is public: UIDs, hashes, a public key."""

from __future__ import annotations

from pathlib import Path

from trustprov.errors import FormatError
from trustprov.formats.limits import LIMITS
from trustprov.formats.lotsig import LotSignature
from trustprov.roles.files import read_bytes

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
