"""Text that tries to drive the operator's terminal, planted where trustprov reads text from.

A poisoned records store (station names, lot names, error codes and messages, bundle ids) and a
poisoned chip farm (the lot a chip reports) hold escape sequences that clear the screen and
print a fake "OK", a carriage return that overwrites a line, a bell, an 8-bit CSI, a
right-to-left override that reverses the text after it, and a newline that starts a fake line.
`assert_shown_as_text` is the check every human-readable output must pass: not one character of
these reaches it raw.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: a screen clear, the cursor home and a fake success line
ESC_CLEAR = "\x1b[2J\x1b[H"
FAKE = "FAKE-OK"
#: each planted value carries every kind of trick at once
STATION = f"st{ESC_CLEAR}{FAKE}\r\x07"
LOT = f"LOT\u202e{ESC_CLEAR}"
CODE = "code\x1b]0;title\x07\x9b31m"
MESSAGE = f"msg\n{FAKE} all chips provisioned\r\x1b[1A\u2028"
BUNDLE = f"b\x1b[2K{FAKE}"
POISONS = (STATION, LOT, CODE, MESSAGE, BUNDLE)


def poison_records(path: Path, failed: int = 2) -> None:
    """Rewrite a records store (SQLite) as a dishonest station could: every text value
    poisoned, and ``failed`` chips' final records made failures with a poisoned code and
    message."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jobs SET lot = ?", (LOT,))
        db.execute("UPDATE results SET lot = ?, station = ?", (LOT, STATION))
        db.execute("UPDATE records SET lot = ?, station = ?", (LOT, STATION))
        db.execute("UPDATE lot_chips SET station = ? WHERE station IS NOT NULL", (STATION,))
        uids = [r[0] for r in db.execute("SELECT uid FROM results ORDER BY uid LIMIT ?", (failed,))]
        for uid in uids:
            for table in ("results", "records"):
                db.execute(
                    f"UPDATE {table} SET result = 'failed', error_code = ?, error = ? "  # noqa: S608 - two table names of this file
                    "WHERE uid = ?",
                    (CODE, MESSAGE, uid),
                )
        # an earlier job of the lot (id 0: the report's latest stays the real one): its bundle
        # id shows among "other bundles"
        db.execute(
            "INSERT INTO jobs (id, lot, bundle_id, chips, created) "
            "SELECT 0, lot, ?, chips, created FROM jobs LIMIT 1",
            (BUNDLE,),
        )


def poison_farm(path: Path) -> None:
    """Rename the lot of every chip of a farm as a dishonest CM could (the farm is its file)."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE chips SET lot = ?", (LOT,))


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` that are not printable, but the line breaks between lines."""
    return sorted({c for c in text if not c.isprintable() and c != "\n"})


def assert_shown_as_text(text: str, what: str) -> None:
    """No character of ``text`` can drive a terminal or disguise it, and no planted value starts
    a line of its own."""
    assert not raw_controls(text), f"{what}: raw {raw_controls(text)!r} in {text!r}"
    for line in text.splitlines():
        assert not line.startswith(FAKE), f"{what}: a planted line {line!r}"
