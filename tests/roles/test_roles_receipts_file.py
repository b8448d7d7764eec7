"""trustprov.roles.oem.receipts_file and reconcile's streaming: a receipts file is read in bounded
memory whatever its size, and a file that is not a receipt stream is refused as such."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from trustprov.errors import FormatError, InputError
from trustprov.formats.bundle import Bundle
from trustprov.formats.limits import LIMITS
from trustprov.formats.receipt import MAX_RECEIPT
from trustprov.roles.oem import receipts_file, reconcile
from trustprov.roles.oem.receipts_file import MAX_LINE, read_receipts


def _sign1(payload_len: int) -> bytes:
    """A tagged COSE_Sign1 of the receipts' shape, ``payload_len`` bytes of payload."""
    import cbor2  # noqa: PLC0415 - only to make test items

    return cbor2.dumps(cbor2.CBORTag(18, [b"\xa1\x01\x26", {}, b"p" * payload_len, b"s" * 64]))


def test_the_file_size_is_bounded_before_a_byte_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.cbor"
    path.write_bytes(_sign1(10) * 3)
    size = path.stat().st_size
    monkeypatch.setattr(receipts_file, "LIMITS", dataclasses.replace(LIMITS, receipts_file=size))
    assert len(list(read_receipts(path))) == 3
    monkeypatch.setattr(
        receipts_file, "LIMITS", dataclasses.replace(LIMITS, receipts_file=size - 1)
    )
    with pytest.raises(InputError, match="exceeds the limit"):
        list(read_receipts(path))


def test_each_receipt_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "r.cbor"
    path.write_bytes(_sign1(10) + _sign1(MAX_RECEIPT))
    items = read_receipts(path)
    assert next(items) == _sign1(10)
    with pytest.raises(FormatError, match="receipts"):
        next(items)


def test_a_json_line_is_bounded_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with path.open("wb") as f:
        f.write(b'{"receipt": "')
        f.truncate(1 << 30)  # a 1 GiB line of NUL bytes (a hole: no disk space)
    with pytest.raises(FormatError, match="line 1 is longer"):
        list(read_receipts(path))
    assert MAX_LINE == 4 * MAX_RECEIPT


def test_progress_is_reported_as_the_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receipts_file, "READ_BLOCK", 1000)
    path = tmp_path / "r.cbor"
    path.write_bytes(_sign1(400) * 20)
    seen: list[tuple[int, int]] = []
    assert len(list(read_receipts(path, on_progress=lambda d, s: seen.append((d, s))))) == 20
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert len(seen) > 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_receipts_or_refused_as_not_a_stream(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("r") / "r"
    path.write_bytes(data)
    try:
        items = list(read_receipts(path))
    except (FormatError, InputError) as e:
        assert "receipts" in e.message  # noqa: PT017 - the message names the file
        return
    assert items
    assert all(i.startswith(b"\xd2\x84") for i in items)
    assert sum(map(len, items)) <= len(data)


def test_the_pool_never_reads_ahead_of_what_it_checks(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pool.imap's feeder read the whole file ahead: memory grew with the file's size."""
    bundle = Bundle.from_bytes(world.bundle.read_bytes())
    ca = world.icm.ca_cert.public_bytes(serialization.Encoding.DER)
    ref = reconcile.reference(ca, bundle)
    monkeypatch.setattr(reconcile, "BATCH", 10)
    read = [0]

    def receipts() -> Iterator[bytes]:
        for _ in range(100_000):
            read[0] += 1
            yield _sign1(10)  # forged (no certificate): checked fast

    verdicts = reconcile._verdicts(receipts(), ref, jobs=2)
    for _ in range(10):
        assert next(verdicts)[0] == "forged"
    assert read[0] <= (reconcile.IN_FLIGHT * 2 + 1) * 10
    verdicts.close()


def test_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(InputError, match="regular file"):
        list(read_receipts(Path("/dev/zero")))
