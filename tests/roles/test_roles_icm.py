"""The ICM's tools: ICM_DIR, software signing, manufacturing, and chip identity (OpenSSL)."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import Bench, second_family, world_job

from trustprov.chip.farm import Farm
from trustprov.chip.model import Lifecycle
from trustprov.crypto.keys import public_key_der
from trustprov.errors import InputError
from trustprov.formats.limits import MAX_LOT
from trustprov.formats.lot import LotManifest
from trustprov.link.farm_link import FarmLink
from trustprov.roles import files, icm
from trustprov.roles.icm import manufacturing

PRIVATE_ICM_FILES = (
    "family-secrets.cbor",
    "prov-signing.key.pem",
    "device-ca.key.pem",
    "lot-signing.key.pem",
)
PUBLIC_ICM_FILES = ("icm.json", "prov-signing.pub.pem", "device-ca.pem", "lot-signing.pub.pem")


@pytest.fixture(scope="module")
def family2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return second_family(tmp_path_factory.mktemp("family2"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- ICM_DIR -------------------------------------------------------------------------------------
def test_icm_dir_private_files_are_0600(world: Any) -> None:
    d = world.icm.path
    assert sorted(p.name for p in d.iterdir()) == sorted(PRIVATE_ICM_FILES + PUBLIC_ICM_FILES)
    for name in PRIVATE_ICM_FILES:
        assert _mode(d / name) == 0o600, name
    for name in PUBLIC_ICM_FILES:
        assert _mode(d / name) == 0o644, name
    meta = json.loads((d / "icm.json").read_text())
    assert meta["family"] == world.icm.family_id.hex()
    assert meta["alg"] == "ES256"


def test_icm_init_refuses_a_non_empty_dir_and_a_bad_algorithm(tmp_path: Path) -> None:
    d = tmp_path / "icm"
    d.mkdir()
    (d / "family-secrets.cbor").write_bytes(b"the old family")
    with pytest.raises(InputError):
        icm.init(d)
    assert [p.name for p in d.iterdir()] == ["family-secrets.cbor"]
    assert (d / "family-secrets.cbor").read_bytes() == b"the old family"
    with pytest.raises(InputError):
        icm.init(tmp_path / "rsa", alg="RS256")
    assert not (tmp_path / "rsa").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["icm"]  # no staging left behind


def test_icm_load_round_trip(world: Any) -> None:
    again = icm.Icm.load(world.icm.path)
    assert again.family_id == world.icm.family_id
    assert again.immutable == world.icm.immutable
    assert public_key_der(again.signing_key) == public_key_der(world.icm.signing_key)


@pytest.mark.parametrize("alg", ["ES384", "EdDSA"])
def test_other_signature_algorithms_sign_software_chips_boot(tmp_path: Path, alg: str) -> None:
    made = icm.init(tmp_path / "icm", alg=alg)
    software = tmp_path / "software.cose"
    assert icm.sign_software(made, software).alg == alg
    farm = tmp_path / "chips.farm"
    lot = icm.manufacture(made, farm, "L", 1, tmp_path / "lot.json")
    with Bench(farm) as bench:
        client = bench.client(lot.uids[0])
        assert client.call("rom.boot", {"image": software.read_bytes()}) == {"security-counter": 1}
    with pytest.raises(InputError):  # the key decides the algorithm
        icm.sign_software(made, tmp_path / "es256.cose", alg="ES256")


def test_sign_software_refuses_a_bad_security_version(world: Any, tmp_path: Path) -> None:
    for svn in (-1, 2**32):
        with pytest.raises(InputError):
            icm.sign_software(world.icm, tmp_path / "s.cose", security_version=svn)
    assert not (tmp_path / "s.cose").exists()


# -- manufacturing -------------------------------------------------------------------------------
def test_manufacture_makes_a_lot_of_manufactured_chips(world: Any, tmp_path: Path) -> None:
    farm = tmp_path / "lot.farm"
    made = icm.manufacture(world.icm, farm, "L-1", 5, tmp_path / "lot.json")
    assert (made.lot, made.family_id, made.count) == ("L-1", world.icm.family_id, 5)
    assert made.manifest == tmp_path / "lot.json"
    lot = made.load_manifest()
    assert LotManifest.from_json((tmp_path / "lot.json").read_bytes()) == lot
    assert (lot.lot, lot.family_id) == (made.lot, made.family_id)
    assert tuple(c.uid for c in lot.chips) == made.uids
    assert len(set(made.uids)) == 5
    with Bench(farm) as bench:
        assert sorted(bench.uids("L-1")) == sorted(c.uid for c in lot.chips)
        for chip in lot.chips:
            r = bench.read(chip.uid)
            assert (r.lifecycle, r.security_counter) == (Lifecycle.MANUFACTURED, 0)
            assert r.immutable == world.icm.immutable
            assert bench.client(chip.uid).certificate() == chip.certificate


@pytest.mark.parametrize(
    ("lot", "count"),
    [("L-1", 1), ("bad lot name", 1), ("-x", 1), ("L-2", 0), ("L-3", MAX_LOT + 1)],
)
def test_manufacture_refuses_bad_requests(world: Any, tmp_path: Path, lot: str, count: int) -> None:
    farm = tmp_path / "lot.farm"
    icm.manufacture(world.icm, farm, "L-1", 2, tmp_path / "first.json")
    with pytest.raises(InputError):
        icm.manufacture(world.icm, farm, lot, count, tmp_path / "second.json")
    assert not (tmp_path / "second.json").exists()
    with Bench(farm) as bench:
        assert len(bench.uids()) == 2


def _lots(farm: Path) -> list[str]:
    with FarmLink(farm) as f:
        return f.lots()


def _peak_traced_bytes(world: Any, root: Path, lot: str, count: int) -> int:
    tracemalloc.start()
    try:
        icm.manufacture(world.icm, root / f"{lot}.farm", lot, count, root / f"{lot}.json")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_manufacture_memory_does_not_grow_with_the_certificates(world: Any, tmp_path: Path) -> None:
    """A lot of a million chips must fit in memory: manufacturing keeps each chip's UID (about
    60 bytes with its share of the list) and writes its certificate (some 500 bytes of DER, 800
    of PEM) to the manifest as soon as it is issued. Cyclic garbage the collector has not yet
    reached adds a little; holding the certificates would add well over 500 bytes a chip (the
    whole lot in memory cost 3,900)."""
    _peak_traced_bytes(world, tmp_path, "WARM-UP", 3)  # lazy imports and caches
    small = _peak_traced_bytes(world, tmp_path, "SMALL", 200)
    large = _peak_traced_bytes(world, tmp_path, "LARGE", 2000)
    per_chip = (large - small) / 1800
    assert per_chip < 400, f"{per_chip:.0f} bytes of memory per chip"
    made = icm.manufacture(world.icm, tmp_path / "x.farm", "X", 2, tmp_path / "x.json")
    assert set(vars(made)) == {"lot", "family_id", "uids", "manifest"}
    assert len(repr(made)) < 200  # a million UIDs are not printed


def _disk_full_after(room: int) -> type[io.FileIO]:
    class DiskFull(io.FileIO):
        taken = 0

        def write(self, data: Any, /) -> int:
            if DiskFull.taken + len(data) > room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            DiskFull.taken += len(data)
            return super().write(data)

    return DiskFull


def test_a_manifest_that_cannot_be_written_makes_no_chip(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up after some chips of the lot are in the manifest: no chip is made, and
    neither the manifest nor its temporary file is left behind."""
    farm, manifest = tmp_path / "lot.farm", tmp_path / "lot.json"
    monkeypatch.setattr(io, "FileIO", _disk_full_after(50_000))  # the writes of ~60 chips
    with pytest.raises(InputError, match=f"cannot write {manifest}: No space left"):
        icm.manufacture(world.icm, farm, "L-1", 200, manifest)
    monkeypatch.undo()
    assert _lots(farm) == []
    assert not [p for p in tmp_path.iterdir() if "json" in p.name]


def test_a_manifest_that_cannot_be_put_in_place_makes_no_chip(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "lot.json"
    manifest.mkdir()  # the whole manifest is written, then cannot replace a directory
    # past the check before the work (which refuses a directory up front): the placing refuses
    monkeypatch.setattr(manufacturing, "check_output", lambda *_a, **_k: None)
    monkeypatch.setattr(files, "check_output", lambda *_a, **_k: None)
    with pytest.raises(InputError, match=f"{manifest} exists; refusing to replace it"):
        icm.manufacture(world.icm, tmp_path / "lot.farm", "L-1", 3, manifest)
    assert _lots(tmp_path / "lot.farm") == []
    assert manifest.is_dir()
    assert [p.name for p in tmp_path.iterdir() if "json" in p.name] == ["lot.json"]


def test_a_manifest_path_that_is_a_directory_is_refused_before_any_chip(
    world: Any, tmp_path: Path
) -> None:
    (tmp_path / "lot.json").mkdir()
    with pytest.raises(InputError, match="is a directory; refusing to replace it"):
        icm.manufacture(world.icm, tmp_path / "lot.farm", "L-1", 3, tmp_path / "lot.json")
    assert not (tmp_path / "lot.farm").exists()


def test_a_lot_that_does_not_commit_leaves_no_manifest(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is in place before the farm commits; if the commit fails, it is withdrawn."""
    batch = FarmLink.batch

    @contextmanager
    def commit_fails(self: FarmLink) -> Iterator[None]:
        with batch(self):
            yield
            assert (tmp_path / "lot.json").is_file()  # the manifest is already whole
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(FarmLink, "batch", commit_fails)
    with pytest.raises(sqlite3.OperationalError):
        icm.manufacture(world.icm, tmp_path / "lot.farm", "L-1", 3, tmp_path / "lot.json")
    assert _lots(tmp_path / "lot.farm") == []
    assert not [p for p in tmp_path.iterdir() if "json" in p.name]


def test_load_manifest_notices_a_replaced_manifest(world: Any, tmp_path: Path) -> None:
    first = icm.manufacture(world.icm, tmp_path / "a.farm", "A", 2, tmp_path / "a.json")
    second = icm.manufacture(world.icm, tmp_path / "b.farm", "A", 2, tmp_path / "b.json")
    shutil.copyfile(second.manifest, first.manifest)  # same lot name and family, other chips
    with pytest.raises(InputError, match="no longer the manifest"):  # its signature fails
        first.load_manifest()
    sig = Path(f"{second.manifest}.cose")
    shutil.copyfile(sig, Path(f"{first.manifest}.cose"))  # with its own signature: other UIDs
    with pytest.raises(InputError, match="no longer the manifest"):
        first.load_manifest()
    first.manifest.write_bytes(b"{")
    with pytest.raises(InputError, match="no longer the manifest"):
        first.load_manifest()
    assert second.load_manifest().lot == "A"


# -- chip identity -------------------------------------------------------------------------------
def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed")
    return path


def _write_pems(lot_json: Path, d: Path) -> list[Path]:
    lot = LotManifest.from_json(lot_json.read_bytes())
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for chip in lot.chips:
        p = d / f"{chip.uid.hex()}.pem"
        p.write_text(chip.certificate_pem())
        paths.append(p)
    return paths


def _verify(openssl: str, ca: Path, certs: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), *map(str, certs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_openssl_verifies_every_chip_certificate_of_the_lot(world: Any, tmp_path: Path) -> None:
    openssl = _openssl()
    certs = _write_pems(world.root / "lot.json", tmp_path / "certs")
    assert len(certs) == 8
    done = _verify(openssl, world.icm.path / "device-ca.pem", certs)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(certs)


def test_openssl_rejects_a_chip_certificate_of_another_icm(
    world: Any, family2: Any, tmp_path: Path
) -> None:
    openssl = _openssl()
    foreign = _write_pems(family2.lot_json, tmp_path / "foreign")
    for cert in foreign:
        done = _verify(openssl, world.icm.path / "device-ca.pem", [cert])
        assert done.returncode != 0, done.stdout
    own = _verify(openssl, family2.icm.path / "device-ca.pem", foreign)  # the control
    assert own.returncode == 0, own.stdout + own.stderr


def test_each_certificate_certifies_its_own_chips_key_and_uid(world: Any) -> None:
    lot = LotManifest.from_json((world.root / "lot.json").read_bytes())
    assert lot.family_id == world.icm.family_id
    farm = Farm(world.cm_farm)
    try:
        for chip in lot.chips:
            cert = x509.load_der_x509_certificate(chip.certificate)
            scalar = farm.load(chip.uid).identity_key  # read like a probe would
            assert scalar is not None
            key = ec.derive_private_key(int.from_bytes(scalar), ec.SECP256R1())
            assert public_key_der(cert.public_key()) == public_key_der(key)  # type: ignore[arg-type]
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            assert cn == chip.uid.hex()
            assert cert.serial_number == int.from_bytes(chip.uid)  # protocol.md 7
            assert cert.issuer == world.icm.ca_cert.subject
            assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    finally:
        farm.close()
    # and a chip's certificate only ever names that chip: two chips, two keys
    assert len({c.certificate for c in lot.chips}) == len(lot.chips)
    assert world_job(world).family_id == lot.family_id
