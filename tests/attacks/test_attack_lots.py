"""C3: a lot manifest substituted between the ICM and its readers (issue 10, item 1).

Someone between the ICM and the OEM or the CM splices chips of another lot of the same family
into a lot manifest, drops chips, swaps two lots' chip lists or signatures, renames the lot, or
signs the result with a key of its own. Every reader verifies the ICM's signature first
(roles/lots.py); `oem authorize`, given the ICM's lot-signing key, never builds a set from a
substituted manifest. Each attack fails if a reader accepts the manifest.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.errors import InputError, VerificationError
from trustprov.formats.lot import LotManifest
from trustprov.formats.lotsig import LotSignature, ManifestHash
from trustprov.roles.lots import read_lot, signature_path, verify_lot_file
from trustprov.roles.oem.authorize import authorize


def _copy(world: Any, d: Path, name: str) -> Path:
    dest = d / f"{name}.json"
    shutil.copyfile(world.root / f"{name}.json", dest)
    shutil.copyfile(signature_path(world.root / f"{name}.json"), signature_path(dest))
    return dest


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_bytes(LotManifest.from_json(json.dumps(doc).encode()).to_json())


def _assert_refused(world: Any, manifest: Path, out: Path) -> None:
    key = world.icm.path / "lot-signing.pub.pem"
    for read in (lambda: read_lot(manifest), lambda: verify_lot_file(manifest)):
        with pytest.raises(VerificationError):
            read()
    with pytest.raises(VerificationError):
        authorize([manifest], out, key)
    assert not out.exists()


def test_the_genuine_lot_is_accepted(world: Any, tmp_path: Path) -> None:
    lot = _copy(world, tmp_path, "lot")
    s = authorize([lot], tmp_path / "auth.cbor", world.icm.path / "lot-signing.pub.pem")
    assert sorted(world.cm_uids()) == s.uids


def test_spliced_dropped_swapped_renamed(world: Any, tmp_path: Path) -> None:
    other = json.loads((world.root / "oem-lot.json").read_bytes())  # a lot of the same family
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "spliced": lambda d: d["chips"].append(other["chips"][0]),
        "dropped": lambda d: d["chips"].pop(3),
        "reordered": lambda d: d["chips"].reverse(),
        "swapped": lambda d: d.update(chips=other["chips"]),
        "renamed": lambda d: d.update(lot="LOT-B"),
    }
    for name, change in edits.items():
        (tmp_path / name).mkdir()
        lot = _copy(world, tmp_path / name, "lot")
        _edit(lot, change)
        _assert_refused(world, lot, tmp_path / name / "auth.cbor")


def test_another_lots_signature_or_none(world: Any, tmp_path: Path) -> None:
    lot = _copy(world, tmp_path, "lot")
    shutil.copyfile(signature_path(world.root / "oem-lot.json"), signature_path(lot))
    _assert_refused(world, lot, tmp_path / "auth.cbor")
    signature_path(lot).unlink()
    with pytest.raises(InputError, match="unsigned"):
        read_lot(lot)
    with pytest.raises(InputError, match="unsigned"):
        authorize([lot], tmp_path / "auth.cbor", world.icm.path / "lot-signing.pub.pem")


def test_a_manifest_signed_by_another_key(world: Any, tmp_path: Path) -> None:
    """Re-signed after the edit, with a key the signature itself names: readers without the
    ICM's key see it whole (integrity only); the OEM, with the ICM's key, refuses it."""
    lot = _copy(world, tmp_path, "lot")
    _edit(lot, lambda d: d["chips"].pop(0))
    data = lot.read_bytes()
    parsed = LotManifest.from_json(data)
    sig = LotSignature.sign(
        ec.generate_private_key(ec.SECP256R1()),
        lot=parsed.lot,
        family_id=parsed.family_id,
        chips=len(parsed.chips),
        digest=ManifestHash.of_chunks([data]),
    )
    signature_path(lot).write_bytes(sig.to_bytes())
    assert read_lot(lot).lot == "LOT-A"  # whole: the embedded key verifies it
    with pytest.raises(VerificationError, match="another key"):
        authorize([lot], tmp_path / "auth.cbor", world.icm.path / "lot-signing.pub.pem")
    assert not (tmp_path / "auth.cbor").exists()
