"""The README is one a newcomer finishes (issue 24, item 6).

1. It stays short: at most ``MAX_BYTES``; the guides, the command reference and the benchmark
   history live in docs/.
2. Its walk-through runs as written: the ```` ```sh ```` blocks of the section "Walk-through" are
   joined and run by bash (``-euo pipefail``) in a new, empty directory, in an environment with
   nothing of the caller's but the virtual environment's ``bin`` put before the system's
   ``PATH``, exactly as the README tells a reader in a new shell to do.
3. Every relative link of the README and of the guides in docs/ names a file that exists, and
   an anchor (``#...``) names a heading of that file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAX_BYTES = 15_000
WALK_HEADING = "## Walk-through"


def walk_through(text: str) -> str:
    """The shell of the walk-through section: its ```sh blocks, in order."""
    if WALK_HEADING not in text:
        raise AssertionError(f"the README has no section {WALK_HEADING!r}")
    section = text.split(WALK_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    return "".join(blocks)


def test_the_readme_is_short() -> None:
    size = len(README.encode("utf-8"))
    assert size <= MAX_BYTES, f"README.md is {size} bytes; move detail to docs/"


def test_the_walk_through_is_extracted_whole() -> None:
    script = walk_through(README)
    first = script.splitlines()[0]
    commands = [line.split()[1:3] for line in script.splitlines() if line.startswith("trustprov ")]
    assert first.startswith("trustprov icm init ")
    # from the ICM's first step to the OEM's last, every party on the way
    assert commands[0] == ["icm", "init"]
    assert commands[-1] == ["oem", "reconcile"]
    assert {"keygen", "provision", "receipts"} <= {c[1] for c in commands}


def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    if not (venv_bin / "trustprov").exists():
        pytest.skip(f"no trustprov command beside {sys.executable}: run the tests from .venv")
    home = tmp_path / "home"
    work = tmp_path / "walk"
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": f"{venv_bin}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walk_through(README)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"the walk-through failed:\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr
    # it ended where the README says: every authorized chip's receipt valid, none missing
    assert "20 receipts: 20 valid" in run.stdout
    assert "0 missing of 20 authorized" in run.stdout
    assert (work / "device-keys.csv").stat().st_size > 0


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of a markdown file's headings."""
    out = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize(
    "doc",
    ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))],
)
def test_every_relative_link_resolves(doc: str) -> None:
    path = ROOT / doc
    broken = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (
            anchor
            and linked.suffix == ".md"
            and anchor not in _anchors(linked.read_text(encoding="utf-8"))
        ):
            broken.append(target)
    assert not broken, f"{doc}: links to nothing: {broken}"


def test_the_anchor_rule_is_github_s() -> None:
    assert "a-lot-over-the-wire" in _anchors("## A lot over the wire\n")
    assert "walk-through-from-icm-init-to-oem-reconcile" in _anchors(
        "## Walk-through: from `icm init` to `oem reconcile`\n"
    )
