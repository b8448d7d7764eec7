"""trustprov.formats.lot: the lot manifest (JSON)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from trustprov.errors import FormatError
from trustprov.formats import lot as lot_format
from trustprov.formats.limits import LIMITS
from trustprov.formats.lot import LotChip, LotManifest, LotManifestWriter


@pytest.fixture(scope="module")
def lot(builders: SimpleNamespace) -> LotManifest:
    return builders.lot(3)


def doc_of(lot: LotManifest) -> dict[str, Any]:
    return json.loads(lot.to_json())


def parse(doc: Any) -> LotManifest:
    return LotManifest.from_json(json.dumps(doc).encode())


def test_round_trip(lot: LotManifest) -> None:
    data = lot.to_json()
    parsed = LotManifest.from_json(data)
    assert parsed == lot
    assert parsed.to_json() == data
    assert data.endswith(b"\n")


def test_layout(lot: LotManifest) -> None:
    doc = doc_of(lot)
    assert set(doc) == {"lot", "family", "chips"}
    assert doc["lot"] == "LOT-1"
    assert doc["family"] == lot.family_id.hex()
    for chip, entry in zip(lot.chips, doc["chips"], strict=True):
        assert entry["uid"] == chip.uid.hex()
        cert = x509.load_pem_x509_certificate(entry["certificate"].encode())
        assert cert.public_bytes(Encoding.DER) == chip.certificate


def _written(lot: LotManifest) -> bytes:
    out = io.BytesIO()
    writer = LotManifestWriter(out, lot.lot, lot.family_id)
    for chip in lot.chips:
        writer.add(chip.uid, x509.load_der_x509_certificate(chip.certificate))
    assert writer.count == len(lot.chips)
    writer.finish()
    return out.getvalue()


def test_the_writer_is_the_serializer(lot: LotManifest) -> None:
    assert _written(lot) == lot.to_json()


def test_the_writer_puts_one_chip_on_each_line(lot: LotManifest) -> None:
    """A reader can stream the file a line at a time; the document is still one JSON object."""
    lines = lot.to_json().splitlines()
    assert len(lines) == len(lot.chips) + 2
    assert json.loads(lines[0] + b"]}") == {
        "lot": lot.lot,
        "family": lot.family_id.hex(),
        "chips": [],
    }
    for chip, line in zip(lot.chips, lines[1:-1], strict=True):
        entry = json.loads(line.removesuffix(b","))
        assert entry["uid"] == chip.uid.hex()
        assert entry["certificate"] == chip.certificate_pem()
    assert lines[-1] == b"]}"


def test_the_writer_refuses_what_the_parser_would(lot: LotManifest) -> None:
    cert = x509.load_der_x509_certificate(lot.chips[0].certificate)
    with pytest.raises(FormatError, match="lot name"):
        LotManifestWriter(io.BytesIO(), "bad name", lot.family_id)
    with pytest.raises(FormatError, match="family"):
        LotManifestWriter(io.BytesIO(), lot.lot, lot.family_id[:-1])
    writer = LotManifestWriter(io.BytesIO(), lot.lot, lot.family_id)
    with pytest.raises(FormatError, match="UID"):
        writer.add(lot.chips[0].uid[:-1], cert)
    writer.finish()
    with pytest.raises(ValueError, match="finished"):
        writer.add(lot.chips[0].uid, cert)
    with pytest.raises(ValueError, match="finished"):
        writer.finish()


def test_the_writer_stops_at_the_size_limit_readers_enforce(
    lot: LotManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = len(lot.to_json())
    monkeypatch.setattr(lot_format, "LIMITS", dataclasses.replace(LIMITS, lot_manifest=whole))
    assert LotManifest.from_json(_written(lot)) == lot  # exactly at the limit
    monkeypatch.setattr(lot_format, "LIMITS", dataclasses.replace(LIMITS, lot_manifest=whole - 1))
    with pytest.raises(FormatError, match="limit"):
        _written(lot)


def test_empty_lot(builders: SimpleNamespace) -> None:
    empty = builders.lot(0)
    assert LotManifest.from_json(empty.to_json()) == empty
    assert empty.to_json() == b'{"lot": "LOT-1", "family": "0102030405060708", "chips": []}\n'


def test_uppercase_hex_is_the_same_chip(lot: LotManifest) -> None:
    doc = doc_of(lot)
    doc["chips"][0]["uid"] = doc["chips"][0]["uid"].upper()
    doc["family"] = doc["family"].upper()
    assert parse(doc) == lot


def test_duplicate_uid(lot: LotManifest) -> None:
    doc = doc_of(lot)
    doc["chips"][2]["uid"] = doc["chips"][0]["uid"]
    with pytest.raises(FormatError, match="listed twice"):
        parse(doc)


def test_duplicate_uid_in_other_case(lot: LotManifest) -> None:
    doc = doc_of(lot)
    doc["chips"][1]["uid"] = doc["chips"][0]["uid"].upper()
    with pytest.raises(FormatError, match="listed twice"):
        parse(doc)


@pytest.mark.parametrize(
    "uid",
    [
        "zz" * 16,
        "0" * 31,
        "00" * 15,
        "00" * 17,
        "",
        1234,
        None,
        ["00"] * 16,
        "é" * 32,
        " ".join(["00"] * 16),  # bytes.fromhex takes spaces; a UID in a lot does not
    ],
)
def test_bad_uid(lot: LotManifest, uid: Any) -> None:
    doc = doc_of(lot)
    doc["chips"][0]["uid"] = uid
    with pytest.raises(FormatError, match="uid"):
        parse(doc)


@pytest.mark.parametrize("family", ["xx" * 8, "00" * 7, "00" * 9, "0" * 15, 7, None, ""])
def test_bad_family(lot: LotManifest, family: Any) -> None:
    doc = doc_of(lot)
    doc["family"] = family
    with pytest.raises(FormatError, match="family"):
        parse(doc)


def _truncated(pem: str) -> str:
    lines = pem.splitlines()
    return "\n".join(lines[:3] + lines[-1:])


def _not_base64(pem: str) -> str:
    lines = pem.splitlines()
    return pem.replace(lines[2], "!" * len(lines[2]))


BAD_PEMS: dict[str, Any] = {
    "text": lambda _: "not a certificate",
    "empty": lambda _: "",
    "public-key-armor": lambda pem: pem.replace("CERTIFICATE", "PUBLIC KEY"),
    "truncated": _truncated,
    "not-base64": _not_base64,
    "not-der": lambda _: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "not-ascii": lambda pem: pem.replace("M", "\u00e9", 1),
    "over-the-limit": lambda pem: pem + " " * 5000,
    "number": lambda _: 12,
    "null": lambda _: None,
    "list": lambda pem: [pem],
}


@pytest.mark.parametrize("how", BAD_PEMS)
def test_bad_pem(lot: LotManifest, how: str) -> None:
    doc = doc_of(lot)
    doc["chips"][1]["certificate"] = BAD_PEMS[how](doc["chips"][1]["certificate"])
    with pytest.raises(FormatError, match="certificate"):
        parse(doc)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b"null",
        b'"lot"',
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"lot": "L", "family": "0001020304050607", "chips": [], "x": 1}',
        b'{"lot": "L", "family": "0001020304050607"}',
        b'{"lot": 1, "family": "0001020304050607", "chips": []}',
        b'{"lot": "L", "family": "0001020304050607", "chips": {}}',
        b'{"lot": "L", "family": "0001020304050607", "chips": [1]}',
        b'{"lot": "L", "family": "0001020304050607", "chips": [{"uid": "00"}]}',
    ],
)
def test_malformed_documents(data: bytes) -> None:
    with pytest.raises(FormatError):
        LotManifest.from_json(data)


def test_extra_chip_field(lot: LotManifest) -> None:
    doc = doc_of(lot)
    doc["chips"][0]["note"] = "x"
    with pytest.raises(FormatError, match="exactly uid and certificate"):
        parse(doc)


@pytest.mark.parametrize("name", ["LOT-1", "a", "A" * 64, "lot_2024.01-a", "9"])
def test_good_lot_names(lot: LotManifest, name: str) -> None:
    doc = doc_of(lot)
    doc["lot"] = name
    assert parse(doc).lot == name


@pytest.mark.parametrize(
    "name",
    ["", "-lot", ".lot", "_lot", "A" * 65, "lot 1", "lot/1", "../x", "lot\t1", "lót", "lot:1"],
)
def test_bad_lot_names(lot: LotManifest, name: str) -> None:
    doc = doc_of(lot)
    doc["lot"] = name
    with pytest.raises(FormatError, match="lot name"):
        parse(doc)


@pytest.mark.parametrize("name", ["LOT-1\n"])
def test_lot_name_with_a_trailing_newline_is_refused(lot: LotManifest, name: str) -> None:
    """The pattern ends in ``$``, which also matches before a final newline: use fullmatch."""
    with pytest.raises(FormatError, match="lot name"):
        LotChip.check_lot_name(name)
    doc = doc_of(lot)
    doc["lot"] = name
    with pytest.raises(FormatError, match="lot name"):
        parse(doc)


def test_certificate_pem_round_trip(lot: LotManifest) -> None:
    chip = lot.chips[0]
    cert = x509.load_pem_x509_certificate(chip.certificate_pem().encode())
    assert cert.public_bytes(Encoding.DER) == chip.certificate


def test_a_certificate_name_with_a_bitstring_attribute_is_a_format_error() -> None:
    """Found by make fuzz: a mutated subject made cryptography raise TypeError from
    ``cert.subject``; it must be refused as a malformed lot manifest like any other damage."""
    data = (Path(__file__).parent / "data" / "lot-subject-bitstring.json").read_bytes()
    with pytest.raises(FormatError):
        LotManifest.from_json(data)
