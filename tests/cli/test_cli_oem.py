"""`trustprov oem`: verify-software, keygen (FIG. 2), regen (FIG. 4)."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from trustprov.link.farm import FarmLink

from .conftest import CliWorld
from .helpers import (
    KEY1,
    KEY2,
    assert_error,
    copy_farm,
    flip,
    listing,
    ok,
    run,
    secret_forms,
    snapshot,
    write_assets,
)

Args = dict[str, str | Path]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _argv(args: Args) -> list[str | Path]:
    return [x for k, v in args.items() for x in (k, v)]


def _regen(
    cw: CliWorld, farm: Path, assets: Path, out: Path, state: Path | None = None
) -> list[str | Path]:
    """`oem regen` of the CLI world's provisioning chip, from ``state`` (by default a copy of
    the world's OEM dir: regen records each epoch it issues in its state)."""
    if state is None:
        state = out.with_name(f"{out.name}-state")
        shutil.copytree(cw.a.oem_dir, state)
    return ["oem", "regen", "--farm", farm, "--chip", cw.a.oem_uid, "--software", cw.a.software,
            "--state", state, "--assets", assets, "--out", out]  # fmt: skip


def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _no_secrets(text: str, cw: CliWorld) -> None:
    for secret in [KEY1, KEY2, *cw.a.secrets()]:
        for form in secret_forms(secret):
            assert form not in text


# -- verify-software -------------------------------------------------------------------------
def test_verify_software(cw: CliWorld) -> None:
    result = ok("oem", "verify-software", cw.a.software, "--key", cw.a.pubkey)
    assert result.stdout.startswith("OK: ")
    assert "security version 1" in result.stdout
    assert result.stderr == ""


VERIFY_ERRORS: dict[str, tuple[Callable[[CliWorld, Path], tuple[Path, Path]], int | None]] = {
    "missing-software": (lambda cw, t: (t / "none.cose", cw.a.pubkey), 2),
    "missing-key": (lambda cw, t: (cw.a.software, t / "none.pem"), 2),
    "software-is-a-directory": (lambda cw, t: (t, cw.a.pubkey), 2),
    "other-family-key": (lambda cw, _t: (cw.a.software, cw.b.pubkey), 1),
    "other-family-software": (lambda cw, _t: (cw.b.software, cw.a.pubkey), 1),
    "private-key-as-key": (lambda cw, _t: (cw.a.software, cw.a.icm / "prov-signing.key.pem"), None),
    "certificate-as-key": (lambda cw, _t: (cw.a.software, cw.a.icm / "device-ca.pem"), None),
    "garbage-key": (
        lambda cw, t: (cw.a.software, _write(t, "k.pem", b"-----BEGIN nonsense")),
        None,
    ),
    "empty-software": (lambda cw, t: (_write(t, "sw.cose", b""), cw.a.pubkey), None),
    "truncated-software": (
        lambda cw, t: (_write(t, "sw.cose", cw.a.software.read_bytes()[:200]), cw.a.pubkey),
        1,
    ),
    "tampered-signature": (
        lambda cw, t: (_write(t, "sw.cose", flip(cw.a.software.read_bytes(), -3)), cw.a.pubkey),
        1,
    ),
    "tampered-code": (
        lambda cw, t: (
            _write(
                t, "sw.cose", flip(cw.a.software.read_bytes(), len(cw.a.software.read_bytes()) // 2)
            ),
            cw.a.pubkey,
        ),
        1,
    ),
    "bundle-as-software": (lambda cw, _t: (cw.a.bundle, cw.a.pubkey), 1),
    "share-as-software": (lambda cw, _t: (cw.a.share, cw.a.pubkey), 1),
}


@pytest.mark.parametrize("case", sorted(VERIFY_ERRORS))
def test_verify_software_errors(cw: CliWorld, tmp_path: Path, case: str) -> None:
    make, code = VERIFY_ERRORS[case]
    software, key = make(cw, tmp_path)
    result = run("oem", "verify-software", software, "--key", key)
    assert_error(result, exit_code=code)
    assert "OK" not in result.stdout


# -- keygen ----------------------------------------------------------------------------------
def test_keygen_writes_the_oem_dir(cw: CliWorld, tmp_path: Path) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path)
    out = tmp_path / "oem"
    result = ok(
        "oem",
        "keygen",
        "--farm",
        farm,
        "--chip",
        cw.a.oem_uid,
        "--software",
        cw.a.software,
        "--assets",
        cw.assets_toml,
        "--out",
        out,
    )
    assert "5 assets" in result.stdout
    for name in (
        "enc-oem-rnd-input.cose",
        "enc-rnd-share.cose",
        "enc-oem-share.cose",
        "bundle.cbor",
    ):
        assert (out / name).stat().st_size > 0, name
    for name in ("enc-oem-rnd-input.cose", "enc-rnd-share.cose"):
        assert _mode(out / name) == 0o600, name
    pems = sorted((out / "generated").glob("*.pub.pem"))
    assert [p.name for p in pems] == ["signer.pub.pem"]
    key = load_pem_public_key(pems[0].read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    # what the OEM sends and keeps holds no asset or family secret in clear
    bundle = (out / "bundle.cbor").read_bytes()
    for secret in [KEY1, KEY2, *cw.a.secrets()]:
        for path in out.rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes(), path
    assert bytes((i * 7 + 3) % 251 for i in range(64)) not in bundle  # firmware is encrypted
    _no_secrets(result.output, cw)
    _no_secrets((out / "oem.json").read_text(), cw)
    assert listing(tmp_path) == sorted([farm.name, "oem"])  # no staging left behind


def test_keygen_into_an_empty_directory(cw: CliWorld, tmp_path: Path) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path)
    out = tmp_path / "oem"
    out.mkdir()
    ok(
        "oem",
        "keygen",
        "--farm",
        farm,
        "--chip",
        cw.a.oem_uid,
        "--software",
        cw.a.software,
        "--assets",
        cw.assets_toml,
        "--out",
        out,
    )
    assert (out / "bundle.cbor").is_file()


def _blank_chip(cw: CliWorld, tmp: Path) -> Args:
    farm = copy_farm(cw.a.oem_farm, tmp / "blank")
    uid = bytes(range(16))
    with FarmLink(farm) as f:
        f.add_blank(uid, "OEM")
    return {"--farm": farm, "--chip": uid.hex()}


def _assets(tmp: Path, toml: str) -> Args:
    return {"--assets": write_assets(tmp / "bad-assets", toml=toml)}


def _bad_assets(toml: str) -> Callable[[CliWorld, Path], Args]:
    def make(_cw: CliWorld, t: Path) -> Args:
        return _assets(t, toml)

    return make


KEY_ASSET = (
    f'[[asset]]\nname = "k"\nkind = "key"\nkey-type = "aes-256"\nslot = 1\nhex = "{KEY1.hex()}"\n'
)
FW_ASSET = '[[asset]]\nname = "fw"\nkind = "firmware"\nregion = "app"\nfile = "fw.bin"\n'
BAD_ASSETS = {
    "not-toml": "this is = not [toml",
    "unknown-asset-key": KEY_ASSET + 'colour = "red"\n',
    "unknown-bundle-key": '[bundle]\nepoch = 1\nmode = "fast"\n' + KEY_ASSET,
    "unknown-table": "[extra]\nx = 1\n" + KEY_ASSET,
    "unknown-kind": KEY_ASSET.replace('kind = "key"', 'kind = "secret"'),
    "missing-asset-file": FW_ASSET.replace("fw.bin", "missing.bin"),
    "compress-on-a-key": KEY_ASSET + 'compress = "deflate"\n',
    "compress-unknown": FW_ASSET + 'compress = "lz4"\n',
    "compress-not-a-string": FW_ASSET + "compress = true\n",
    "asset-file-escapes-to-directory": FW_ASSET.replace("fw.bin", "."),
    "duplicate-slot": KEY_ASSET + KEY_ASSET.replace('"k"', '"k2"'),
    "duplicate-name": KEY_ASSET + KEY_ASSET.replace("slot = 1", "slot = 2"),
    "duplicate-region": FW_ASSET + FW_ASSET.replace('"fw"', '"fw2"'),
    "short-key": KEY_ASSET.replace(KEY1.hex(), KEY1[:16].hex()),
    "hex-not-hex": KEY_ASSET.replace(KEY1.hex(), "zz" * 32),
    "two-sources": KEY_ASSET + 'file = "key2.bin"\n',
    "no-assets": "[bundle]\nepoch = 1\n",
    "slot-out-of-range": KEY_ASSET.replace("slot = 1", "slot = 300"),
    "bad-aead": '[bundle]\naead = "ROT13"\n' + KEY_ASSET,
    "epoch-is-a-string": '[bundle]\nepoch = "1"\n' + KEY_ASSET,
    "min-security-version-above-software": "[bundle]\nmin-security-version = 9\n" + KEY_ASSET,
}

KEYGEN_ERRORS: dict[str, tuple[Callable[[CliWorld, Path], Args], int | None]] = {
    "missing-farm": (lambda _cw, t: {"--farm": t / "none.farm"}, 2),
    "farm-is-not-a-farm": (lambda cw, _t: {"--farm": cw.a.lot_json}, 2),
    "missing-software": (lambda _cw, t: {"--software": t / "none.cose"}, 2),
    "truncated-software": (
        lambda cw, t: {"--software": _write(t, "sw.cose", cw.a.software.read_bytes()[:300])},
        1,
    ),
    "tampered-software": (
        lambda cw, t: {"--software": _write(t, "sw.cose", flip(cw.a.software.read_bytes(), -3))},
        1,
    ),
    "bundle-as-software": (lambda cw, _t: {"--software": cw.a.bundle}, 1),
    "other-family-software": (lambda cw, _t: {"--software": cw.b.software}, 1),
    "other-family-chip": (
        lambda cw, t: {"--farm": copy_farm(cw.b.oem_farm, t / "b"), "--chip": cw.b.oem_uid},
        1,
    ),
    "uid-not-hex": (lambda _cw, _t: {"--chip": "not-a-uid"}, 2),
    "uid-too-short": (lambda _cw, _t: {"--chip": "00" * 8}, 2),
    "uid-too-long": (lambda _cw, _t: {"--chip": "00" * 17}, 2),
    "uid-empty": (lambda _cw, _t: {"--chip": ""}, 2),
    "unknown-chip": (lambda _cw, _t: {"--chip": "ab" * 16}, 2),
    "blank-chip": (_blank_chip, None),
    "missing-assets": (lambda _cw, t: {"--assets": t / "none.toml"}, 2),
    "assets-is-a-directory": (lambda _cw, t: {"--assets": t}, 2),
    **{f"assets-{name}": (_bad_assets(toml), 2) for name, toml in BAD_ASSETS.items()},
}


@pytest.mark.parametrize("case", sorted(KEYGEN_ERRORS))
def test_keygen_errors_write_nothing(cw: CliWorld, tmp_path: Path, case: str) -> None:
    make, code = KEYGEN_ERRORS[case]
    work = tmp_path / "work"
    work.mkdir()
    args: Args = {
        "--farm": copy_farm(cw.a.oem_farm, work / "a"),
        "--chip": cw.a.oem_uid,
        "--software": cw.a.software,
        "--assets": cw.assets_toml,
    }
    args.update(make(cw, work))
    out = tmp_path / "oem"
    assert_error(run("oem", "keygen", *_argv(args), "--out", out), exit_code=code)
    assert not out.exists()
    assert listing(tmp_path) == ["work"]  # no staging directory left behind


# -- one set of limits: what a chip or cm provision would refuse, keygen refuses first -------
def _sparse(path: Path, size: int) -> str:
    with path.open("wb") as f:
        f.truncate(size)  # a hole: the size without the disk space
    return path.name


def _unicode_names(_cw: CliWorld, t: Path) -> Args:
    """Names of 64 characters but 256 bytes: chips limit names in bytes."""
    name = "\U0001d518" * 64
    return _assets(t, KEY_ASSET.replace('name = "k"', f'name = "{name}"'))


def _bundle_over_the_cm_limit(_cw: CliWorld, t: Path) -> Args:
    """Two assets of 600 MiB: each is fine, the bundle (1.2 GB) is over cm provision's 1 GiB."""
    d = t / "bad-assets"  # where _assets writes the list: files are relative to it
    d.mkdir()
    a, b = _sparse(d / "a.bin", 600 * 2**20), _sparse(d / "b.bin", 600 * 2**20)
    toml = FW_ASSET.replace("fw.bin", a) + FW_ASSET.replace('"fw"', '"fw2"').replace(
        '"app"', '"app2"'
    ).replace("fw.bin", b)
    # not deflated: zeros would deflate to a thousandth
    return _assets(t, toml.replace('file = "', 'compress = "none"\nfile = "'))


def _asset_over_the_bundle_limit(_cw: CliWorld, t: Path) -> Args:
    (t / "bad-assets").mkdir()
    return _assets(t, FW_ASSET.replace("fw.bin", _sparse(t / "bad-assets" / "a.bin", 2**30 + 1)))


def _asset_over_a_region(_cw: CliWorld, t: Path) -> Args:
    """issue 24: a 1,000 MiB firmware was sealed, and each chip then failed with an internal
    fault: a chip's flash region holds at most LIMITS.region bytes."""
    (t / "bad-assets").mkdir()
    return _assets(t, FW_ASSET.replace("fw.bin", _sparse(t / "bad-assets" / "a.bin", 1000 * 2**20)))


LIMIT_CASES: dict[str, tuple[Callable[[CliWorld, Path], Args], str]] = {
    "unicode-names-over-64-bytes": (_unicode_names, "bytes"),
    "bundle-over-the-cm-limit": (_bundle_over_the_cm_limit, "cm provision"),
    "asset-over-the-bundle-limit": (_asset_over_the_bundle_limit, "flash region holds"),
    "asset-over-a-region": (_asset_over_a_region, "900 MiB"),
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_keygen_refuses_up_front_what_chips_or_the_cm_would_refuse(
    cw: CliWorld, tmp_path: Path, case: str
) -> None:
    make, reason = LIMIT_CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    farm = copy_farm(cw.a.oem_farm, work / "a")
    before = snapshot(farm)
    args: Args = {"--farm": farm, "--chip": cw.a.oem_uid, "--software": cw.a.software}
    args.update(make(cw, work))
    out = tmp_path / "oem"
    result = run("oem", "keygen", *_argv(args), "--out", out)
    assert_error(result, exit_code=2, match=reason)
    assert not out.exists()
    assert snapshot(farm) == before  # refused before the chip was touched


def test_regen_refuses_an_epoch_every_chip_would_refuse_as_stale(
    cw: CliWorld, tmp_path: Path
) -> None:
    """The state's bundle is epoch 1: an asset list that keeps epoch 1 (the default) would make
    a bundle every chip holding the first one refuses."""
    farm = copy_farm(cw.a.oem_farm, tmp_path / "farm")
    before = snapshot(farm)
    result = run(*_regen(cw, farm, cw.assets_toml, tmp_path / "out"))
    assert_error(result, exit_code=2, match="epoch 1 is not above the epochs already issued")
    assert snapshot(farm) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("existing", ["non-empty-dir", "file"])
def test_keygen_never_overwrites(cw: CliWorld, tmp_path: Path, existing: str) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path / "farm")
    out = tmp_path / "oem"
    if existing == "file":
        out.write_text("keep me")
    else:
        shutil.copytree(cw.a.oem_dir, out)  # the OEM's state: losing it loses regeneration
    before = snapshot(out)
    result = run(
        "oem",
        "keygen",
        "--farm",
        farm,
        "--chip",
        cw.a.oem_uid,
        "--software",
        cw.a.software,
        "--assets",
        cw.assets_toml,
        "--out",
        out,
    )
    assert_error(result, exit_code=2)
    assert snapshot(out) == before
    assert listing(tmp_path) == ["farm", "oem"]


def test_keygen_out_in_a_missing_directory(cw: CliWorld, tmp_path: Path) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path / "farm")
    out = tmp_path / "no" / "oem"
    result = run(
        "oem",
        "keygen",
        "--farm",
        farm,
        "--chip",
        cw.a.oem_uid,
        "--software",
        cw.a.software,
        "--assets",
        cw.assets_toml,
        "--out",
        out,
    )
    assert_error(result, exit_code=2)
    assert not out.parent.exists()


# -- regen -----------------------------------------------------------------------------------
def test_regen_rebuilds_the_same_keys(cw: CliWorld, tmp_path: Path) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path / "farm")
    out = tmp_path / "regen"
    result = ok(*_regen(cw, farm, write_assets(tmp_path / "update", epoch=2), out))
    assert "5 assets" in result.stdout
    _no_secrets(result.output, cw)
    assert (out / "enc-oem-share.cose").is_file()
    assert (out / "bundle.cbor").is_file()
    # the OEM keeps its two state files; regen does not write them again
    assert not (out / "enc-oem-rnd-input.cose").exists()
    assert not (out / "enc-rnd-share.cose").exists()
    # generated assets are regenerated bit-identically
    assert (out / "generated" / "signer.pub.pem").read_bytes() == (
        cw.a.oem_dir / "generated" / "signer.pub.pem"
    ).read_bytes()
    # and the new bundle installs on the CM's chips
    cm = cw.fresh_farm(tmp_path)
    summary = json.loads(
        ok(
            "cm",
            "provision",
            "--farm",
            cm,
            "--lot",
            cw.a.cm_lot,
            "--software",
            cw.a.software,
            "--share",
            out / "enc-oem-share.cose",
            "--bundle",
            out / "bundle.cbor",
            "--json",
        ).stdout
    )
    assert summary["provisioned"] == len(cw.a.cm_uids)


def _state(cw: CliWorld, tmp: Path, edit: Callable[[Path], None]) -> Args:
    d = tmp / "state"
    shutil.copytree(cw.a.oem_dir, d)
    edit(d)
    return {"--state": d}


def _swap(d: Path) -> None:
    a, b = d / "enc-oem-rnd-input.cose", d / "enc-rnd-share.cose"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


REGEN_ERRORS: dict[str, tuple[Callable[[CliWorld, Path], Args], int | None]] = {
    "missing-state": (lambda _cw, t: {"--state": t / "none"}, 2),
    "state-without-rnd-share": (
        lambda cw, t: _state(cw, t, lambda d: (d / "enc-rnd-share.cose").unlink()),
        2,
    ),
    "truncated-rnd-share": (
        lambda cw, t: _state(
            cw,
            t,
            lambda d: (d / "enc-rnd-share.cose").write_bytes(
                (d / "enc-rnd-share.cose").read_bytes()[:40]
            ),
        ),
        1,
    ),
    "tampered-rnd-share": (
        lambda cw, t: _state(
            cw,
            t,
            lambda d: (d / "enc-rnd-share.cose").write_bytes(
                flip((d / "enc-rnd-share.cose").read_bytes(), -2)
            ),
        ),
        1,
    ),
    "tampered-oem-rnd-input": (
        lambda cw, t: _state(
            cw,
            t,
            lambda d: (d / "enc-oem-rnd-input.cose").write_bytes(
                flip((d / "enc-oem-rnd-input.cose").read_bytes(), -2)
            ),
        ),
        1,
    ),
    "swapped-state-files": (lambda cw, t: _state(cw, t, _swap), 1),
    "other-family-state": (lambda cw, _t: {"--state": cw.b.oem_dir}, 1),
    "other-family-chip": (
        lambda cw, t: {
            "--farm": copy_farm(cw.b.oem_farm, t / "b"),
            "--chip": cw.b.oem_uid,
            "--software": cw.b.software,
        },
        1,
    ),
    "uid-not-hex": (lambda _cw, _t: {"--chip": "xyz"}, 2),
    "blank-chip": (_blank_chip, None),
    # the state's bundle has epoch 1: every chip holding it refuses another epoch 1 as stale
    "stale-epoch": (lambda cw, _t: {"--assets": cw.assets_toml}, 2),
    "state-without-oem-json": (
        lambda cw, t: _state(cw, t, lambda d: (d / "oem.json").unlink()),
        2,
    ),
    "missing-assets": (lambda _cw, t: {"--assets": t / "none.toml"}, 2),
    "assets-duplicate-slot": (lambda _cw, t: _assets(t, BAD_ASSETS["duplicate-slot"]), 2),
    "assets-unknown-key": (lambda _cw, t: _assets(t, BAD_ASSETS["unknown-asset-key"]), 2),
    "tampered-software": (
        lambda cw, t: {"--software": _write(t, "sw.cose", flip(cw.a.software.read_bytes(), -3))},
        1,
    ),
}


@pytest.mark.parametrize("case", sorted(REGEN_ERRORS))
def test_regen_errors_write_nothing(cw: CliWorld, tmp_path: Path, case: str) -> None:
    make, code = REGEN_ERRORS[case]
    work = tmp_path / "work"
    work.mkdir()
    args: Args = {
        "--farm": copy_farm(cw.a.oem_farm, work / "a"),
        "--chip": cw.a.oem_uid,
        "--software": cw.a.software,
        "--state": cw.a.oem_dir,
        "--assets": write_assets(work / "update", epoch=2),
    }
    args.update(make(cw, work))
    out = tmp_path / "regen"
    assert_error(run("oem", "regen", *_argv(args), "--out", out), exit_code=code)
    assert not out.exists()
    assert listing(tmp_path) == ["work"]


def test_regen_never_overwrites(cw: CliWorld, tmp_path: Path) -> None:
    farm = copy_farm(cw.a.oem_farm, tmp_path / "farm")
    out = tmp_path / "state"
    shutil.copytree(cw.a.oem_dir, out)
    before = snapshot(out)
    result = run(*_regen(cw, farm, write_assets(tmp_path / "update", epoch=2), out, state=out))
    assert_error(result, exit_code=2, match="not empty")
    assert snapshot(out) == before


def test_regen_refuses_every_epoch_already_issued_from_its_state(
    cw: CliWorld, tmp_path: Path
) -> None:
    """issue 24 item 8: regen compared the new epoch with the state's own (keygen's) only, so
    a second regen at an epoch already issued, or below the latest, was sealed."""
    state = tmp_path / "state"
    shutil.copytree(cw.a.oem_dir, state)
    (state / "issued-epochs.json").unlink(missing_ok=True)  # a state made before the record
    farm = copy_farm(cw.a.oem_farm, tmp_path / "farm")
    ok(*_regen(cw, farm, write_assets(tmp_path / "e3", epoch=3), tmp_path / "out3", state))
    record = json.loads((state / "issued-epochs.json").read_text())
    assert record == {"issued-epochs": [1, 3]}
    for epoch in (3, 2):  # issued already; below the latest
        out = tmp_path / f"again{epoch}"
        result = run(
            *_regen(cw, farm, write_assets(out.with_suffix(".a"), epoch=epoch), out, state)
        )
        assert_error(result, exit_code=2, match="not above the epochs already issued")
        assert "epoch = 4 or more" in result.stderr
        assert not out.exists()
    ok(*_regen(cw, farm, write_assets(tmp_path / "e4", epoch=4), tmp_path / "out4", state))
    assert json.loads((state / "issued-epochs.json").read_text())["issued-epochs"] == [1, 3, 4]


def test_keygen_starts_the_record_of_issued_epochs(cw: CliWorld) -> None:
    record = json.loads((cw.a.oem_dir / "issued-epochs.json").read_text())
    assert record == {"issued-epochs": [1]}
    assert not (cw.epoch2_dir / "issued-epochs.json").exists()  # the state keeps it
