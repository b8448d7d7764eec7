"""`trustprov icm init --keys pkcs11:...`: the ICM's keys made in a SoftHSM2 token, through the CLI.

The PIN comes from the environment here (TRUSTPROV_PKCS11_PIN), as an operator's script would
give it; a PIN in the URI is refused before anything is made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from boards import BoardStarter
from cryptography import x509
from softhsm import PIN, SoftHsm

from trustprov.roles.icm.keyref import PIN_ENV
from trustprov.roles.icm.signer import close_sessions
from trustprov.roles.lots import load_lot_key, read_lot

from .helpers import assert_error, ok, run


@pytest.fixture
def pin_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, PIN)
    close_sessions()  # so that the session is opened, and the PIN read, by the command


def test_init_sign_manufacture_with_keys_in_the_token(
    softhsm: SoftHsm, pin_from_env: None, tmp_path: Path
) -> None:
    d = tmp_path / "icm"
    out = ok("icm", "init", d, "--keys", softhsm.uri(pin_source=False)).stdout
    assert "PKCS#11 token" in out
    refs = json.loads((d / "icm.json").read_text())["keys"]
    assert refs["device-ca"].startswith("pkcs11:token=trustprov-test;object=trustprov-")
    assert not (d / "prov-signing.key.pem").exists()
    assert not (d / "device-ca.key.pem").exists()
    sw = tmp_path / "sw.cose"
    ok("icm", "sign-software", "--icm", d, "--out", sw)
    ok("oem", "verify-software", sw, "--key", d / "prov-signing.pub.pem")
    ok(
        "icm", "manufacture", "--icm", d, "--farm", tmp_path / "f.farm",
        "--lot", "L", "--count", "2", "--manifest", tmp_path / "lot.json",
    )  # fmt: skip
    close_sessions()


def test_a_pin_in_the_uri_is_refused(softhsm: SoftHsm, tmp_path: Path) -> None:
    uri = softhsm.uri(pin_source=False) + "&pin-value=1234-test"
    result = run("icm", "init", tmp_path / "icm", "--keys", uri)
    message = assert_error(result, exit_code=2, match="never part of a key reference")
    assert "1234-test" not in message
    assert not (tmp_path / "icm").exists()


def test_no_pin_anywhere_is_one_line_of_bad_input(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    close_sessions()
    result = run("icm", "init", tmp_path / "icm", "--keys", softhsm.uri(pin_source=False))
    assert_error(result, exit_code=2, match=PIN_ENV)
    assert not (tmp_path / "icm").exists()


def test_demo_runs_with_the_icm_keys_in_the_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    """`make demo ICM_KEYS=pkcs11` in small: the whole flow, no ICM private key in a file."""
    out = tmp_path / "demo"
    result = ok("demo", "--chips", "3", "--out", out, "--icm-keys", softhsm.uri(), "--json")
    summary = json.loads(result.stdout)
    assert (summary["provisioned"], summary["failed"]) == (3, 0)
    names = {p.name for p in (out / "icm").iterdir()}
    assert not names & {"prov-signing.key.pem", "device-ca.key.pem", "family-secrets.cbor"}
    assert "family-secrets.wrapped.cbor" in names
    close_sessions()


def test_the_icms_line_over_a_board_certifies_with_the_token(
    softhsm: SoftHsm, pin_from_env: None, tmp_path: Path, start_board: BoardStarter
) -> None:
    """`icm manufacture --board`: the device CA's key in the token signs each chip's
    certificate, as `--farm` does (one code path: roles.icm.certs.certify)."""
    d = tmp_path / "icm"
    ok("icm", "init", d, "--keys", softhsm.uri(pin_source=False))
    farm = tmp_path / "f.farm"
    ok("chip", "blank", "--farm", farm, "--count", "2", "--lot", "LT")
    board = start_board(farm)
    s = json.loads(
        ok(
            "icm", "manufacture", "--icm", d, "--lot", "LT", "--manifest", tmp_path / "lt.json",
            "--board", board.handler, "--json",
        ).stdout
    )  # fmt: skip
    assert (s["made"], s["failed"]) == (2, {})
    lot = read_lot(tmp_path / "lt.json", load_lot_key(d / "lot-signing.pub.pem"))
    ca = x509.load_pem_x509_certificate((d / "device-ca.pem").read_bytes())
    for chip in lot.chips:
        x509.load_der_x509_certificate(chip.certificate).verify_directly_issued_by(ca)
    close_sessions()
