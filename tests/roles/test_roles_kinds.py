"""trustprov.roles.kinds: what a file at an output path is, and what --force may replace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustprov.errors import InputError
from trustprov.formats import cbor
from trustprov.roles.files import write_file
from trustprov.roles.kinds import OUTPUT_KINDS, UNKNOWN, check_replace, recognise

SECRETS = {
    "family-secrets": cbor.encode(
        {k: bytes(32) for k in ("hw-share", "rom-share", "k-oem-share", "k-oem-master-share")}
    ),
    "private-key": b"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
    "encrypted-key": b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGH\n-----END ...\n",
    "sealed-value": b"\xd0\x83" + bytes(40),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
@pytest.mark.parametrize("kind", sorted(OUTPUT_KINDS))
def test_no_output_replaces_a_secret(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(SECRETS[name])
    path.chmod(0o644)  # a secret left world-readable by mistake is a secret all the same
    with pytest.raises(InputError, match="a secret; refusing to replace it, even with --force"):
        write_file(path, b"new", force=True, kind=kind)
    assert path.read_bytes() == SECRETS[name]


def test_an_unknown_public_file_is_replaced_with_the_kinds_mode(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"uid,lot\n")
    path.chmod(0o664)
    write_file(path, b"uid,lot,state\n", force=True, kind="csv")
    assert path.read_bytes() == b"uid,lot,state\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_an_unknown_private_file_is_kept(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "app-aes-key.bin"
    path.write_bytes(bytes(32))
    path.chmod(mode)
    with pytest.raises(InputError, match="private file"):
        check_replace(path, "csv")
    path.chmod(0o600)


def test_an_unreadable_file_is_kept(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "locked"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(InputError, match="cannot tell what it holds"):
        check_replace(path, "csv")


MAGIC = [b"", b"\xd2\x84", b"\xa4", b"-----BEGIN ", b"{", b'{"lot"', b"[", b"\xd0\x83"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MAGIC), st.binary(max_size=300))
def test_recognise_takes_any_bytes(
    tmp_path_factory: pytest.TempPathFactory, magic: bytes, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("k") / "f"
    path.write_bytes(magic + data)
    found = recognise(path)
    assert found.kind == UNKNOWN or found.what
