"""docs/protocol.md is the spec a chip and a host are built from alone: it names no source file,
and the numbers it states are the implementation's, read from its own tables so that neither
can drift (issue: the port kit).

The limits tables of section 1 and 1.1 are parsed and compared, row by row, with the values the
code enforces; the error codes of section 8.2 with the link-message vectors of section 8.5.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cbor2
import pytest

from trustprov.firmware import commands
from trustprov.formats import authz, budget, bundle, deflate, frame, lotsig, receipt, software
from trustprov.formats.limits import LIMITS, Shape
from trustprov.link import messages, port
from trustprov.link.budget import FLOOD_SLACK

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
LINK_VECTORS = json.loads((ROOT / "tests" / "vectors" / "link_messages.json").read_text("ascii"))

# a source file or a module of trustprov, however it is spelled: a path ending .py, src/, a
# dotted module path, or a package directory followed by a file or function name
_PACKAGES = "crypto|formats|chip|firmware|link|roles|line|cli|board|conformance|dashboard"
SOURCE_NAMES = [
    re.compile(r"\.py\b"),
    re.compile(r"\bsrc/"),
    re.compile(rf"\btrustprov\.({_PACKAGES}|errors|demo)\b"),
    re.compile(rf"(?<![\w/-])({_PACKAGES})/\w+\.\w"),
    re.compile(r"\b[A-Z][a-z]+[A-Z]\w*\.[a-z_]+\("),  # Class.method(
]


def test_protocol_names_no_source_file() -> None:
    found = [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(PROTOCOL.splitlines(), 1)
        if any(p.search(line) for p in SOURCE_NAMES)
    ]
    assert not found, "protocol.md must state, not point at source:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "the limits of `src/trustprov/formats/limits.py`",
        "(`formats/budget.py`)",
        "see trustprov.roles.icm for the layout",
        "`roles/lots.read_lot`",
        "checked by tests/vectors/test_vectors.py",
    ],
)
def test_the_source_name_check_catches_a_pointer(line: str) -> None:
    assert any(p.search(line) for p in SOURCE_NAMES)


# -- the limits tables -------------------------------------------------------------------------
def _table(header: str) -> list[list[str]]:
    """The rows under ``header`` (a markdown table header line), cells stripped."""
    lines = PROTOCOL.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


MINUS = "\N{MINUS SIGN}"
_UNITS = {" GiB": "*1073741824", " MiB": "*1048576", " KiB": "*1024", " Mi": "*1048576"}


def number(text: str) -> int:
    """A number as the doc writes it: `65,536 (64 KiB)`, `4 MiB + 64 KiB`, `2^32 - 1` (with a
    minus sign)."""
    expr = text.split(" (", maxsplit=1)[0].replace(",", "").replace(MINUS, "-")
    expr = expr.replace("^", "**")
    for unit, factor in _UNITS.items():
        expr = expr.replace(unit, factor)
    if not re.fullmatch(r"[0-9*+\- ]+", expr):
        raise ValueError(f"not a number: {text!r}")
    return int(eval(expr))  # noqa: S307 - digits and + - * only, checked just above


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("65,536 (64 KiB)", 65536),
        ("4 MiB + 64 KiB", 4 * 2**20 + 2**16),
        (f"2^32 {MINUS} 1", 2**32 - 1),
    ],
)
def test_number_reads_the_doc_s_notation(text: str, value: int) -> None:
    assert number(text) == value


SHAPES: dict[str, tuple[int | None, Shape]] = {
    "link request or response": (LIMITS.link_message, LIMITS.link_message_shape),
    "signed software (COSE_Sign1, or COSE_Sign of a hybrid)": (
        LIMITS.software,
        LIMITS.software_shape,
    ),
    "sealed value (COSE_Encrypt0)": (LIMITS.sealed_value, LIMITS.sealed_value_shape),
    "COSE protected header (inside the bstr)": (None, LIMITS.protected_header_shape),
    "manifest (COSE_Mac0, and its payload)": (LIMITS.manifest, LIMITS.manifest_shape),
    "immutable memory image (8.6)": (LIMITS.immutable, LIMITS.immutable_shape),
    "chip's installed state (9)": (LIMITS.installed_state, LIMITS.installed_state_shape),
    "receipt (COSE_Sign1, and its claims) (6.8)": (receipt.MAX_RECEIPT, receipt.RECEIPT_SHAPE),
    "AUTH file (15.2)": (LIMITS.authorized, authz._AUTH_SHAPE),
    "lot manifest signature (15.1)": (lotsig._LIMIT, lotsig._SHAPE),
    "any other CBOR (e.g. ICM family secrets)": (None, LIMITS.cbor_default_shape),
}


def test_the_structure_limits_are_the_decoders() -> None:
    rows = {r[0]: r[1:] for r in _table("| input | bytes | items N | depth D |")}
    special = {"bundle file", "lot manifest (JSON)", "asset list (TOML)"}
    assert set(rows) == set(SHAPES) | special, "a row of the table has no limit, or one no row"
    for name, (size, shape) in SHAPES.items():
        text_bytes, items, depth = rows[name]
        if size is not None:
            assert number(text_bytes) == size, name
        assert (number(items), number(depth)) == (shape.items, shape.depth), name
    text_bytes, items, depth = rows["bundle file"]
    assert number(text_bytes) == LIMITS.bundle
    assert items == (
        f"min({_mi(LIMITS.bundle_shape.items - 1024)} + 1,024, "
        f"⌊bytes / {bundle.MIN_CHUNK}⌋ + 1,024)"
    )
    assert number(depth) == LIMITS.bundle_shape.depth
    text_bytes, items, depth = rows["lot manifest (JSON)"]
    assert number(text_bytes) == LIMITS.lot_manifest
    assert items == f"{LIMITS.lot_manifest_items_per_kib} per started KiB"
    assert number(depth) == LIMITS.text_depth
    text_bytes, items, depth = rows["asset list (TOML)"]
    assert (number(text_bytes), number(items)) == (LIMITS.asset_list, LIMITS.asset_list_items)
    assert number(depth) == LIMITS.text_depth


def _mi(n: int) -> str:
    assert n % 2**20 == 0
    return f"{n // 2**20} Mi"


SIZES: dict[str, int] = {
    "plaintext bytes per chunk (`chunk-size`), at most": LIMITS.chunk,
    "plaintext bytes per chunk, at least": bundle.MIN_CHUNK,
    "bytes of a name (UTF-8)": LIMITS.name,
    "assets and device keys in one bundle": LIMITS.assets_per_bundle,
    "bytes of a key asset's value": bundle.MAX_KEY_LEN,
    "key slot number, at most": bundle.MAX_SLOT,
    "plaintext bytes of one asset, at most": bundle.MAX_ASSET_LEN,
    "epoch, min-svn, tp-svn, security counter, at most": software.MAX_SVN,
    "bytes of a link request or response message": LIMITS.link_message,
    "bytes of a frame payload (max frame), at most": LIMITS.link_frame,
    "max frame a chip may announce, at least": frame.MIN_FRAME,
    "fragments of one link message (K, 12.3), at most": frame.MAX_FRAGMENTS,
    "fragments of a link message of the largest size in frames of the largest size": (
        frame.fragment_bound(LIMITS.link_message, LIMITS.link_frame)
    ),
    "frames a host takes from a chip beyond what its requests call for (12.4)": FLOOD_SLACK,
    "bytes of an op name": messages.MAX_OP,
    "characters of an error message": messages.MAX_MESSAGE_TEXT,
    "bytes of a chip certificate (DER)": LIMITS.certificate,
    "bytes of the immutable image": LIMITS.immutable,
    "UIDs in an authorized set": LIMITS.authorized_uids,
    "hashes in an inclusion proof's path": authz.MAX_PATH,
    "key slots a chip holds": LIMITS.installed_slots,
    "flash regions a chip holds": LIMITS.installed_regions,
    "bytes of a chip's stored installed state": LIMITS.installed_state,
    "bytes of one flash region (one data asset), at most": LIMITS.region,
    "bytes of a receipts file (`oem reconcile`), at most": LIMITS.receipts_file,
    "chip RAM (section 8.4)": budget.CHIP_RAM,
    "RAM of a session's keys, seed and counters": budget.SESSION_RAM,
    "RAM of one sealed manifest entry": budget.ENTRY_RAM,
    "RAM beside a chunk's two copies while installing": budget.CHUNK_OVERHEAD,
    "RAM beside a chunk's two copies while sealing": budget.SEAL_OVERHEAD,
    "RAM of the inflater, when any asset is deflated (6.1, 8.4)": deflate.DEFLATE_RAM,
    "bytes a deflated chunk's stream may exceed its chunk (6.2)": deflate.DEFLATE_SLACK,
    "chunk size of a manifest with a deflated asset, at most": deflate.MAX_DEFLATE_CHUNK,
    "deflate window exponent W, at least": deflate.MIN_WBITS,
    "deflate window exponent W, at most": deflate.MAX_WBITS,
}


def test_the_sizes_and_counts_are_the_implementation_s() -> None:
    rows = {r[0]: r[1] for r in _table("| limit | value |")}
    assert set(rows) == set(SIZES), "a row of section 1.1 has no limit, or a limit no row"
    for name, value in SIZES.items():
        assert number(rows[name]) == value, name


def test_the_ram_budget_section_states_the_same_numbers() -> None:
    """Section 8.4's formulas, in the words the chip reserves them."""
    assert f"| {budget.SESSION_RAM} + m |" in PROTOCOL
    assert f"| 2c + {budget.CHUNK_OVERHEAD} |" in PROTOCOL
    assert f"| 2p + {budget.SEAL_OVERHEAD} |" in PROTOCOL
    assert f"| {budget.ENTRY_RAM} |" in PROTOCOL
    assert budget.provisioning_ram(1000, 300) == budget.SESSION_RAM + 1000 + 600 + 32
    assert f"| {deflate.DEFLATE_RAM:,} more |" in PROTOCOL  # a manifest with a deflated asset
    assert budget.provisioning_ram(1000, 300, deflate=True) == (
        budget.provisioning_ram(1000, 300) + deflate.INFLATE_STATE + 2 * deflate.DEFLATE_SLACK
    )


# -- ops and error codes -----------------------------------------------------------------------
def test_the_ops_of_section_8_1_are_the_chip_s() -> None:
    ops = {r[0].strip("`") for r in _table("| op | args | `ok` answer |")}
    served = set(port._ROM) | set(commands._COMMANDS)  # the chip's dispatch tables
    assert ops == served


def _answers() -> list[dict[str, Any]]:
    return [cbor2.loads(bytes.fromhex(s["answer"])) for s in LINK_VECTORS["steps"]]


def test_every_error_code_is_specified_and_has_a_vector() -> None:
    specified = {r[0].strip("`") for r in _table("| code | answered when |")}
    answered = {a["error"] for a in _answers() if "error" in a}
    no_vector = {"capacity", "internal"}  # section 8.2: unreachable by a valid request
    assert answered <= specified, "a chip answers a code section 8.2 does not specify"
    assert specified - no_vector <= answered, "a code of section 8.2 has no link vector"
    listed = re.search(r"exactly when, are those of section 8\.2: (.*?)\.\n", PROTOCOL, re.S)
    assert listed is not None
    assert set(re.findall(r"`([a-z-]+)`", listed.group(1))) == specified
