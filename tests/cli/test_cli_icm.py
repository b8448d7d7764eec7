"""`trustprov icm`: init, sign-software, manufacture."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509.oid import NameOID

from trustprov.link.farm_link import FarmLink

from .conftest import CliWorld
from .helpers import assert_error, assert_no_crash, lifecycles, ok, run, snapshot

PRIVATE_FILES = ("prov-signing.key.pem", "device-ca.key.pem", "family-secrets.cbor")
PUBLIC_FILES = ("prov-signing.pub.pem", "device-ca.pem", "icm.json")


def _manufacture(icm: Path, farm: Path, lot: str, count: int, manifest: Path) -> list[str | Path]:
    """The arguments of `icm manufacture` with every option given."""
    return [
        "icm",
        "manufacture",
        "--icm",
        icm,
        "--farm",
        farm,
        "--lot",
        lot,
        "--count",
        str(count),
        "--manifest",
        manifest,
    ]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# -- init ------------------------------------------------------------------------------------
def test_init_writes_a_family(tmp_path: Path) -> None:
    d = tmp_path / "icm"
    result = ok("icm", "init", d)
    assert result.stderr == ""
    family = json.loads((d / "icm.json").read_text())["family"]
    assert family in result.stdout
    for name in PRIVATE_FILES:
        assert _mode(d / name) == 0o600, name
    for name in PUBLIC_FILES:
        assert _mode(d / name) & 0o022 == 0, name  # nobody else may change them
    assert isinstance(
        load_pem_public_key((d / "prov-signing.pub.pem").read_bytes()), ec.EllipticCurvePublicKey
    )
    ca = x509.load_pem_x509_certificate((d / "device-ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert family in ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    # no private material in what the ICM hands out
    for name in ("prov-signing.pub.pem", "device-ca.pem"):
        assert b"PRIVATE" not in (d / name).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name != "icm"]  # no staging left behind


def test_init_accepts_an_empty_directory(tmp_path: Path) -> None:
    d = tmp_path / "icm"
    d.mkdir()
    ok("icm", "init", d)
    assert (d / "prov-signing.pub.pem").is_file()


@pytest.mark.parametrize(
    ("alg", "key_type"),
    [
        ("ES256", ec.EllipticCurvePublicKey),
        ("ES384", ec.EllipticCurvePublicKey),
        ("EdDSA", ed25519.Ed25519PublicKey),
    ],
)
def test_each_algorithm_signs_and_verifies(tmp_path: Path, alg: str, key_type: type) -> None:
    d = tmp_path / "icm"
    ok("icm", "init", d, "--alg", alg)
    pub = d / "prov-signing.pub.pem"
    key = load_pem_public_key(pub.read_bytes())
    assert isinstance(key, key_type)
    if alg == "ES384":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp384r1"
    # default: the ICM's algorithm; explicit --alg: the same
    for args in ([], ["--alg", alg]):
        sw = tmp_path / f"sw{len(args)}.cose"
        result = ok("icm", "sign-software", "--icm", d, "--out", sw, *args)
        assert alg in result.stdout
        assert alg in ok("oem", "verify-software", sw, "--key", pub).stdout


@pytest.mark.parametrize("alg", ["ML-DSA-65", "ML-DSA-87", "ES256+ML-DSA-65"])
def test_post_quantum_and_hybrid_algorithms_sign_and_verify(tmp_path: Path, alg: str) -> None:
    d = tmp_path / "icm"
    ok("icm", "init", d, "--alg", alg)
    keys = [d / "prov-signing.pub.pem"]
    if "+" in alg:
        keys.append(d / "prov-signing-2.pub.pem")
    assert [load_pem_public_key(k.read_bytes()).__class__.__name__ for k in keys][-1].startswith(
        "MLDSA" + alg[-2:]
    )
    sw = tmp_path / "sw.cose"
    assert alg in ok("icm", "sign-software", "--icm", d, "--out", sw, "--alg", alg).stdout
    key_args = [a for k in keys for a in ("--key", k)]
    assert alg in ok("oem", "verify-software", sw, *key_args).stdout
    if len(keys) > 1:  # one key of a hybrid does not verify it; nor do the keys swapped
        for args in (["--key", keys[0]], ["--key", keys[1], "--key", keys[0]]):
            result = run("oem", "verify-software", sw, *args)
            assert result.exit_code == 1, result.output
            assert len(result.stderr.strip().splitlines()) == 1


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    d = tmp_path / "icm"
    d.mkdir()
    (d / "keep.txt").write_text("the OEM's notes")
    before = snapshot(tmp_path)
    assert_error(run("icm", "init", d), exit_code=2, match="not empty")
    assert snapshot(tmp_path) == before


def test_init_refuses_an_existing_icm(cw: CliWorld) -> None:
    before = snapshot(cw.a.icm)
    assert_error(run("icm", "init", cw.a.icm), exit_code=2)
    assert snapshot(cw.a.icm) == before


def test_init_refuses_an_existing_file(tmp_path: Path) -> None:
    f = tmp_path / "icm"
    f.write_text("x")
    assert_error(run("icm", "init", f), exit_code=2)
    assert f.read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["icm"]


def test_init_into_a_missing_parent(tmp_path: Path) -> None:
    assert_error(run("icm", "init", tmp_path / "no" / "icm"), exit_code=2)
    assert not (tmp_path / "no").exists()


def test_init_unknown_algorithm_is_a_usage_error(tmp_path: Path) -> None:
    result = run("icm", "init", tmp_path / "icm", "--alg", "RSA")
    assert_no_crash(result)
    assert result.exit_code == 2
    assert not (tmp_path / "icm").exists()


# -- sign-software ---------------------------------------------------------------------------
def test_sign_software_version_options(cw: CliWorld, tmp_path: Path) -> None:
    sw = tmp_path / "sw.cose"
    ok(
        "icm",
        "sign-software",
        "--icm",
        cw.a.icm,
        "--out",
        sw,
        "--version",
        "2.5.0-rc1",
        "--security-version",
        "7",
    )
    out = ok("oem", "verify-software", sw, "--key", cw.a.pubkey).stdout
    assert "2.5.0-rc1" in out
    assert "security version 7" in out
    assert _mode(sw) & 0o022 == 0


def _damaged_icm(cw: CliWorld, tmp: Path) -> Path:
    d = tmp / "damaged"
    shutil.copytree(cw.a.icm, d)
    (d / "family-secrets.cbor").write_bytes(b"\xff\x00")
    return d


def _icm_without_signing_key(cw: CliWorld, tmp: Path) -> Path:
    d = tmp / "nokey"
    shutil.copytree(cw.a.icm, d)
    (d / "prov-signing.key.pem").unlink()
    return d


SIGN_ERRORS: dict[str, tuple[Callable[[CliWorld, Path], list[str | Path]], int | None]] = {
    "missing-icm": (lambda _cw, t: ["--icm", t / "none"], 2),
    "empty-dir-not-icm": (lambda _cw, t: ["--icm", t], 2),
    "damaged-icm": (lambda cw, t: ["--icm", _damaged_icm(cw, t)], 2),
    "icm-without-signing-key": (lambda cw, t: ["--icm", _icm_without_signing_key(cw, t)], 2),
    "alg-other-than-the-icm-key": (lambda cw, _t: ["--icm", cw.a.icm, "--alg", "ES384"], None),
    "alg-eddsa-on-ec-key": (lambda cw, _t: ["--icm", cw.a.icm, "--alg", "EdDSA"], None),
    # bad input, refused before any work (it was a malformed-software exit 1)
    "empty-version": (lambda cw, _t: ["--icm", cw.a.icm, "--version", ""], 2),
    "unprintable-version": (lambda cw, _t: ["--icm", cw.a.icm, "--version", "1\n2"], 2),
}


@pytest.mark.parametrize("case", sorted(SIGN_ERRORS))
def test_sign_software_errors(cw: CliWorld, tmp_path: Path, case: str) -> None:
    make, code = SIGN_ERRORS[case]
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "sw.cose"
    assert_error(run("icm", "sign-software", *make(cw, work), "--out", out), exit_code=code)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "work"]  # no temporary file left


def test_sign_software_into_a_missing_directory(cw: CliWorld, tmp_path: Path) -> None:
    out = tmp_path / "no" / "sw.cose"
    assert_error(run("icm", "sign-software", "--icm", cw.a.icm, "--out", out), exit_code=2)
    assert not (tmp_path / "no").exists()


def test_sign_software_onto_a_directory_names_the_output(cw: CliWorld, tmp_path: Path) -> None:
    """The error names OUT as given, not an internal temporary file."""
    out = tmp_path / "sw.cose"
    out.mkdir()
    line = assert_error(run("icm", "sign-software", "--icm", cw.a.icm, "--out", out))
    assert out.is_dir()
    assert not list(out.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["sw.cose"]  # no temporary file left
    assert ".tmp" not in line, line


def _boot(farm: Path, uid: str, image: Path) -> str:
    """Boot the chip ``uid`` of ``farm`` with ``image``: "booted" or the code it refused with."""
    from trustprov.errors import ChipRefused  # noqa: PLC0415 - one helper

    with FarmLink(farm) as f, f.connect(bytes.fromhex(uid)) as chip:
        try:
            chip.boot(image.read_bytes())
        except ChipRefused as e:
            return e.code
    return "booted"


def test_sign_software_signs_a_firmware_image(cw: CliWorld, tmp_path: Path) -> None:
    """--code FILE signs FILE's bytes as they are (tp-code = their SHA-256): a chip that runs
    exactly that firmware boots the image, one that runs any other refuses it (code-mismatch).
    The virtual chip runs its code archive, so that archive as a file is a firmware it runs."""
    from trustprov.crypto.digest import sha256  # noqa: PLC0415 - one test
    from trustprov.formats.software import SignedSoftware, code_archive  # noqa: PLC0415

    farm = cw.fresh_farm(tmp_path)
    uid = cw.a.cm_uids[0]
    for name, code in (("runs.bin", code_archive()), ("other.bin", b"\x7fELF port firmware")):
        (tmp_path / name).write_bytes(code)
        out = tmp_path / f"{name}.cose"
        meta = json.loads(
            ok(
                "icm",
                "sign-software",
                "--icm",
                cw.a.icm,
                "--code",
                tmp_path / name,
                "--out",
                out,
                "--json",
            ).stdout
        )
        assert meta["code_sha256"] == sha256(code).hex()
        assert SignedSoftware.from_bytes(out.read_bytes()).code == code
    assert _boot(farm, uid, tmp_path / "runs.bin.cose") == "booted"
    assert _boot(farm, uid, tmp_path / "other.bin.cose") == "code-mismatch"


def test_sign_software_refuses_an_empty_or_oversized_firmware(cw: CliWorld, tmp_path: Path) -> None:
    empty, big = tmp_path / "empty.bin", tmp_path / "big.bin"
    empty.write_bytes(b"")
    with big.open("wb") as f:
        f.truncate(4 * 1024 * 1024 + 1)
    for code in (empty, big):
        out = tmp_path / "sw.cose"
        line = assert_error(
            run("icm", "sign-software", "--icm", cw.a.icm, "--code", code, "--out", out),
            exit_code=2,
        )
        assert "firmware image" in line
        assert not out.exists()


# -- manufacture -----------------------------------------------------------------------------
def test_manufacture_writes_the_lot(cw: CliWorld, tmp_path: Path) -> None:
    farm, manifest = tmp_path / "chips.farm", tmp_path / "lot.json"
    result = ok(*_manufacture(cw.a.icm, farm, "LOT-7", 3, manifest))
    assert "LOT-7" in result.stdout
    doc = json.loads(manifest.read_text())
    assert set(doc) == {"lot", "family", "chips"}
    assert doc["lot"] == "LOT-7"
    assert doc["family"] == json.loads((cw.a.icm / "icm.json").read_text())["family"]
    assert len(doc["chips"]) == 3
    ca = x509.load_pem_x509_certificate((cw.a.icm / "device-ca.pem").read_bytes())
    uids = set()
    for chip in doc["chips"]:
        assert set(chip) == {"uid", "certificate"}
        uid = chip["uid"]
        assert len(uid) == 32
        assert bytes.fromhex(uid).hex() == uid
        cert = x509.load_pem_x509_certificate(chip["certificate"].encode())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == uid
        uids.add(uid)
        shown = json.loads(ok("chip", "show", "--farm", farm, "--chip", uid, "--json").stdout)
        assert shown["lifecycle"] == "MANUFACTURED"
        assert shown["certificate"] == chip["certificate"]
    assert len(uids) == 3
    assert lifecycles(farm, "LOT-7") == dict.fromkeys(uids, "MANUFACTURED")


def test_manufacture_adds_a_lot_to_a_farm(cw: CliWorld, tmp_path: Path) -> None:
    farm = tmp_path / "chips.farm"
    for lot in ("L1", "L2"):
        ok(*_manufacture(cw.a.icm, farm, lot, 1, tmp_path / f"{lot}.json"))
    with FarmLink(farm) as f:
        assert sorted(f.lots()) == ["L1", "L2"]


def _sqlite_file(tmp: Path) -> Path:
    db = tmp / "records.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, uid TEXT)")
    return db


MANUFACTURE_ERRORS: dict[str, Callable[[CliWorld, Path], list[str | Path]]] = {
    "missing-icm": lambda _cw, t: ["--icm", t / "none", "--lot", "L"],
    "not-an-icm": lambda cw, _t: ["--icm", cw.a.oem_dir, "--lot", "L"],
    "bad-lot-name": lambda cw, _t: ["--icm", cw.a.icm, "--lot", "bad lot/1"],
    "lot-name-too-long": lambda cw, _t: ["--icm", cw.a.icm, "--lot", "L" * 65],
}


@pytest.mark.parametrize("case", sorted(MANUFACTURE_ERRORS))
def test_manufacture_errors_write_nothing(cw: CliWorld, tmp_path: Path, case: str) -> None:
    farm, manifest = tmp_path / "chips.farm", tmp_path / "lot.json"
    args = MANUFACTURE_ERRORS[case](cw, tmp_path)
    assert_error(
        run("icm", "manufacture", *args, "--farm", farm, "--count", "2", "--manifest", manifest),
        exit_code=2,
    )
    assert not farm.exists()
    assert not manifest.exists()


def test_manufacture_manifest_in_a_missing_directory_writes_no_farm(
    cw: CliWorld, tmp_path: Path
) -> None:
    """All or nothing: when the lot manifest cannot be written, no lot may be left in the farm."""
    farm, manifest = tmp_path / "chips.farm", tmp_path / "no" / "lot.json"
    result = run(*_manufacture(cw.a.icm, farm, "L", 2, manifest))
    assert_error(result, exit_code=2)
    assert not manifest.parent.exists()
    if farm.exists():
        with FarmLink(farm) as f:
            assert f.lots() == [], "the lot is in the farm without its manifest"


def test_manufacture_manifest_failure_keeps_an_existing_farm(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    manifest = tmp_path / "no" / "lot.json"
    result = run(*_manufacture(cw.a.icm, farm, "NEW", 2, manifest))
    assert_error(result, exit_code=2)
    with FarmLink(farm) as f:
        assert f.lots() == [cw.a.cm_lot], "the lot is in the farm without its manifest"


def test_manufacture_refuses_an_existing_lot(cw: CliWorld, tmp_path: Path) -> None:
    farm = cw.fresh_farm(tmp_path)
    manifest = tmp_path / "lot.json"
    before = lifecycles(farm, cw.a.cm_lot)
    result = run(*_manufacture(cw.a.icm, farm, cw.a.cm_lot, 2, manifest))
    assert_error(result, exit_code=2, match="already exists")
    assert not manifest.exists()
    assert lifecycles(farm, cw.a.cm_lot) == before


def test_manufacture_refuses_a_file_that_is_not_a_farm(cw: CliWorld, tmp_path: Path) -> None:
    farm = tmp_path / "notes.farm"
    farm.write_text("not a farm\n" * 100)
    manifest = tmp_path / "lot.json"
    result = run(*_manufacture(cw.a.icm, farm, "L", 1, manifest))
    assert_error(result, exit_code=2, match="not a chip farm")
    assert farm.read_text() == "not a farm\n" * 100
    assert not manifest.exists()


def test_manufacture_refuses_a_sqlite_file_that_is_not_a_farm(cw: CliWorld, tmp_path: Path) -> None:
    """E.g. the CM's records.sqlite given as --farm: refused, and left as it was."""
    db = _sqlite_file(tmp_path)
    before = db.read_bytes()
    manifest = tmp_path / "lot.json"
    result = run(*_manufacture(cw.a.icm, db, "L", 1, manifest))
    assert_error(result, exit_code=2, match="not a chip farm")
    assert db.read_bytes() == before
    assert not manifest.exists()


def test_manufacture_refuses_a_damaged_family_id(cw: CliWorld, tmp_path: Path) -> None:
    """icm.json with a family id of the wrong length: no chip may be burnt with it."""
    d = tmp_path / "icm"
    shutil.copytree(cw.a.icm, d)
    meta = json.loads((d / "icm.json").read_text())
    (d / "icm.json").write_text(json.dumps(meta | {"family": "abcd"}))
    farm, manifest = tmp_path / "chips.farm", tmp_path / "lot.json"
    result = run(*_manufacture(d, farm, "L", 1, manifest))
    assert_error(result, exit_code=2, match="damaged")
    assert not farm.exists()
    assert not manifest.exists()


def test_manufacture_zero_chips_is_a_usage_error(cw: CliWorld, tmp_path: Path) -> None:
    farm, manifest = tmp_path / "chips.farm", tmp_path / "lot.json"
    result = run(*_manufacture(cw.a.icm, farm, "L", 0, manifest))
    assert_no_crash(result)
    assert result.exit_code == 2
    assert not farm.exists()
    assert not manifest.exists()
