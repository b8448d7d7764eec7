"""trustprov.chip.staging and the farm's staged blobs: a region's content goes from flash staging
into the farm a piece at a time, in the chip's one commit, or not at all; a content the farm
holds is not staged again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from trustprov.chip.farm import Farm
from trustprov.chip.model import ChipState, Installed, Lifecycle
from trustprov.chip.staging import PIECE, SPOOL, StagedContent

UID = b"\x5a" * 16
CONTENT = b"\x77" * 32


def _state(world: Any, length: int) -> ChipState:
    installed = Installed(
        domain_id=b"D" * 16, bundle_id=b"B" * 16, epoch=1, regions={"app": ("fw", length, CONTENT)}
    )
    return ChipState(
        uid=UID,
        lot="ST",
        lifecycle=Lifecycle.PROVISIONED,
        security_counter=1,
        immutable=world.icm.immutable,
        identity_key=b"\x44" * 32,
        certificate=b"cert",
        installed=installed,
    )


def _staged(data: bytes, *, held: bool = False) -> StagedContent:
    s = StagedContent(CONTENT, held=held)
    for k in range(0, len(data), 10_000):  # as chunks arrive
        s.write(data[k : k + 10_000])
    return s


@pytest.fixture
def farm(tmp_path: Path) -> Farm:
    f = Farm(tmp_path / "s.farm", create=True)
    f.add_blank(UID, "ST")
    return f


def test_a_staged_content_lands_in_the_farm_whole(world: Any, farm: Farm) -> None:
    data = os.urandom(SPOOL + PIECE + 12_345)  # spilled to disk, read back in pieces
    staged = _staged(data)
    assert staged.length == len(data)
    farm.save(_state(world, len(data)), {CONTENT: staged})
    staged.close()
    assert farm.blob(CONTENT) == data
    assert farm.blob_digest(CONTENT) == hashlib.sha256(data).digest()
    assert farm.holds_blob(CONTENT)
    farm.close()


def test_a_commit_that_fails_leaves_no_blob(world: Any, farm: Farm) -> None:
    def power_cut() -> None:
        raise OSError("power cut")

    farm.before_commit = power_cut
    with pytest.raises(OSError, match="power cut"):
        farm.save(_state(world, 50_000), {CONTENT: _staged(os.urandom(50_000))})
    farm.before_commit = None
    assert not farm.holds_blob(CONTENT)
    assert farm.load(UID).lifecycle == Lifecycle.BLANK
    farm.close()


def test_a_content_the_farm_holds_is_counted_not_kept(world: Any, farm: Farm) -> None:
    data = os.urandom(70_000)
    farm.save(_state(world, len(data)), {CONTENT: _staged(data)})
    again = _staged(data, held=farm.holds_blob(CONTENT))
    assert again.held
    assert again.length == len(data)
    assert list(again.pieces()) == []  # nothing of the content is kept
    farm.save(_state(world, len(data)), {CONTENT: again})
    assert farm.blob(CONTENT) == data
    farm.close()
