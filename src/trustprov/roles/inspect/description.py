"""What `inspect` says of a file: the `Description` every describer returns.

Invariant: a description holds public values only (the describers see to it); this module holds
the shape, so that the describers of each kind of file need not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIRST_UIDS = 5  # UIDs a lot manifest or a farm shows of each lot


@dataclass(frozen=True)
class Description:
    """What a file is and what is public in it (``fields`` in display order, JSON-ready)."""

    kind: str
    what: str
    fields: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    secret: bool = False

    def to_json(self, path: Path) -> dict[str, Any]:
        doc: dict[str, Any] = {"file": str(path), "kind": self.kind, "what": self.what}
        doc.update(self.fields)
        if self.note:
            doc["note"] = self.note
        doc["secret"] = self.secret
        return doc


#: reads a records store (an SQLite file that is not a farm); None if it is not one either
DatabaseReader = Callable[[Path], Description | None]


#: each kind of `Description`, as the noun of "FILE: this is ..., not ..."
_IT_IS = {
    "software": "signed provisioning software",
    "lot-signature": "the ICM's signature of a lot manifest (LOT_JSON.cose)",
    "receipts": "chip receipts (cm receipts)",
    "manifest": "a bundle's manifest alone",
    "bundle": "a sealed bundle",
    "authorized-set": "an authorized set (AUTH, oem authorize)",
    "family-secrets": "the ICM's family secrets",
    "private-key": "a private key",
    "public-key": "a public key",
    "certificate": "an X.509 certificate",
    "icm-metadata": "the ICM's icm.json",
    "oem-metadata": "the OEM's oem.json",
    "run-summary": "a provisioning run's summary",
    "lot-manifest": "a lot manifest (icm manufacture)",
    "asset-list": "an asset list",
    "farm": "a chip farm",
    "records": "a records store",
}


def what_it_is(found: Description) -> str:
    """``found`` named as a person names it: a sealed value by what it seals, ENC(RND_SHARE)."""
    if found.kind == "sealed-value":
        return f"ENC({str(found.fields.get('value', '?')).upper().replace('-', '_')})"
    return _IT_IS.get(found.kind, found.what)
