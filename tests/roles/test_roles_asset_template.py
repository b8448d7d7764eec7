"""The asset list template: a valid asset list that explains every field and kind."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from template_files import write_example_files

from trustprov.crypto.aead import AEAD_ALIASES
from trustprov.errors import InputError
from trustprov.formats.bundle import KEY_TYPES
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem.assets.template import TEMPLATE


def test_the_template_is_a_valid_asset_list(tmp_path: Path) -> None:
    write_example_files(tmp_path)
    path = tmp_path / "assets.toml"
    path.write_text(TEMPLATE)
    listed = asset_list.load(path)
    kinds = {a.kind for a in listed.assets}
    assert kinds == set(asset_list.KINDS)
    assert listed.epoch == 1
    # the default chunk size: the largest multiple of 1 KiB that fits the chips' RAM
    assert listed.chunk_size % 1024 == 0
    asset_list.check_fits(listed, 1)
    bigger = dataclasses.replace(listed, chunk_size=listed.chunk_size + 1024)
    with pytest.raises(InputError, match="RAM"):
        asset_list.check_fits(bigger, 1)


def test_every_field_and_kind_is_explained() -> None:
    comments = "\n".join(line for line in TEMPLATE.splitlines() if "#" in line)
    for word in (
        *asset_list.KINDS,
        *KEY_TYPES,
        *AEAD_ALIASES,
        "epoch",
        "chunk-size",
        "min-security-version",
        "name",
        "slot",
        "region",
        "hex",
        "file",
        "value",
        "key-type",
        "docs/assets.md",
    ):
        assert word in comments, word
    # the plain statement that a generated key is shared by every chip of the bundle
    assert "SAME key on every chip" in TEMPLATE


def test_the_template_parses_as_toml_with_every_table() -> None:
    doc = tomllib.loads(TEMPLATE)
    assert set(doc) == {"bundle", "asset"}
