"""The ICM's keys in a PKCS#11 token (SoftHSM2): key references, the whole flow, what it sees.

``token_world`` runs the whole flow (icm init --keys, sign-software, manufacture, the OEM's
keygen on its chip, CM provisioning) with every EC key of the ICM made inside the token; the
hybrid's ML-DSA key stays in a 0600 file because SoftHSM2 2.6 has no ML-DSA.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers import Bench, assert_holds_world_assets, build_world, windows, world_job
from pkcs11 import Attribute, ObjectClass
from softhsm import SoftHsm

from trustprov.errors import InputError
from trustprov.formats.lot import LotManifest
from trustprov.link.farm_link import FarmLink
from trustprov.roles import icm
from trustprov.roles.cm import provision_chip
from trustprov.roles.icm import custody
from trustprov.roles.icm import family as icm_family
from trustprov.roles.icm.custody import WRAPPED_FILE
from trustprov.roles.icm.keyref import PIN_ENV, Pkcs11Uri, parse_pkcs11_uri, read_pin
from trustprov.roles.icm.signer import TokenEcKey, close_sessions, session
from trustprov.roles.lots import load_lot_key, verify_lot_file

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


# -- key references (no token needed) -------------------------------------------------------------
def test_uri_parses_and_prints_back() -> None:
    text = (
        "pkcs11:token=icm;object=prov%20signing;id=%01%FF"
        f"?module-path={MODULE}&pin-source=file:/run/icm.pin"
    )
    uri = parse_pkcs11_uri(text)
    assert uri == Pkcs11Uri("icm", MODULE, "prov signing", b"\x01\xff", "file:/run/icm.pin")
    assert parse_pkcs11_uri(str(uri)) == uri
    assert parse_pkcs11_uri(str(uri.with_object("other"))).object == "other"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"pkcs11:token=icm?module-path={MODULE}&pin-value=1234", "never part"),
        (f"pkcs11:token=icm;pin=1234?module-path={MODULE}", "never part"),
        (f"pkcs11:object=k?module-path={MODULE}", "token"),
        ("pkcs11:token=icm", "module-path"),
        (f"pkcs11:token=icm;serial=7?module-path={MODULE}", "unsupported"),
        (f"pkcs11:token=icm;token=b?module-path={MODULE}", "twice"),
        (f"pkcs11:token=icm?module-path={MODULE}&pin-source=env:PIN", "file:"),
        ("/path/to/key.pem", "pkcs11:"),
    ],
)
def test_bad_uris_are_refused(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as e:
        parse_pkcs11_uri(text, env={})
    assert "1234" not in e.value.message


def test_module_path_may_come_from_the_environment() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=icm", env={"TRUSTPROV_PKCS11_MODULE": MODULE})
    assert uri.module_path == MODULE


def test_pin_comes_from_the_file_then_the_environment_then_a_prompt(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("from-file\n")
    with_file = Pkcs11Uri("icm", MODULE, pin_source=f"file:{pin_file}")
    bare = Pkcs11Uri("icm", MODULE)
    assert read_pin(with_file, env={PIN_ENV: "from-env"}) == "from-file"
    assert read_pin(bare, env={PIN_ENV: "from-env"}) == "from-env"
    assert read_pin(bare, env={}, prompt=lambda _: "typed") == "typed"
    with pytest.raises(InputError, match=PIN_ENV):
        read_pin(bare, env={})
    with pytest.raises(InputError, match="PIN file"):
        read_pin(Pkcs11Uri("icm", MODULE, pin_source=f"file:{tmp_path / 'none'}"), env={})


# -- the whole flow with the keys in the token -------------------------------------------------
@pytest.fixture(scope="module", params=["ES256", "ES256+ML-DSA-65"])
def token_world(
    request: pytest.FixtureRequest, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    alg: str = request.param
    return build_world(tmp_path_factory.mktemp(f"token-{alg}"), 3, alg, keys=softhsm.uri())


def test_whole_flow_with_every_icm_key_in_the_token(token_world: Any, tmp_path: Path) -> None:
    made = token_world.icm
    meta = json.loads((made.path / "icm.json").read_text())
    refs = [*meta["keys"]["prov-signing"], meta["keys"]["device-ca"]]
    in_token = [r for r in refs if r.startswith("pkcs11:")]
    assert meta["keys"]["device-ca"] in in_token
    assert meta["keys"]["prov-signing"][0] in in_token  # the EC signing key
    for ref in set(refs) - set(in_token):  # the ML-DSA key of the hybrid: a 0600 file
        assert ref == "prov-signing-2.key.pem"
        assert stat.S_IMODE((made.path / ref).stat().st_mode) == 0o600
    assert "1234" not in (made.path / "icm.json").read_text()  # references, never the PIN
    assert not list(made.path.glob("prov-signing.key.pem"))
    assert not list(made.path.glob("device-ca.key.pem"))
    assert isinstance(made.ca_key, TokenEcKey)
    assert isinstance(made.signing_key, TokenEcKey)
    farm = token_world.fresh_cm_farm(tmp_path)
    job = world_job(token_world)
    with FarmLink(farm) as link:
        for uid in token_world.cm_uids(farm):
            with link.connect(uid) as client:
                outcome = provision_chip(client, uid, job)
            assert outcome.result == "provisioned", (outcome.error_code, outcome.error)
    with Bench(farm) as bench:
        for uid in token_world.cm_uids(farm):
            assert_holds_world_assets(bench.read(uid), token_world.public_keys)


def test_certificates_signed_in_the_token_verify(token_world: Any) -> None:
    lot = LotManifest.from_json((token_world.root / "lot.json").read_bytes())
    ca = token_world.icm.ca_cert
    ca.verify_directly_issued_by(ca)
    pem = token_world.root / "chip.pem"
    ca_pem = token_world.icm.path / "device-ca.pem"
    for chip in lot.chips:
        cert = x509.load_der_x509_certificate(chip.certificate)
        cert.verify_directly_issued_by(ca)
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        result = subprocess.run(
            ["openssl", "verify", "-CAfile", ca_pem, pem],
            check=False,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr


def test_lots_are_signed_in_the_token(token_world: Any) -> None:
    """The lot-signing key is made in the token like the others; its lots verify under the
    lot-signing.pub.pem that icm init wrote."""
    made = token_world.icm
    meta = json.loads((made.path / "icm.json").read_text())
    assert meta["keys"]["lot-signing"].startswith("pkcs11:")
    assert isinstance(made.lot_key, TokenEcKey)
    assert not list(made.path.glob("lot-signing.key.pem"))
    key = load_lot_key(made.path / "lot-signing.pub.pem")
    assert verify_lot_file(token_world.root / "lot.json", key).chips == 3


def test_token_keys_are_sensitive_and_never_extractable(token_world: Any) -> None:
    for key in (token_world.icm.ca_key, token_world.icm.signing_key, token_world.icm.lot_key):
        assert isinstance(key, TokenEcKey)
        s = session(key.uri)
        (private,) = s.get_objects(
            {Attribute.LABEL: key.uri.object, Attribute.CLASS: ObjectClass.PRIVATE_KEY}
        )
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(TypeError):
            key.private_numbers()
        with pytest.raises(TypeError):
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )


class _Recorder:
    """Stands in for the token's key object: records what the token would have been sent."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[int] = []

    def sign(self, data: bytes, **kwargs: Any) -> bytes:
        self.sent.append(len(data))
        result: bytes = self.inner.sign(data, **kwargs)
        return result


@pytest.fixture
def recorded(token_world: Any) -> Iterator[list[_Recorder]]:
    keys = [token_world.icm.signing_key, token_world.icm.ca_key]
    recorders = []
    for k in keys:
        assert isinstance(k, TokenEcKey)
        r = _Recorder(k._private)
        k._private = r
        recorders.append(r)
    yield recorders
    for k, r in zip(keys, recorders, strict=True):
        k._private = r.inner  # type: ignore[attr-defined]


def test_the_token_is_sent_digests_never_images(
    token_world: Any, recorded: list[_Recorder], tmp_path: Path
) -> None:
    software_signer, ca_signer = recorded
    sw = icm.sign_software(token_world.icm, tmp_path / "s.cose")
    assert len(sw.code) > 10_000
    assert software_signer.sent == [32]  # SHA-256 of the Sig_structure, nothing else
    icm.manufacture(token_world.icm, tmp_path / "f.farm", "T", 2, tmp_path / "lot.json")
    assert ca_signer.sent == [32, 32]  # one digest per chip certificate


def test_a_wrong_pin_or_token_is_one_line_of_bad_input(softhsm: SoftHsm, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("0000\n")
    close_sessions()
    try:
        for uri, match in (
            (
                f"pkcs11:token=trustprov-test?module-path={softhsm.module}&pin-source=file:{wrong}",
                "log in",
            ),
            (f"pkcs11:token=no-such-token?module-path={softhsm.module}", "not found"),
            (f"pkcs11:token=x?module-path={tmp_path / 'none.so'}", "module"),
        ):
            with pytest.raises(InputError, match=match) as e:
                icm.init(tmp_path / "icm", keys=uri)
            assert "\n" not in e.value.message
            assert "0000" not in e.value.message
            assert not (tmp_path / "icm").exists()
    finally:
        close_sessions()


def test_a_damaged_key_reference_is_refused(token_world: Any, tmp_path: Path) -> None:
    d = tmp_path / "icm"
    shutil.copytree(token_world.icm.path, d)
    meta = json.loads((d / "icm.json").read_text())
    for keys in ({"prov-signing": [], "device-ca": "x"}, {"prov-signing": "x"}):
        (d / "icm.json").write_text(json.dumps({**meta, "keys": keys}))
        with pytest.raises(InputError, match="key references"):
            icm.Icm.load(d)
    ref = meta["keys"]["device-ca"].replace("device-ca", "no-such-key")
    (d / "icm.json").write_text(json.dumps({**meta, "keys": {**meta["keys"], "device-ca": ref}}))
    with pytest.raises(InputError, match="no single key pair"):
        icm.Icm.load(d)


# -- the family secrets, wrapped under a key in the token ---------------------------------------
def test_family_secrets_rest_wrapped_under_a_token_key(token_world: Any) -> None:
    made = token_world.icm
    assert json.loads((made.path / "icm.json").read_text())["secrets"] == WRAPPED_FILE
    assert not (made.path / "family-secrets.cbor").exists()
    wrapped = (made.path / WRAPPED_FILE).read_bytes()
    assert stat.S_IMODE((made.path / WRAPPED_FILE).stat().st_mode) == 0o600
    image = made.immutable
    for share in (image.hw_share, image.rom_share, image.k_oem_share, image.k_oem_master_share):
        for window in windows(share, 8, 4):
            assert window not in wrapped
    uri = parse_pkcs11_uri(cbor2.loads(wrapped)["key"])
    (key,) = session(uri).get_objects(
        {Attribute.LABEL: uri.object, Attribute.CLASS: ObjectClass.SECRET_KEY}
    )
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False


def test_family_secrets_are_unwrapped_only_while_a_lot_is_made(
    token_world: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []
    real = custody.token_gcm_decrypt

    def counting(*args: Any) -> bytes:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(custody, "token_gcm_decrypt", counting)
    made = icm.Icm.load(token_world.icm.path)
    icm.sign_software(made, tmp_path / "s.cose")
    assert calls == []
    icm.manufacture(made, tmp_path / "f.farm", "W", 2, tmp_path / "lot.json")
    assert calls == [1]  # once for the lot, not per chip, and not kept


def test_tampered_wrapped_secrets_make_no_chip(token_world: Any, tmp_path: Path) -> None:
    d = tmp_path / "icm"
    shutil.copytree(token_world.icm.path, d)
    wrapped = cbor2.loads((d / WRAPPED_FILE).read_bytes())
    ct = bytearray(wrapped["ciphertext"])
    ct[3] ^= 0x01
    (d / WRAPPED_FILE).write_bytes(cbor2.dumps({**wrapped, "ciphertext": bytes(ct)}))
    made = icm.Icm.load(d)  # nothing is opened to load
    with pytest.raises(InputError, match="do not open"):
        icm.manufacture(made, tmp_path / "f.farm", "X", 1, tmp_path / "lot.json")
    assert not (tmp_path / "lot.json").exists()
    assert not (tmp_path / "f.farm").exists()  # refused before the farm is even opened


def test_a_failed_init_leaves_no_key_in_the_token(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    family = bytes.fromhex("f00dfeedf00dfeed")
    stream = iter([family])

    def rng(n: int) -> bytes:
        return next(stream, None) or bytes(n)

    prefix = f"trustprov-{family.hex()}-"
    uri = parse_pkcs11_uri(softhsm.uri())
    made: list[str] = []

    def labels() -> list[str]:
        return [str(o[Attribute.LABEL]) for o in session(uri).get_objects()]

    def broken(*_args: Any) -> None:
        made.extend(x for x in labels() if x.startswith(prefix))
        raise OSError("disk full")

    # after the keys were made in the token
    monkeypatch.setattr(icm_family, "store_secrets", broken)
    with pytest.raises(OSError, match="disk full"):
        icm.init(tmp_path / "icm", keys=softhsm.uri(), rng=rng)
    assert not (tmp_path / "icm").exists()
    made_roles = ["device-ca", "lot-signing", "prov-signing"]
    assert sorted(set(made)) == [prefix + r for r in made_roles]  # made, then ...
    assert not [x for x in labels() if x.startswith(prefix)]  # ... removed
