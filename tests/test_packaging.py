"""Installing trustprov prints no packaging warning (issue 24, item 6).

setuptools deprecated the ``project.license`` table: with it, every ``pip install -e .`` (and so
the first ``make demo``) printed a page of warnings. The license is an SPDX expression with its
file named, which needs setuptools 77 or later in the build requirements.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    for name in project["license-files"]:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "Apache License" in text
        assert "Version 2.0" in text


def test_the_build_needs_a_setuptools_that_reads_it() -> None:
    (requirement,) = [
        r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")
    ]
    match = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", requirement)
    assert match is not None, requirement
    assert int(match.group(1)) >= 77
