"""`trustprov oem authorize`, `oem keygen --auth`, `cm provision --auth`, and what inspect shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from trustprov.formats.authz import AuthorizedSet

from .conftest import CliWorld
from .helpers import assert_error, copy_farm, lifecycles, ok, run, snapshot


def _authorize(cw: CliWorld, out: Path, *lots: Path, key: Path | None = None) -> list[str]:
    argv: list[str] = ["oem", "authorize", "--out", str(out)]
    for lot in lots:
        argv += ["--lot", str(lot)]
    return [*argv, "--icm-key", str(key or cw.a.icm / "lot-signing.pub.pem")]


def test_authorize_keygen_provision_inspect(cw: CliWorld, tmp_path: Path) -> None:
    auth = tmp_path / "auth.cbor"
    out = ok(*_authorize(cw, auth, cw.a.lot_json)).stdout
    assert "authorized 4 chips of 1 lot," in out
    shown = json.loads(ok("inspect", "--json", auth).stdout)
    assert (shown["kind"], shown["chips"]) == ("authorized-set", 4)
    assert sorted(shown["first_uids"]) == sorted(cw.a.cm_uids)
    oem_dir = tmp_path / "oem"
    ok(
        "oem",
        "keygen",
        "--farm",
        copy_farm(cw.a.oem_farm, tmp_path, "oem.farm"),
        "--chip",
        cw.a.oem_uid,
        "--software",
        cw.a.software,
        "--assets",
        cw.assets_toml,
        "--out",
        oem_dir,
        "--auth",
        auth,
    )
    bundle = json.loads(ok("inspect", "--json", oem_dir / "bundle.cbor").stdout)
    assert bundle["authorized"] == {"root": shown["root"], "chips": 4}
    plain = json.loads(ok("inspect", "--json", cw.a.bundle).stdout)
    assert plain["authorized"] == "any chip of the family (no authorized set)"
    job = [
        "cm",
        "provision",
        "--farm",
        cw.fresh_farm(tmp_path),
        "--lot",
        cw.a.cm_lot,
        "--software",
        cw.a.software,
        "--share",
        oem_dir / "enc-oem-share.cose",
        "--bundle",
        oem_dir / "bundle.cbor",
        "--records",
        f"sqlite:///{tmp_path / 'records.sqlite'}",
        "--json",
    ]
    assert_error(run(*job), exit_code=2, match="give --auth")
    other = tmp_path / "other.cbor"
    ok(*_authorize(cw, other, cw.a.lot_json, cw.a.lot_json.with_name("oem-lot.json")))
    assert_error(run(*job, "--auth", other), exit_code=2, match="not the one the bundle names")
    summary = json.loads(ok(*job, "--auth", auth).stdout)
    assert (summary["provisioned"], summary["failed"]) == (4, 0)
    sig = json.loads(ok("inspect", "--json", f"{cw.a.lot_json}.cose").stdout)
    assert (sig["kind"], sig["lot"], sig["chips"]) == ("lot-signature", cw.a.cm_lot, 4)


def test_authorize_refuses_what_the_icm_did_not_sign(cw: CliWorld, tmp_path: Path) -> None:
    auth = tmp_path / "auth.cbor"
    b_key = cw.b.icm / "lot-signing.pub.pem"
    assert_error(run(*_authorize(cw, auth, cw.a.lot_json, key=b_key)), exit_code=1)
    unsigned = tmp_path / "lot.json"
    shutil.copyfile(cw.a.lot_json, unsigned)
    assert_error(run(*_authorize(cw, auth, unsigned)), exit_code=2, match="unsigned")
    changed = tmp_path / "changed.json"
    changed.write_bytes(cw.a.lot_json.read_bytes().replace(b'"LOT-A"', b'"LOT-Z"'))
    shutil.copyfile(f"{cw.a.lot_json}.cose", f"{changed}.cose")
    assert_error(run(*_authorize(cw, auth, changed)), exit_code=1, match="not the one")
    mixed = _authorize(cw, auth, cw.a.lot_json, cw.b.lot_json)
    assert_error(run(*mixed), exit_code=1)  # family B's lot is not signed by A's ICM
    # without --icm-key (the command as the issue writes it): whole lots of one signer, warned
    unnamed = [a for a in mixed if a not in ("--icm-key", str(cw.a.icm / "lot-signing.pub.pem"))]
    assert_error(run(*unnamed), exit_code=2, match="signed by different keys")
    changed_alone = ["oem", "authorize", "--lot", str(changed), "--out", str(auth)]
    assert_error(run(*changed_alone), exit_code=1, match="not the one")  # whole, or refused
    assert not auth.exists()
    alone = ok("oem", "authorize", "--lot", cw.a.lot_json, "--out", auth)
    assert "warning: no --icm-key" in alone.stderr
    assert "authorized 4 chips" in alone.stdout


def test_inspect_checks_a_lot_manifests_signature(cw: CliWorld, tmp_path: Path) -> None:
    shown = json.loads(ok("inspect", "--json", cw.a.lot_json).stdout)
    assert shown["signature"].startswith("verified whole")
    lot = tmp_path / "lot.json"
    shutil.copyfile(cw.a.lot_json, lot)
    assert "missing" in json.loads(ok("inspect", "--json", lot).stdout)["signature"]
    shutil.copyfile(f"{cw.b.lot_json}.cose", f"{lot}.cose")  # another lot's signature
    assert_error(run("inspect", lot), exit_code=1, match="not the one its signature covers")


def test_cm_provision_checks_the_lot_under_icm_key(cw: CliWorld, tmp_path: Path) -> None:
    """Over the wire, --icm-key makes the CM check who signed the lot, before any board."""
    job = [
        "cm",
        "provision",
        "--manifest",
        cw.a.lot_json,
        "--lot",
        cw.a.cm_lot,
        "--board",
        "tcp://127.0.0.1:9",
        "--software",
        cw.a.software,
        "--share",
        cw.a.share,
        "--bundle",
        cw.a.bundle,
        "--records",
        f"sqlite:///{tmp_path / 'records.sqlite'}",
    ]
    wrong = run(*job, "--icm-key", cw.b.icm / "lot-signing.pub.pem")
    assert_error(wrong, exit_code=1, match="another key")
    right = run(*job, "--icm-key", cw.a.icm / "lot-signing.pub.pem")
    assert_error(right, exit_code=1, match="does not answer")  # checked, then on to the board


def _keygen_argv(cw: CliWorld, tmp_path: Path, out: Path) -> list[str | Path]:
    farm = copy_farm(cw.a.oem_farm, tmp_path, "oem.farm")
    return ["oem", "keygen", "--farm", farm, "--chip", cw.a.oem_uid, "--software", cw.a.software,
            "--assets", cw.assets_toml, "--out", out]  # fmt: skip


def test_keygen_and_regen_refuse_another_familys_authorized_set(
    cw: CliWorld, tmp_path: Path
) -> None:
    """issue 24: keygen sealed a bundle for family A chips with family B's set: no chip could
    install it."""
    auth_b = tmp_path / "auth-b.cbor"
    ok(*_authorize(cw, auth_b, cw.b.lot_json, key=cw.b.icm / "lot-signing.pub.pem"))
    argv = _keygen_argv(cw, tmp_path, tmp_path / "oem")
    farm = argv[3]
    assert isinstance(farm, Path)
    before = snapshot(farm)
    assert_error(run(*argv, "--auth", auth_b), exit_code=2, match="not of this bundle's family")
    assert not (tmp_path / "oem").exists()
    regen = ["oem", "regen", "--farm", farm, "--chip", cw.a.oem_uid, "--software", cw.a.software,
             "--state", cw.a.oem_dir, "--assets", cw.root / "assets-epoch2" / "assets.toml",
             "--out", tmp_path / "oem2", "--auth", auth_b]  # fmt: skip
    assert_error(run(*regen), exit_code=2, match="not of this bundle's family")
    assert not (tmp_path / "oem2").exists()
    assert snapshot(farm) == before


def _provision(cw: CliWorld, tmp_path: Path, oem_dir: Path, *extra: str | Path) -> list[str | Path]:
    return ["cm", "provision", "--farm", cw.fresh_farm(tmp_path), "--lot", cw.a.cm_lot,
            "--software", cw.a.software, "--share", oem_dir / "enc-oem-share.cose",
            "--bundle", oem_dir / "bundle.cbor",
            "--records", f"sqlite:///{tmp_path / 'records.sqlite'}", *extra]  # fmt: skip


def test_provision_refuses_auth_for_a_bundle_without_a_set(cw: CliWorld, tmp_path: Path) -> None:
    """issue 24: --auth was silently ignored for a bundle made without one."""
    auth = tmp_path / "auth.cbor"
    ok(*_authorize(cw, auth, cw.a.lot_json))
    argv = _provision(cw, tmp_path, cw.a.oem_dir, "--auth", auth)
    assert_error(run(*argv), exit_code=2, match="the bundle names no authorized set")
    assert lifecycles(tmp_path / "cm.farm", cw.a.cm_lot) == dict.fromkeys(
        cw.a.cm_uids, "MANUFACTURED"
    )
    assert not (tmp_path / "records.sqlite").exists()


def test_provision_refuses_a_lot_with_chips_outside_the_set_naming_them(
    cw: CliWorld, tmp_path: Path
) -> None:
    """issue 24: nothing checked on the host that the lot's chips are in the set."""
    auth = tmp_path / "auth.cbor"
    inside, outside = cw.a.cm_uids[:1], cw.a.cm_uids[1:]
    auth.write_bytes(AuthorizedSet.from_uids(bytes.fromhex(u) for u in inside).to_bytes())
    oem_dir = tmp_path / "oem"
    ok(*_keygen_argv(cw, tmp_path, oem_dir), "--auth", auth)
    result = run(*_provision(cw, tmp_path, oem_dir, "--auth", auth))
    assert_error(result, exit_code=2, match=f"{len(outside)} of the lot's 4 chips are not in")
    assert all(u in result.stderr for u in outside)
    assert lifecycles(tmp_path / "cm.farm", cw.a.cm_lot) == dict.fromkeys(
        cw.a.cm_uids, "MANUFACTURED"
    )
