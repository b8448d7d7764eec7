"""`roles.inspect`: every artifact of a run recognised by content, its public fields, no secret."""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import KEY1

from trustprov.errors import InputError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.bundle import Bundle
from trustprov.formats.lot import LotManifest, device_ca_common_name
from trustprov.formats.software import SignedSoftware
from trustprov.line.inspect import describe_records
from trustprov.roles import icm
from trustprov.roles.inspect import Description, describe


def _dump(d: Description, path: Path) -> str:
    return json.dumps(d.to_json(path))


def _forms(secret: bytes) -> list[str]:
    return [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode()]


def _copy(src: Path, dest: Path) -> Path:
    """A copy under another name: recognition must not depend on the file's name."""
    target = dest / "renamed.bin"
    shutil.copyfile(src, target)
    return target


def test_signed_software(world: Any, tmp_path: Path) -> None:
    sw = SignedSoftware.from_bytes(world.software.read_bytes())
    d = describe(_copy(world.software, tmp_path))
    assert d.kind == "software"
    assert d.fields["name"] == sw.name
    assert d.fields["version"] == sw.version
    assert d.fields["security_version"] == sw.security_version
    assert d.fields["algorithm"] == sw.alg
    assert d.fields["code_sha256"] == sw.code_digest.hex()
    assert "not checked" in d.fields["signature"]


def test_software_verdict_with_key(world: Any, tmp_path: Path) -> None:
    good = describe(world.software, key=world.icm.path / "prov-signing.pub.pem")
    assert good.fields["signature"].startswith("verified")
    other = icm.init(tmp_path / "other")
    with pytest.raises(VerificationError, match="does not verify"):
        describe(world.software, key=other.path / "prov-signing.pub.pem")


def test_bundle_lists_its_assets_and_says_they_are_sealed(world: Any, tmp_path: Path) -> None:
    m = Bundle.from_bytes(world.bundle.read_bytes()).manifest
    d = describe(_copy(world.bundle, tmp_path))
    assert d.kind == "bundle"
    assert d.fields["family"] == m.family_id.hex()
    assert d.fields["bundle_id"] == m.bundle_id.hex()
    assert d.fields["epoch"] == m.epoch
    assert d.fields["min_security_version"] == m.min_security_version
    assert d.fields["aead"] == m.aead.name
    rows = {a["name"]: a for a in d.fields["assets"]}
    assert set(rows) == {a.name for a in m.assets}
    assert rows["fw"]["region"] == "app"
    fw = next(a for a in m.assets if a.name == "fw")
    assert rows["fw"]["chunks"] == -(-fw.length // m.chunk_size) >= 2
    assert rows["aes-1"]["slot"] == 1
    assert d.note is not None
    assert "sealed" in d.note
    assert not any(f in _dump(d, world.bundle) for f in _forms(KEY1))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("enc-oem-share.cose", "oem-share"),
        ("enc-oem-rnd-input.cose", "oem-rnd-input"),
        ("enc-rnd-share.cose", "rnd-share"),
    ],
)
def test_sealed_values(world: Any, tmp_path: Path, name: str, kind: str) -> None:
    d = describe(_copy(world.oem_dir / name, tmp_path))
    assert d.kind == "sealed-value"
    assert d.fields["value"] == kind
    assert d.fields["family"] == world.icm.family_id.hex()


def test_lot_manifest_and_its_certificates(world: Any, tmp_path: Path) -> None:
    lot = world.root / "lot.json"
    d = describe(_copy(lot, tmp_path))
    assert d.kind == "lot-manifest"
    assert (d.fields["lot"], d.fields["chips"]) == (world.cm_lot, 8)
    listed = LotManifest.from_json(lot.read_bytes()).chips
    assert d.fields["first_uids"] == [c.uid.hex() for c in listed[:5]]
    checked = describe(lot, ca=world.icm.path / "device-ca.pem")
    assert checked.fields["certificates"].startswith("all 8")


def test_lot_certificates_from_an_impostor_ca_fail(world: Any, tmp_path: Path) -> None:
    """A CA with the family's name but another key issued none of the chips' certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, device_ca_common_name(world.icm.family_id))]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    ca = tmp_path / "impostor.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(VerificationError, match="not issued by"):
        describe(world.root / "lot.json", ca=ca)
    other = icm.init(tmp_path / "other")
    with pytest.raises(VerificationError, match="not the device CA of family"):
        describe(world.root / "lot.json", ca=other.path / "device-ca.pem")


def test_farm_through_the_link(world: Any) -> None:
    d = describe(world.cm_farm)
    assert d.kind == "farm"
    assert d.fields["chips"] == 8
    assert d.fields["lifecycles"] == {"MANUFACTURED": 8}
    (lot,) = d.fields["lots"]
    assert lot["lot"] == world.cm_lot
    assert lot["first_uids"] == [u.hex() for u in world.cm_uids()][:5]


def test_secrets_are_named_never_shown(world: Any) -> None:
    secrets_file = world.icm.path / "family-secrets.cbor"
    d = describe(secrets_file)
    assert (d.kind, d.secret) == ("family-secrets", True)
    out = _dump(d, secrets_file)
    shares = cbor.decode(secrets_file.read_bytes(), limit=4096, what="test")
    for share in shares.values():
        assert not any(f in out for f in _forms(share))
    for name in ("prov-signing.key.pem", "device-ca.key.pem"):
        path = world.icm.path / name
        d = describe(path)
        assert (d.kind, d.secret, d.fields) == ("private-key", True, {})
        body = "".join(path.read_text().splitlines()[1:-1])
        assert body[:40] not in _dump(d, path)


def test_public_key_certificate_and_metadata(world: Any) -> None:
    pub = describe(world.icm.path / "prov-signing.pub.pem")
    assert (pub.kind, pub.fields["key_type"]) == ("public-key", "ec-p256")
    gen = describe(world.oem_dir / "generated" / "signer.pub.pem")
    assert gen.kind == "public-key"
    ca = describe(world.icm.path / "device-ca.pem")
    assert (ca.kind, ca.fields["ca"]) == ("certificate", True)
    assert world.icm.family_id.hex() in ca.fields["subject"]
    assert describe(world.icm.path / "icm.json").kind == "icm-metadata"
    assert describe(world.oem_dir / "oem.json").kind == "oem-metadata"


def test_asset_list_shows_no_key(world: Any) -> None:
    d = describe(world.assets_toml)
    assert d.kind == "asset-list"
    rows = {a["name"]: a for a in d.fields["assets"]}
    assert rows["aes-1"]["source"] == "given in the list"
    assert rows["fw"]["length"] == 40_000
    assert not any(f in _dump(d, world.assets_toml) for f in _forms(KEY1))


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 64, bytes(range(256)), b"hello", b'{"a": 1}', b"\xa4\x01\x02\x03\x04"],
    ids=["empty", "zeros", "bytes", "text", "json", "cbor-map"],
)
def test_unknown_input_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "thing"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a trustprov artifact") as e:
        describe(path)
    assert str(path) in e.value.message


@pytest.mark.parametrize(
    ("source", "kind"),
    [("software", "signed provisioning software"), ("bundle", "bundle"), ("lot", "lot manifest")],
)
def test_damaged_input_says_what_it_was(world: Any, tmp_path: Path, source: str, kind: str) -> None:
    src = {"software": world.software, "bundle": world.bundle, "lot": world.root / "lot.json"}
    data = src[source].read_bytes()
    path = tmp_path / "damaged"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"a damaged {kind}") as e:
        describe(path)
    assert str(path) in e.value.message


def test_options_that_do_not_apply(world: Any, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--key checks signed software"):
        describe(world.bundle, key=world.icm.path / "prov-signing.pub.pem")
    with pytest.raises(InputError, match="--verify checks a lot manifest"):
        describe(world.software, ca=world.icm.path / "device-ca.pem")
    with pytest.raises(InputError, match="is a directory"):
        describe(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        describe(tmp_path / "missing")


def test_another_sqlite_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(InputError, match="neither a chip farm nor a records store"):
        describe(path, database=describe_records)
    assert path.read_bytes() == before  # inspecting changed nothing


@pytest.mark.parametrize("first", [b"\xd2", b"\xd0", b"\xd1", b"\xa4"])
def test_raw_bytes_that_start_like_an_artifact_are_not_called_a_damaged_one(
    tmp_path: Path, first: bytes
) -> None:
    """The first byte of signed software, a sealed value, a manifest or the family secrets
    starts one raw key or firmware file in 85 by chance: that file is no damaged artifact."""
    raw = tmp_path / "key.bin"
    raw.write_bytes(first + bytes(range(1, 32)))
    with pytest.raises(InputError, match="not a trustprov artifact") as refused:
        describe(raw)
    assert "damaged" not in refused.value.message
