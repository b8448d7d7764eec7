"""`cm receipts`: the chips' receipts out of the records store, for the OEM.

Formats: ``cbor-seq``, the receipts as the chips signed them, one after another (a CBOR sequence,
RFC 8742; media type application/cbor-seq); ``jsonl``, one JSON object a line,
``{"uid": hex, "lot": str, "receipt": base64}``. Invariant: the bytes of each receipt are the
chip's, unchanged: the CM holds no key to make or mend one, and the OEM verifies every one.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Literal

from trustprov.errors import InputError
from trustprov.line.records import RecordStore
from trustprov.roles.files import output_file

Format = Literal["cbor-seq", "jsonl"]


def export_receipts(
    store: RecordStore, lot: str | None, out: Path, fmt: Format, *, force: bool = False
) -> int:
    """Write the receipts of ``lot`` (every lot if None) to ``out``; the number written. A lot
    the records do not hold is bad input, not an empty export."""
    if lot is not None and not store.find_jobs(lot):
        raise InputError(f"no lot {lot!r} in the records at {store.url}")
    n = 0
    with output_file(out, force=force, stdout=True, kind="receipts") as f:
        for uid, lot_name, receipt in store.receipts(lot):
            if fmt == "cbor-seq":
                f.write(receipt)
            else:
                line = {"uid": uid, "lot": lot_name, "receipt": base64.b64encode(receipt).decode()}
                f.write(json.dumps(line, sort_keys=True).encode() + b"\n")
            n += 1
    return n
