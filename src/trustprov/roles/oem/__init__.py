"""The OEM: verify the signed software, run FIG. 2 (keygen) and FIG. 4 (regen) on its chip
(`roles.oem.role`); its satellites: `authorize` (the authorized set), `reconcile` and
`receipts_file` (the chips' receipts), `desk_chip` (the chip it seals on) and `assets/` (the
asset list).

Invariant: importing this package, or any module of it, loads no chip, link or crypto: the
role's names (`keygen`, `regen`, `SealResult`, ...) are looked up in `role` on first use (PEP
562), so `trustprov oem template` and the asset list's readers start as fast as before the
OEM's modules became one folder. Every name is typed here for the type checker as if imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustprov.roles.oem.role import (
        ISSUED,
        MAX_ISSUED,
        OEM_RND_INPUT_LEN,
        Random,
        SealResult,
        check_auth_family,
        keygen,
        load_software,
        regen,
        verify_software,
    )

__all__ = [
    "ISSUED",
    "MAX_ISSUED",
    "OEM_RND_INPUT_LEN",
    "Random",
    "SealResult",
    "check_auth_family",
    "keygen",
    "load_software",
    "regen",
    "verify_software",
]

#: the package's own modules: found by the import system, never looked up in `role`
_SUBMODULES = frozenset({"assets", "authorize", "desk_chip", "receipts_file", "reconcile", "role"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES or name.startswith("__"):
        raise AttributeError(name)
    value = getattr(importlib.import_module("trustprov.roles.oem.role"), name)
    globals()[name] = value  # looked up once
    return value
