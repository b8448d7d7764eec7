"""The OEM's authorized set: which chips may install its bundle (issue 10, "authorized chips only").

`authorize` reads the ICM's lot manifests, each verified under the ICM's lot-signing key the OEM
names (or, without one, under the key each signature names, all by one signer: the lots are then
known whole, not known to be the ICM's), and writes the set of their UIDs (AUTH,
formats/authz.py). The OEM puts the set's root and
size into its bundle's manifest (`oem keygen --auth`), under the CMAC only its chips can make, and
sends AUTH to the CM, which gives each chip its inclusion proof (`cm provision --auth`).

Invariant: no UID enters a set unless a lot manifest signed by that key lists it; the lots of
one set are of one family and name each chip once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trustprov.errors import FormatError, InputError
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.limits import LIMITS
from trustprov.roles.files import check_output, read_bytes, write_file
from trustprov.roles.lots import load_lot_key, read_lot, signer_id


def authorize(
    lots: Sequence[Path], out: Path, icm_key: Path | None, *, force: bool = False
) -> AuthorizedSet:
    """The set of every chip of ``lots`` (each verified under ``icm_key``, or without it under
    the one key all their signatures name), written to ``out``."""
    if not lots:
        raise InputError("give at least one --lot: an empty set would authorize no chip")
    # before the work, so a refusal costs nothing
    check_output(out, force=force, kind="authorized-set")
    key = load_lot_key(icm_key) if icm_key is not None else None
    if key is None and len({signer_id(p) for p in lots}) > 1:
        raise InputError("the lots are signed by different keys; give --icm-key to name the ICM's")
    uids: list[bytes] = []
    family: bytes | None = None
    names: set[str] = set()
    for path in lots:
        lot = read_lot(path, key)
        if family is not None and lot.family_id != family:
            raise InputError(f"{path}: lot {lot.lot} is of another chip family than the others")
        if lot.lot in names:
            raise InputError(f"{path}: lot {lot.lot} is given twice")
        family = lot.family_id
        names.add(lot.lot)
        uids.extend(c.uid for c in lot.chips)
    if len(set(uids)) != len(uids):
        raise InputError("two lots list the same chip")
    try:
        authorized = AuthorizedSet.from_uids(uids, family)
    except FormatError as e:
        raise InputError(e.message) from e
    write_file(out, authorized.to_bytes(), force=force, kind="authorized-set")
    return authorized


def load_authorized(path: Path) -> AuthorizedSet:
    """An AUTH file, parsed and its root recomputed (a damaged one is refused)."""
    return AuthorizedSet.from_bytes(read_bytes(path, limit=LIMITS.authorized, what="AUTH"))
