"""`trustprov oem template`: the printed asset list is what `oem keygen` accepts."""

from __future__ import annotations

from pathlib import Path

from template_files import write_example_files

from .conftest import CliWorld
from .helpers import assert_error, copy_farm, ok, run


def test_keygen_accepts_the_template(cw: CliWorld, tmp_path: Path) -> None:
    printed = ok("oem", "template").stdout
    assets = tmp_path / "assets.toml"
    ok("oem", "template", "--out", assets)
    assert assets.read_text() == printed
    write_example_files(tmp_path)
    out = tmp_path / "oem"
    result = ok(
        "oem",
        "keygen",
        "--farm",
        copy_farm(cw.a.oem_farm, tmp_path / "farm"),
        "--chip",
        cw.a.oem_uid,
        "--software",
        cw.a.software,
        "--assets",
        assets,
        "--out",
        out,
    )
    assert "6 assets" in result.stdout
    assert (out / "generated" / "fleet-signing-key.pub.pem").is_file()


def test_template_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "assets.toml"
    target.write_text("mine")
    assert_error(run("oem", "template", "--out", target), exit_code=2, match="exists")
    assert target.read_text() == "mine"
