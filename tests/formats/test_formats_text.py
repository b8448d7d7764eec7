"""trustprov.formats.text: JSON and TOML inputs (lot manifests, asset lists) are bounded in
items before they are parsed and in nesting after, so a flood of small values or deep
nesting is refused with a typed error in bounded memory (measured with tracemalloc); and
`printable` shows any text without a character a terminal would act on."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustprov.errors import FormatError, InputError
from trustprov.formats import text
from trustprov.formats.limits import LIMITS, MiB
from trustprov.formats.lot import LotManifest
from trustprov.roles.oem import assets

BOUND = 16 * MiB


def _refused_cheaply(action: object, error: type[Exception], match: str) -> None:
    assert callable(action)
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match):
            action()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BOUND, f"{peak / MiB:.1f} MiB to refuse it"


N = 4 * MiB
LOT_FLOODS = {
    "tiny-ints": b'{"lot": "L", "family": "00", "chips": [' + b"0," * (N // 2) + b"0]}",
    "empty-objects": b'{"lot": "L", "family": "00", "chips": [' + b"{}," * (N // 3) + b"{}]}",
    "many-keys": b"{" + b'"":0,' * (N // 5) + b'"":0}',
}


@pytest.mark.parametrize("name", LOT_FLOODS)
def test_lot_manifest_item_floods_are_refused_before_parsing(name: str) -> None:
    _refused_cheaply(lambda: LotManifest.from_json(LOT_FLOODS[name]), FormatError, "items")


@pytest.mark.parametrize("depth", [9, 100_000])
def test_lot_manifest_deep_nesting_is_refused(depth: int) -> None:
    data = b'{"lot": "L", "family": "00", "chips": ' + b"[" * depth + b"]" * depth + b"}"
    # very deep is also very dense in items: the item bound refuses it before parsing
    _refused_cheaply(lambda: LotManifest.from_json(data), FormatError, "nested|items")


def test_a_genuine_lot_manifest_is_within_the_item_bound(tmp_path: Path) -> None:
    """A chip's entry (uid and PEM certificate) is 5 items in some 800 bytes: well within."""
    entry = b'{"uid": "' + b"0" * 32 + b'", "certificate": "' + b"A" * 700 + b'"},'
    data = b'{"lot": "L", "family": "00", "chips": [' + entry * 5000 + b"]}"
    text.check_items(data, LIMITS.lot_manifest_items_per_kib * (len(data) // 1024 + 1), "lot")


TOML_FLOODS = {
    "ints": "a = [" + "0," * (LIMITS.asset_list // 2 - 8) + "]\n",
    "tables": "[t]\n" + "x.y = 0\n" * (LIMITS.asset_list // 8 - 1),
    "inline": "a = [" + "{}," * (LIMITS.asset_list // 3 - 8) + "]\n",
}


@pytest.mark.parametrize("name", TOML_FLOODS)
def test_asset_list_item_floods_are_refused_before_parsing(name: str, tmp_path: Path) -> None:
    path = tmp_path / "assets.toml"
    path.write_text(TOML_FLOODS[name])
    assert path.stat().st_size <= LIMITS.asset_list
    _refused_cheaply(lambda: assets.load(path), InputError, "items")


@pytest.mark.parametrize("depth", [9, 5000])
def test_asset_list_deep_nesting_is_refused_as_bad_input(depth: int, tmp_path: Path) -> None:
    path = tmp_path / "assets.toml"
    path.write_text("a = " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(InputError, match="nested"):
        assets.load(path)


def test_check_depth_counts_containers() -> None:
    text.check_depth({"a": [[1]]}, 3, "t")
    with pytest.raises(FormatError, match="deeper than 2"):
        text.check_depth({"a": [[1]]}, 2, "t")
    text.check_depth(5, 0, "t")


# -- printable: the one way text from outside is shown ------------------------------------------
@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, é, 漢字", "plain text, é, 漢字"),
        ("\x1b[2J\x1b[HOK", "\\x1b[2J\\x1b[HOK"),
        ("a\rb\nc\td\x07\x00", "a\\x0db\\x0ac\\x09d\\x07\\x00"),
        ("\x7f\x9b\x85", "\\x7f\\x9b\\x85"),  # DEL and C1 controls (CSI, NEL)
        ("abc\u202edef\u2066\u200b", "abc\\u202edef\\u2066\\u200b"),  # bidi, zero width
        ("\u2028\u00a0\udcff", "\\u2028\\xa0\\udcff"),  # separators, a lone surrogate
        ("\U000e0041", "\\U000e0041"),  # a tag character
    ],
)
def test_printable_escapes_what_drives_or_disguises_text(raw: str, shown: str) -> None:
    assert text.printable(raw) == shown


@given(st.text())
def test_printable_leaves_nothing_a_terminal_acts_on(value: str) -> None:
    out = text.printable(value)
    assert out.isprintable()
    assert text.printable(out) == out  # escaping twice changes nothing
    # printable text is kept as it is, and only the escapes are added
    if value.isprintable():
        assert out == value
    out.encode("utf-8")  # raises on a lone surrogate: none is left to fail the terminal's encoder
