"""`trustprov inspect` of a receipts file (`cm receipts --format cbor-seq`): how many receipts,
and what the first ones claim. Everything in a receipt is public (UIDs, digests, public keys);
nothing is verified here (`oem reconcile` does, with the device CA)."""

from __future__ import annotations

from pathlib import Path

from trustprov.errors import TrustprovError
from trustprov.formats.receipt import Receipt
from trustprov.roles.oem.reconcile import read_receipts

FIRST = 3


def first_receipt(path: Path) -> Receipt | None:
    """The first receipt of ``path`` if the file starts with one; None otherwise (another
    COSE_Sign1, such as signed software, is not a receipt)."""
    items = read_receipts(path)
    try:
        return Receipt.from_bytes(next(items))
    except (TrustprovError, StopIteration):
        return None
    finally:
        items.close()  # the file it holds open


def receipts_fields(path: Path) -> dict[str, object]:
    count, first = 0, []
    for data in read_receipts(path):
        count += 1
        if count <= FIRST:
            c = Receipt.from_bytes(data).claims
            first.append(
                {
                    "uid": c.uid.hex(),
                    "lot": c.lot,
                    "bundle_id": c.bundle_id.hex(),
                    "counter": c.counter,
                    "device_keys": [k.name for k in c.device_keys],
                }
            )
    return {
        "receipts": count,
        "first": first,
        "signatures": "not checked here: oem reconcile --ca DEVICE_CA checks every one",
    }
