"""trustprov.roles.bundle_io and link.chunk_requests: a bundle read from its file a chunk at a
time gives the requests of the bundle in memory, crosses into a worker process as its path and
index, and a bundle written a chunk at a time appears whole or not at all."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from trustprov.errors import FormatError, InputError
from trustprov.formats.bundle import Bundle
from trustprov.link.chunk_requests import ChunkRequests, Requests
from trustprov.link.client import PreparedBundle
from trustprov.roles.bundle_io import BundleFile, bundle_output


def test_requests_read_from_the_file_are_the_requests_of_the_bundle(world: Any) -> None:
    share = world.share.read_bytes()
    eager = PreparedBundle.prepare(Bundle.from_bytes(world.bundle.read_bytes()), share)
    lazy = ChunkRequests(BundleFile(world.bundle))
    assert isinstance(eager.chunks, tuple)
    assert len(lazy) == len(eager.chunks) > 3
    assert list(lazy) == list(eager.chunks)
    assert lazy[-1] == eager.chunks[-1]
    assert lazy[1:3] == list(eager.chunks[1:3])
    with pytest.raises(IndexError):
        lazy[len(lazy)]
    whole = Requests(eager.begin, lazy, eager.finish)
    assert list(whole) == eager.requests(None)
    assert whole[0] == eager.begin
    assert whole[-1] == eager.finish
    assert len(whole) == len(lazy) + 2


def test_a_bundle_file_crosses_into_a_worker_as_its_path_and_index(
    world: Any, tmp_path: Path
) -> None:
    path = shutil.copyfile(world.bundle, tmp_path / "bundle.cbor")
    lazy = ChunkRequests(BundleFile(path))
    again = pickle.loads(pickle.dumps(lazy))  # noqa: S301 - our own object: what a spawned worker receives
    assert list(again) == list(lazy)
    moved = pickle.loads(pickle.dumps(lazy))  # noqa: S301 - our own object
    with path.open("ab") as f:
        f.write(b"\x00")  # the file is not the one indexed any more
    with pytest.raises(InputError, match="changed"):
        moved[0]


def test_a_bundle_written_in_pieces_appears_whole_or_not_at_all(world: Any, tmp_path: Path) -> None:
    b = Bundle.from_bytes(world.bundle.read_bytes())
    lengths = [[len(c) for c in chunks] for chunks in b.chunks]  # deflated ones among them
    manifest = b.signed.to_bytes()
    out = tmp_path / "bundle.cbor"

    def stopped() -> None:
        with bundle_output(out, len(manifest), lengths) as w:
            w.chunk(0, 0, b.chunks[0][0])
            raise RuntimeError("the chip stopped")

    def unfinished() -> None:
        with bundle_output(out, len(manifest), lengths):
            pass

    with pytest.raises(RuntimeError):
        stopped()
    with pytest.raises(FormatError, match="without its manifest"):
        unfinished()
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary one
    with bundle_output(out, len(manifest), lengths) as w:
        for a, chunks in reversed(list(enumerate(b.chunks))):
            for i in reversed(range(len(chunks))):
                w.chunk(a, i, chunks[i])
        w.finish(manifest)
    assert out.read_bytes() == world.bundle.read_bytes()
