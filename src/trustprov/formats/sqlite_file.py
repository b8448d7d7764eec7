"""How a reader opens an SQLite file (a chip farm, a records store) that it must not write.

Invariants: `read_only_uri` always names ``mode=ro`` (nothing can be written through it, not
even by a bug); it adds ``immutable`` (SQLite then takes no lock and makes no shared-memory
file, which it could not on read-only media) only where `writable` says nothing can write the
file and no WAL beside it holds writes not yet in the file, which immutable would not read. On
writable media a writer may be committing while the reader reads: immutable would read a torn
state, so it is never set there.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path


def writable(path: Path) -> bool:
    """Whether this process may write ``path`` and its directory (where SQLite's journal goes)."""
    return os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)


def read_only_uri(path: Path) -> str:
    """The ``file:`` URI (for ``sqlite3.connect(..., uri=True)``) that opens ``path``
    read-only, as the module's docstring says."""
    wal = path.with_name(path.name + "-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro" + (
        "" if writable(path) or pending else "&immutable=1"
    )
