"""A tray of chips as files: the chips a board with chip programs seats (docs/protocol.md 13.4).

Layout: ``TRAY/LOT/UID.nvm``, one file per chip: LOT its fab lot (a lot name, section 15), UID
its 32 lowercase hex digits, the file its NVM (whatever format its chip program keeps; a missing
or empty file is a blank chip, fresh from the fab). The tray says which chips exist, their UIDs
and lots; nothing in it is read by the board but names.

Invariants: a UID is in the tray at most once (a tray holding one twice is refused, since two
files would be two states of one chip); names that do not fit the layout are ignored; the board
only ever seats a chip whose file is in the tray.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from trustprov.chip.staging import StagedContent
from trustprov.errors import FormatError, InputError
from trustprov.formats.lot import UID_LEN, LotChip

SUFFIX = ".nvm"
_UID_NAME = re.compile(r"[0-9a-f]{32}")


class Tray:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()  # the programs get absolute paths, whatever their cwd
        if not self.root.is_dir():
            raise InputError(f"no tray at {self.root} (a directory of LOT/UID.nvm files)")
        self._chips: dict[bytes, tuple[Path, str]] = {}
        self.scan()

    def scan(self) -> None:
        """Read the tray's chips again (chips may be added while a board runs)."""
        chips: dict[bytes, tuple[Path, str]] = {}
        for lot_dir in sorted(self.root.iterdir()):
            if not lot_dir.is_dir() or not _is_lot_name(lot_dir.name):
                continue
            for f in sorted(lot_dir.iterdir()):
                if f.suffix != SUFFIX or not _UID_NAME.fullmatch(f.stem):
                    continue
                uid = bytes.fromhex(f.stem)
                if uid in chips:
                    raise InputError(
                        f"chip {f.stem} is in the tray twice ({chips[uid][0]} and {f}); "
                        "a chip has one state"
                    )
                chips[uid] = (f, lot_dir.name)
        self._chips = chips

    def uids(self) -> list[bytes]:
        return sorted(self._chips)

    def find(self, uid: bytes) -> tuple[Path, str]:
        """The chip's NVM file and lot; `InputError` if it is not in the tray."""
        if uid not in self._chips:
            self.scan()
        if uid not in self._chips:
            raise InputError(f"no chip {uid.hex()} in the tray {self.root}")
        return self._chips[uid]


def nvm_path(root: Path, lot: str, uid: bytes) -> Path:
    return Path(root) / lot / f"{uid.hex()}{SUFFIX}"


def add_blank(
    root: Path, lot: str, count: int, *, rng: Callable[[int], bytes] = os.urandom
) -> list[bytes]:
    """``count`` blank chips with fab UIDs from ``rng`` (the OS CSPRNG) into the tray: an empty
    file each (created exclusively: an existing chip is never replaced)."""
    check_lot(lot)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is not a directory: a tray is one")
    (root / lot).mkdir(parents=True, exist_ok=True)
    known = set(Tray(root).uids())
    made: list[bytes] = []
    while len(made) < count:
        uid = rng(UID_LEN)
        if uid in known:
            continue  # 2^-128 a draw; a fab never reuses a UID
        fd = os.open(nvm_path(root, lot, uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        known.add(uid)
        made.append(uid)
    return made


def check_lot(lot: str) -> None:
    if not _is_lot_name(lot):
        raise InputError(
            f"lot name {lot!r}: 1-64 of letters, digits, '.', '_', '-', starting alnum"
        )


def _is_lot_name(name: str) -> bool:
    try:
        LotChip.check_lot_name(name)
    except FormatError:
        return False
    return True


def export_chips(farm_path: Path, root: Path, uids: list[bytes]) -> list[tuple[bytes, Path]]:
    """Copy chips of a farm into the tray, each as the virtual chip's NVM file
    (`trustprov.chip.nvm_file`): a rehearsal's way to seat made chips on a board of chip
    programs. A file already in the tray is never replaced; the farm keeps its copy (a clone:
    use one or the other)."""
    from trustprov.chip.farm import Farm  # noqa: PLC0415 - lazy: `chip blank` never needs it
    from trustprov.chip.nvm_file import NvmFile  # noqa: PLC0415 - lazy: start-up

    farm = Farm(farm_path)
    try:
        known = set(Tray(root).uids()) if Path(root).is_dir() else set()
        states = [farm.load(uid) for uid in uids]  # every chip found before any file
        for state in states:
            if state.uid in known:
                raise InputError(f"chip {state.uid.hex()} is already in the tray {root}")
            check_lot(state.lot)
        out = []
        for state in states:
            path = nvm_path(root, state.lot, state.uid)
            path.parent.mkdir(parents=True, exist_ok=True)
            nvm = NvmFile(path, uid=state.uid, lot=state.lot)
            nvm.load()
            blobs: dict[bytes, bytes | StagedContent] = {}
            if state.installed is not None:
                blobs = {c: farm.blob(c) for _a, _n, c in state.installed.regions.values()}
            nvm.save(state, blobs)
            out.append((state.uid, path))
        return out
    finally:
        farm.close()
