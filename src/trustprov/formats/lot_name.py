"""The lot name rule (protocol.md 7): 1 to 64 of ASCII letters, digits, '.', '_' and '-',
starting with a letter or a digit.

One place for it, and cheap to import (no cryptography): every command's ``--lot`` is checked
against it while its options are parsed, before the command's own work is imported.
"""

from __future__ import annotations

import re

from trustprov.errors import FormatError

_LOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_lot_name(name: str) -> None:
    """Raise `FormatError` unless ``name`` is a lot name."""
    if not _LOT_NAME.fullmatch(name):
        raise FormatError(
            f"lot name {name!r}: 1-64 of letters, digits, '.', '_', '-', starting alnum"
        )
