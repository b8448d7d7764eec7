"""The receipts file that `oem reconcile` reads: a CBOR sequence (RFC 8742) of COSE_Sign1
receipts, or JSON lines ``{"uid": hex, "lot": str, "receipt": base64}`` (`cm receipts`).

Invariants:
- only a regular file is read (a FIFO, a device or a directory is refused before it is opened,
  so nothing blocks), of at most ``LIMITS.receipts_file`` bytes, refused before a byte is read;
- the file is streamed: memory is one read block and one receipt (``MAX_RECEIPT`` bytes; a JSON
  line at most four times that), whatever the file's size;
- a receipt is delimited here, never judged: `reconcile.check` classifies each. But a file that
  is not a receipt stream is refused as such (`FormatError`, naming the file and the byte or
  line): an empty file, an item that is not a tagged COSE_Sign1 (1,000 zero bytes are not 1,000
  forged receipts), a line that is not a receipt line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import BinaryIO

from trustprov.errors import FormatError, InputError
from trustprov.formats import cose
from trustprov.formats.cbor import sequence
from trustprov.formats.limits import LIMITS
from trustprov.formats.receipt import MAX_RECEIPT, RECEIPT_SHAPE

READ_BLOCK = 8 * 1024 * 1024
MAX_LINE = 4 * MAX_RECEIPT  # a JSON line: base64 of a receipt, its UID and lot
_SIGN1 = b"\xd2\x84"  # tag 18 and an array of 4: every receipt starts so (formats.receipt)

#: called as the file is read: (bytes read so far, the file's size)
Progress = Callable[[int, int], None]


def read_receipts(
    path: Path, *, on_progress: Progress | None = None
) -> Generator[bytes, None, None]:
    """The receipts of ``path``, streamed, each at most `MAX_RECEIPT` bytes (module docstring).
    Close the generator to close the file early."""
    path = Path(path)
    f, size = _open_regular(path)
    with f:
        first = f.read(1)
        if not first:
            raise FormatError(f"receipts {path}: an empty file, no receipt in it")
        f.seek(0)
        items = _json_lines(f, path) if first == b"{" else _cbor_sequence(f, path)
        done = 0
        for item, at in items:
            if on_progress is not None and at - done >= READ_BLOCK:
                done = at
                on_progress(at, size)
            yield item
        if on_progress is not None:
            on_progress(size, size)


def _open_regular(path: Path) -> tuple[BinaryIO, int]:
    what = f"receipts {path}"
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below refuses it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise InputError(f"{what}: no such file") from e
    except OSError as e:
        raise InputError(f"{what}: cannot read ({e.strerror})") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what}: not a regular file (a directory, FIFO or device)")
        if st.st_size > LIMITS.receipts_file:
            raise InputError(
                f"{what}: {st.st_size:,} bytes exceeds the limit of {LIMITS.receipts_file:,}"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=READ_BLOCK), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _json_lines(f: BinaryIO, path: Path) -> Iterator[tuple[bytes, int]]:
    at = 0
    n = 0
    while line := f.readline(MAX_LINE + 1):
        n += 1
        at += len(line)
        if len(line) > MAX_LINE:
            raise FormatError(f"receipts {path}: line {n} is longer than a receipt line can be")
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            receipt = base64.b64decode(doc["receipt"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as e:
            raise FormatError(
                f"receipts {path}: line {n} is not a receipt line (not a receipt stream?)"
            ) from e
        if not receipt.startswith(_SIGN1) or len(receipt) > MAX_RECEIPT:
            raise FormatError(f"receipts {path}: line {n} holds no COSE_Sign1 receipt")
        yield receipt, at


def _cbor_sequence(f: BinaryIO, path: Path) -> Iterator[tuple[bytes, int]]:
    tail = b""
    offset = 0  # of ``tail``'s first byte in the file
    while True:
        block = f.read(READ_BLOCK)
        data = tail + block
        if not data:
            return
        pos = 0
        try:
            for item in sequence(
                data,
                item_limit=MAX_RECEIPT,
                what=f"receipts {path}",
                shape=RECEIPT_SHAPE,
                tags=frozenset({cose.TAG_SIGN1}),
            ):
                if not item.startswith(_SIGN1):
                    where = "it starts with" if offset + pos == 0 else f"at byte {offset + pos}:"
                    raise FormatError(
                        f"receipts {path}: not a receipt stream ({where} a CBOR item that is "
                        "not a COSE_Sign1 receipt)"
                    )
                pos += len(item)
                yield item, offset + pos
        except FormatError as e:
            if "not a receipt stream" in e.message:
                raise
            # the block may end inside a receipt: what is left is carried to the next block,
            # unless the file has ended or a whole receipt's room did not delimit one
            if not block or len(data) - pos >= MAX_RECEIPT:
                raise FormatError(f"{e.message}: not a whole receipt stream") from e
        tail = data[pos:]
        offset += pos
        if not block:
            return
