"""`trustprov demo`: the whole flow, and artifacts each party's command can pick up again."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from .helpers import assert_error, assert_no_crash, describe, ok, run, snapshot

CHIPS = 5
LAYOUT = (
    "icm/prov-signing.pub.pem",
    "icm/device-ca.pem",
    "icm/provisioning-software.cose",
    "oem/enc-oem-share.cose",
    "oem/bundle.cbor",
    "cm/chips.farm",
    "cm/lot.json",
    "cm/records.sqlite",
    "cm/report.json",
    "assets/assets.toml",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    out = tmp_path_factory.mktemp("demo") / "run"
    return out, run("demo", "--chips", str(CHIPS), "--out", out, "--json")


def test_demo_json(demo: tuple[Path, Result]) -> None:
    out, result = demo
    assert result.exit_code == 0, describe(result)
    assert result.exception is None
    assert result.stderr == ""
    s = json.loads(result.stdout)
    assert (s["chips"], s["provisioned"], s["failed"]) == (CHIPS, CHIPS, 0)
    for rel in LAYOUT:
        assert (out / rel).is_file(), rel
    assert (out / "oem").is_dir()
    report = json.loads((out / "cm" / "report.json").read_text())
    assert (report["chips"], report["provisioned"], report["failed"]) == (CHIPS, CHIPS, 0)
    lot = json.loads((out / "cm" / "lot.json").read_text())
    assert len(lot["chips"]) == CHIPS
    with sqlite3.connect(out / "cm" / "records.sqlite") as c:
        rows = list(c.execute("SELECT uid, result FROM records"))
    assert sorted(u for u, _ in rows) == sorted(ch["uid"] for ch in lot["chips"])
    assert {r for _, r in rows} == {"provisioned"}


def test_demo_artifacts_drive_the_cli(demo: tuple[Path, Result]) -> None:
    out, _ = demo
    software = out / "icm" / "provisioning-software.cose"
    ok("oem", "verify-software", software, "--key", out / "icm" / "prov-signing.pub.pem")
    uid = json.loads((out / "cm" / "lot.json").read_text())["chips"][0]["uid"]
    view = json.loads(
        ok("chip", "show", "--farm", out / "cm" / "chips.farm", "--chip", uid, "--json").stdout
    )
    assert view["lifecycle"] == "PROVISIONED"
    assert view["installed"]["key_slots"]


def test_demo_text(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = ok("demo", "--chips", "2", "--out", out)
    assert str(out) in result.stdout
    assert "2 provisioned" in result.stdout
    assert (out / "cm" / "report.json").is_file()


def test_demo_into_an_empty_directory(tmp_path: Path) -> None:
    ok("demo", "--chips", "1", "--out", tmp_path, "--json")
    assert (tmp_path / "cm" / "report.json").is_file()


@pytest.mark.parametrize("existing", ["non-empty-dir", "file"])
def test_demo_never_overwrites(tmp_path: Path, existing: str) -> None:
    out = tmp_path / "run"
    if existing == "file":
        out.write_text("keep me")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    assert_error(run("demo", "--chips", "2", "--out", out, "--json"), exit_code=2)
    assert snapshot(tmp_path) == before


def test_demo_zero_chips_is_a_usage_error(tmp_path: Path) -> None:
    result = run("demo", "--chips", "0", "--out", tmp_path / "run")
    assert_no_crash(result)
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()


def test_demo_never_writes_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    assert_error(run("demo", "--chips", "1", "--out", tmp_path / "link"), exit_code=2, match="link")
    assert list(target.iterdir()) == []


def test_demo_never_creates_missing_parents(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "run"
    assert_error(run("demo", "--chips", "1", "--out", out), exit_code=2, match="does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_demo_leaves_nothing_behind(tmp_path: Path, existing: bool) -> None:
    """Bad --icm-keys fails after the sample assets are written: they go too."""
    out = tmp_path / "run"
    if existing:
        out.mkdir()
    assert_error(run("demo", "--chips", "1", "--out", out, "--icm-keys", "garbage"), exit_code=2)
    assert snapshot(out) == {}  # gone, or (given empty) empty again
    assert out.exists() == existing


# -- a demo never deletes what it did not make (issue 24, item 1: make demo) -------------------
MARKER = ".trustprov-demo.json"


def test_a_finished_demo_marks_every_file_it_made(demo: tuple[Path, Result]) -> None:
    out, _ = demo
    marker = json.loads((out / MARKER).read_text())
    made = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MARKER}
    assert set(marker["files"]) == made
    assert set(LAYOUT) <= made


def test_replace_replaces_a_previous_demo(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ok("demo", "--chips", "1", "--out", out, "--json")
    first = (out / "icm" / "device-ca.pem").read_bytes()
    ok("demo", "--chips", "1", "--out", out, "--json", "--replace")
    assert (out / "icm" / "device-ca.pem").read_bytes() != first  # a new family
    assert (out / MARKER).is_file()


def _refused_whole(out: Path, match: str) -> None:
    before = snapshot(out)
    result = run("demo", "--chips", "1", "--out", out, "--replace")
    assert_error(result, exit_code=2, match=match)
    assert snapshot(out) == before


def test_replace_never_deletes_a_reader_s_file(tmp_path: Path) -> None:
    """The old README had its reader work inside demo-out/: a rerun deleted that work."""
    out = tmp_path / "run"
    ok("demo", "--chips", "1", "--out", out, "--json")
    (out / "lot-0002.json").write_text("my own lot")
    (out / "oem-0002").mkdir()
    (out / "oem-0002" / "bundle.cbor").write_bytes(b"mine")
    _refused_whole(out, "lot-0002.json")


def test_replace_never_deletes_a_demo_file_changed_since(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ok("demo", "--chips", "1", "--out", out, "--json")
    (out / "assets" / "assets.toml").write_text("# my own edits\n")
    _refused_whole(out, "assets/assets.toml (changed since the demo)")


@pytest.mark.parametrize("how", ["no-marker", "garbage-marker", "symlink"])
def test_replace_refuses_what_no_demo_made(tmp_path: Path, how: str) -> None:
    out = tmp_path / "run"
    if how == "symlink":  # a demo's directory, but a link in it leads out
        ok("demo", "--chips", "1", "--out", out, "--json")
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "keep").write_text("keep me")
        (out / "link").symlink_to(tmp_path / "elsewhere")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        if how == "garbage-marker":
            (out / MARKER).write_text('{"kind": "something else", "files": {"notes.txt": 1}}')
    _refused_whole(out, "not a previous demo's output" if how != "symlink" else "link")
    if how == "symlink":
        assert (tmp_path / "elsewhere" / "keep").read_text() == "keep me"


def _make_demo(demo_dir: Path) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    if shutil.which("make") is None or not (root / ".venv" / "bin" / "trustprov").exists():
        pytest.skip("make demo needs make and the clone's .venv")
    command = ["make", "-s", "-C", str(root), "-o", ".venv/bin/trustprov", "demo"]
    return subprocess.run(
        # -o: the venv is taken as it is, never rebuilt by a test
        [*command, f"DEMO_DIR={demo_dir}", "CHIPS=1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_demo_reruns_and_never_deletes_what_it_did_not_make(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    first = _make_demo(out)
    assert first.returncode == 0, first.stderr
    assert (out / MARKER).is_file()
    again = _make_demo(out)  # a rerun replaces its own output
    assert again.returncode == 0, again.stderr
    (out / "my-notes.txt").write_text("keep me")
    before = snapshot(out)
    refused = _make_demo(out)
    assert refused.returncode != 0
    assert "my-notes.txt" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(out) == before
