"""`trustprov chip show`: lifecycle, identity, what a chip holds, with every secret redacted."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from trustprov.formats.bundle import Bundle
from trustprov.formats.installed import expected_installed_digest
from trustprov.link.farm_link import FarmLink

from .conftest import CliWorld
from .helpers import KEY1, KEY2, assert_error, copy_farm, firmware_bytes, ok, run, secret_forms


def _lot_certificates(lot_json: Path) -> dict[str, str]:
    return {c["uid"]: c["certificate"] for c in json.loads(lot_json.read_text())["chips"]}


def _assert_no_secret(text: str, secrets: list[bytes]) -> None:
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in text, "a secret value is in the output"


def test_show_a_manufactured_chip(cw: CliWorld) -> None:
    uid = cw.a.cm_uids[0]
    result = ok("chip", "show", "--farm", cw.a.cm_farm, "--chip", uid, "--json")
    assert result.stderr == ""
    view = json.loads(result.stdout)
    assert view["uid"] == uid
    assert view["lifecycle"] == "MANUFACTURED"
    assert view["certificate"] == _lot_certificates(cw.a.lot_json)[uid]
    assert view["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert not view.get("installed")


def test_show_accepts_an_upper_case_uid(cw: CliWorld) -> None:
    uid = cw.a.cm_uids[0]
    view = json.loads(
        ok("chip", "show", "--farm", cw.a.cm_farm, "--chip", uid.upper(), "--json").stdout
    )
    assert view["uid"] == uid


def test_show_a_blank_chip(cw: CliWorld, tmp_path: Path) -> None:
    """A chip from the fab, before the ICM burns it: no family, no identity, no crash."""
    farm = copy_farm(cw.a.cm_farm, tmp_path)
    uid = bytes(range(16))
    with FarmLink(farm) as f:
        f.add_blank(uid, cw.a.cm_lot)
    view = json.loads(ok("chip", "show", "--farm", farm, "--chip", uid.hex(), "--json").stdout)
    assert view["uid"] == uid.hex()
    assert view["lifecycle"] == "BLANK"
    assert not view["certificate"]
    assert "BLANK" in ok("chip", "show", "--farm", farm, "--chip", uid.hex()).stdout


def _walk(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _walk(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _walk(v)]
    return [doc]


def test_show_a_provisioned_chip_redacts_secrets(cw: CliWorld) -> None:
    secrets = [KEY1, KEY2, *cw.a.secrets()]
    for uid in cw.a.cm_uids:
        result = ok("chip", "show", "--farm", cw.provisioned_farm, "--chip", uid, "--json")
        view = json.loads(result.stdout)
        assert view["uid"] == uid
        assert view["lifecycle"] == "PROVISIONED"
        assert view["certificate"] == _lot_certificates(cw.a.lot_json)[uid]
        slots = view["installed"]["key_slots"]
        assert {s["asset"] for s in slots.values()} == {"aes-1", "aes-2", "signer"}
        _assert_no_secret(result.output, secrets)
        assert firmware_bytes()[:16].hex() not in result.output
        assert b"mode=production".hex() not in result.output
        domain_id = bytes.fromhex(view["installed"]["domain_id"])
        bundle = Bundle.from_bytes(cw.a.bundle.read_bytes())
        assert view["installed"]["digest"] == expected_installed_digest(bundle, domain_id).hex()
        # each region's content digest, as `sha256sum` of the OEM's file gives it, and the
        # generated key's public half, as keygen wrote it
        regions = view["installed"]["flash_regions"]
        digests = {
            "app": hashlib.sha256(firmware_bytes()).hexdigest(),
            "config": hashlib.sha256(b"mode=production").hexdigest(),
        }
        assert {n: r["sha256"] for n, r in regions.items()} == digests
        signer = next(s for s in slots.values() if s["asset"] == "signer")
        assert signer["public_key"] == (cw.a.oem_dir / "generated/signer.pub.pem").read_text()
        assert {s["public_key"] for s in slots.values() if s["asset"] != "signer"} == {None}
        # no long hex string but the public identifiers and the region digests
        public = {
            uid,
            view["family"],
            view["installed"]["bundle_id"],
            view["installed"]["domain_id"],
            view["installed"]["digest"],
            *digests.values(),
        }
        for value in _walk(view):
            if (
                isinstance(value, str)
                and len(value) >= 32
                and all(c in "0123456789abcdef" for c in value)
            ):
                assert value in public, value


def test_show_text(cw: CliWorld) -> None:
    uid = cw.a.cm_uids[1]
    result = ok("chip", "show", "--farm", cw.provisioned_farm, "--chip", uid)
    assert uid in result.stdout
    assert "PROVISIONED" in result.stdout
    assert _lot_certificates(cw.a.lot_json)[uid].strip() in result.stdout
    _assert_no_secret(result.output, [KEY1, KEY2, *cw.a.secrets()])


def test_show_redacts_the_conftest_world_keys(world: Any, tmp_path: Path) -> None:
    """tests/conftest.py's world, provisioned through the CLI: its AES keys never show."""
    doc = tomllib.loads(world.assets_toml.read_text())
    keys = []
    for asset in doc["asset"]:
        if asset.get("kind") == "key" and asset.get("key-type") == "aes-256":
            if "hex" in asset:
                keys.append(bytes.fromhex(asset["hex"]))
            else:
                keys.append((world.assets_toml.parent / asset["file"]).read_bytes())
    assert len(keys) == 2
    farm = world.fresh_cm_farm(tmp_path)
    ok(
        "cm",
        "provision",
        "--farm",
        farm,
        "--lot",
        world.cm_lot,
        "--software",
        world.software,
        "--share",
        world.share,
        "--bundle",
        world.bundle,
        "--json",
    )
    for uid in world.cm_uids(farm):
        for extra in ([], ["--json"]):
            result = ok("chip", "show", "--farm", farm, "--chip", uid.hex(), *extra)
            assert "PROVISIONED" in result.stdout
            _assert_no_secret(result.output, keys)


SHOW_ERRORS = {
    "uid-not-hex": lambda cw, _t: (cw.a.cm_farm, "not-hex-at-all"),
    "uid-odd-length": lambda cw, _t: (cw.a.cm_farm, cw.a.cm_uids[0][:-1]),
    "uid-too-short": lambda cw, _t: (cw.a.cm_farm, cw.a.cm_uids[0][:16]),
    "uid-too-long": lambda cw, _t: (cw.a.cm_farm, cw.a.cm_uids[0] + "00"),
    "uid-empty": lambda cw, _t: (cw.a.cm_farm, ""),
    "uid-with-spaces": lambda cw, _t: (cw.a.cm_farm, " ".join(cw.a.cm_uids[0])),
    "unknown-chip": lambda cw, _t: (cw.a.cm_farm, "00" * 16),
    "chip-of-another-farm": lambda cw, _t: (cw.a.cm_farm, cw.b.cm_uids[0]),
    "missing-farm": lambda cw, t: (t / "none.farm", cw.a.cm_uids[0]),
    "farm-is-a-directory": lambda cw, t: (t, cw.a.cm_uids[0]),
    "farm-is-not-a-farm": lambda cw, _t: (cw.a.lot_json, cw.a.cm_uids[0]),
}


@pytest.mark.parametrize("case", sorted(SHOW_ERRORS))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_show_errors(cw: CliWorld, tmp_path: Path, case: str, as_json: bool) -> None:
    farm, uid = SHOW_ERRORS[case](cw, tmp_path)
    result = run("chip", "show", "--farm", farm, "--chip", uid, *(["--json"] if as_json else []))
    assert_error(result, exit_code=2)
    assert result.stdout == ""
    assert not (tmp_path / "none.farm").exists()  # looking never creates a farm


def test_show_lists_the_chips_of_a_lot(cw: CliWorld) -> None:
    doc = json.loads(
        ok("chip", "show", "--farm", cw.provisioned_farm, "--lot", cw.a.cm_lot, "--json").stdout
    )
    assert doc["lot"] == cw.a.cm_lot
    assert sorted(c["uid"] for c in doc["chips"]) == sorted(cw.a.cm_uids)
    assert {c["lifecycle"] for c in doc["chips"]} == {"PROVISIONED"}
    text = ok("chip", "show", "--farm", cw.provisioned_farm, "--lot", cw.a.cm_lot).stdout
    assert text.startswith(f"lot {cw.a.cm_lot}: {len(cw.a.cm_uids)} chips")
    assert_error(
        run("chip", "show", "--farm", cw.provisioned_farm, "--lot", "NOPE"),
        exit_code=2,
        match="no lot",
    )
    assert_error(
        run("chip", "show", "--farm", cw.provisioned_farm), exit_code=2, match="exactly one"
    )
