"""T10, T11: chip identities and the lot manifest.

The lot manifest (JSON, ICM -> CM and OEM) travels through the CM's hands. Every syntactic tamper
must make `LotManifest.from_json` raise `FormatError`; so must a relabelling that the manifest
itself contradicts (a uid that its certificate does not name, another family's id); and a
certificate re-signed by another CA, however faithfully it copies the genuine one, must fail
``openssl verify -CAfile device-ca.pem``. A chip keeps the certificate the ICM stored: it takes
no other, and one from another CA never verifies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers import Family

from trustprov.errors import FormatError
from trustprov.formats.lot import LotManifest
from trustprov.link import messages

from .attack_helpers import (
    assert_chip_untouched,
    powered,
    reissued,
    report,
    retry_succeeds,
    rogue_ca,
    run,
)

Doc = dict[str, Any]


def _openssl() -> str:
    path = shutil.which("openssl")
    assert path is not None, "openssl is needed to verify certificate chains"
    return path


def _verify(
    ca: Path, certificate_der: bytes, tmp: Path, name: str
) -> subprocess.CompletedProcess[str]:
    pem = tmp / f"{name}.pem"
    cert = x509.load_der_x509_certificate(certificate_der)
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return subprocess.run(
        [_openssl(), "verify", "-CAfile", str(ca), str(pem)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _doc(world: Any) -> Doc:
    return json.loads((world.root / "lot.json").read_bytes())


def _syntax_tampers(world: Any) -> Iterator[tuple[str, bytes]]:
    raw = (world.root / "lot.json").read_bytes()
    for cut in [*range(0, len(raw) - 2, 97), len(raw) - 3, len(raw) - 2]:
        yield f"truncated at {cut}", raw[:cut]
    yield "not JSON", b"\x89PNG\r\n" + raw
    yield "JSON null", b"null"
    yield "JSON list", json.dumps([_doc(world)]).encode()
    yield "trailing garbage", raw + b"{}"

    def edit(what: str, change: Callable[[Doc], Any]) -> tuple[str, bytes]:
        doc = _doc(world)
        change(doc)
        return what, json.dumps(doc).encode()

    yield edit("extra key", lambda d: d.update(signature="00"))
    for key in ("lot", "family", "chips"):
        yield edit(f"no {key}", lambda d, k=key: d.pop(k))
    for lot in ("", "-LOT", "LOT A", "L" * 65, 7, None, "LOT/../A"):
        yield edit(f"lot {lot!r}", lambda d, v=lot: d.update(lot=v))
    for family in ("00" * 7, "00" * 9, "zz" * 8, "", 1234, None, ["00"] * 8):
        yield edit(f"family {family!r}", lambda d, v=family: d.update(family=v))
    yield edit("chips not a list", lambda d: d.update(chips={"0": d["chips"][0]}))
    yield edit("chip not an object", lambda d: d["chips"].append("00" * 16))
    yield edit("chip extra key", lambda d: d["chips"][0].update(key="00"))
    yield edit("chip without uid", lambda d: d["chips"][0].pop("uid"))
    yield edit("chip without certificate", lambda d: d["chips"][0].pop("certificate"))
    for uid in ("00" * 15, "00" * 17, "g" * 32, "", 0, None):
        yield edit(f"uid {uid!r}", lambda d, v=uid: d["chips"][0].update(uid=v))
    yield edit("uid twice", lambda d: d["chips"][1].update(uid=d["chips"][0]["uid"]))
    yield edit(
        "uid twice, other case", lambda d: d["chips"][1].update(uid=d["chips"][0]["uid"].upper())
    )
    yield edit("chip listed twice", lambda d: d["chips"].append(d["chips"][0]))

    def pem(change: Callable[[str], str]) -> Callable[[Doc], None]:
        return lambda d: d["chips"][0].update(certificate=change(d["chips"][0]["certificate"]))

    for what, change in {
        "certificate not text": lambda _: 42,
        "certificate empty": lambda _: "",
        "certificate garbage": lambda _: (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        ),
        "certificate truncated": lambda p: p[: len(p) // 2] + "\n-----END CERTIFICATE-----\n",
        "certificate without its end line": lambda p: p.split("-----END")[0],
        "certificate DER length garbled": lambda p: p.replace("MII", "MIJ", 1),
        "certificate outer tag garbled": lambda p: p.replace("\nMII", "\nNII", 1),
        "certificate as a public key": lambda p: p.replace("CERTIFICATE", "PUBLIC KEY"),
        "certificate oversized": lambda p: p + "A" * 5000,
        "certificate non-ASCII": lambda p: p.replace("MII", "MIé", 1),
    }.items():
        yield edit(what, pem(change))  # type: ignore[arg-type]


def test_attack_syntactically_tampered_lot_manifest_is_refused_by_the_parser(world: Any) -> None:
    genuine = LotManifest.from_json((world.root / "lot.json").read_bytes())
    assert len(genuine.chips) == 8
    accepted = []
    count = 0
    for what, data in _syntax_tampers(world):
        count += 1
        try:
            LotManifest.from_json(data)
        except FormatError:
            continue
        except Exception as e:  # noqa: BLE001 - anything but FormatError is a parser bug
            accepted.append(f"{what}: {type(e).__name__}")
        else:
            accepted.append(f"{what}: accepted")
    assert not accepted, accepted
    report("lot manifest syntax tampers", tampers=count, refused=count)


def test_attack_relabelled_chips_in_a_lot_manifest_are_refused_by_the_parser(
    world: Any, other_family: Family
) -> None:
    """Tampers that keep the JSON well-formed and every certificate genuine, but that the
    manifest itself contradicts: each certificate names its chip's uid (subject CN and
    serialNumber) and its issuer names the family's device CA."""
    theirs = json.loads(other_family.lot_json.read_bytes())

    def edit(change: Callable[[Doc], Any]) -> bytes:
        doc = _doc(world)
        change(doc)
        return json.dumps(doc).encode()

    def swap(d: Doc, key: str) -> None:
        c = d["chips"]
        c[0][key], c[1][key] = c[1][key], c[0][key]

    tampers = {
        "a chip's uid changed": edit(lambda d: d["chips"][0].update(uid="ab" * 16)),
        "two chips' uids swapped": edit(lambda d: swap(d, "uid")),
        "two chips' certificates swapped": edit(lambda d: swap(d, "certificate")),
        "a chip given another chip's certificate": edit(
            lambda d: d["chips"][1].update(certificate=d["chips"][0]["certificate"])
        ),
        "another family's id": edit(lambda d: d.update(family=theirs["family"])),
        "another family's chip spliced in": edit(lambda d: d["chips"].append(theirs["chips"][0])),
    }
    accepted = []
    for what, data in tampers.items():
        try:
            LotManifest.from_json(data)
        except FormatError:
            continue
        accepted.append(what)
    report("lot manifest relabellings", tampers=len(tampers), accepted=len(accepted))
    assert not accepted, f"LotManifest.from_json accepts: {accepted}"


def test_attack_lot_manifest_certificate_resigned_by_another_ca_fails_openssl_verify(
    world: Any, other_family: Family, tmp_path: Path
) -> None:
    """The lot's certificate of one chip replaced by forgeries that copy everything of it (subject,
    key, serial, validity, extensions, the device CA's issuer name) but are signed by another
    key: a rogue CA, a rogue CA named exactly as the device CA, the other family's device CA; and
    the genuine certificate with one byte of its signature changed. The parser refuses those whose
    issuer is not this family's CA; those named as it parse, and none verifies under the device
    CA; the untouched chips still do."""
    ca = world.icm.path / "device-ca.pem"
    device_ca = world.icm.ca_cert
    genuine = LotManifest.from_json((world.root / "lot.json").read_bytes())
    cert = genuine.chips[0].certificate
    rogue_key, rogue_name = rogue_ca()
    twin_key, _ = rogue_ca()
    der = bytearray(cert)
    der[-5] ^= 0x01  # inside the signature value
    forgeries = {
        "re-signed by a rogue CA": reissued(cert, rogue_key, rogue_name),
        "re-signed by a rogue CA named as the device CA": reissued(cert, twin_key),
        "re-signed by the other family's device CA": reissued(cert, other_family.icm.ca_key),
        "signature byte changed": bytes(der),
    }
    for what, forged in forgeries.items():
        doc = _doc(world)
        pem = x509.load_der_x509_certificate(forged).public_bytes(serialization.Encoding.PEM)
        doc["chips"][0]["certificate"] = pem.decode()
        issuer = x509.load_der_x509_certificate(forged).issuer
        if issuer != device_ca.subject:  # the parser sees a CA that is not this family's
            assert issuer in (rogue_name, other_family.icm.ca_cert.subject)
            with pytest.raises(FormatError, match="another family's CA"):
                LotManifest.from_json(json.dumps(doc).encode())
        else:  # named exactly as the device CA: only the signature can tell
            lot = LotManifest.from_json(json.dumps(doc).encode())
            assert lot.chips[0].certificate == forged
        done = _verify(ca, forged, tmp_path, what.replace(" ", "-"))
        assert done.returncode != 0, f"{what}: openssl verified it: {done.stdout}"
    for i, chip in enumerate(genuine.chips):  # the control
        done = _verify(ca, chip.certificate, tmp_path, f"genuine-{i}")
        assert done.returncode == 0, done.stdout + done.stderr
    report("lot manifest certificate forgeries", forged=len(forgeries), verified=0)


def test_attack_chip_certificate_from_another_ca_is_refused(
    world: Any, cm_farm: Path, other_family: Family, tmp_path: Path
) -> None:
    """A chip's own certificate verifies under the device CA; a certificate for the same chip key
    from another CA (or from the other family's CA) does not, and the chip refuses to store any
    certificate once the ICM stored its own."""
    ca = world.icm.path / "device-ca.pem"
    uid = world.cm_uids(cm_farm)[0]
    with powered(cm_farm, uid) as client:
        genuine = client.certificate()
    assert genuine is not None
    assert _verify(ca, genuine, tmp_path, "genuine").returncode == 0
    rogue_key, rogue_name = rogue_ca()
    forged = {
        "rogue CA": reissued(genuine, rogue_key, rogue_name),
        "rogue CA named as the device CA": reissued(genuine, rogue_ca()[0]),
        "the other family's device CA": reissued(genuine, other_family.icm.ca_key),
    }
    their_lot = LotManifest.from_json(other_family.lot_json.read_bytes())
    forged["the other family's chip"] = their_lot.chips[1].certificate
    codes = {}
    for what, der in forged.items():
        done = _verify(ca, der, tmp_path, what.replace(" ", "-").replace("'", ""))
        assert done.returncode != 0, f"{what}: openssl verified it"
        with powered(cm_farm, uid) as client:
            store = messages.encode_request("rom.store-certificate", {"certificate": der})
            codes[what] = run(client, [store]).code
            assert client.certificate() == genuine
    assert set(codes.values()) == {"lifecycle"}, codes
    assert_chip_untouched(cm_farm, uid)
    report("chip certificates from other CAs", forged=len(forged), stored=0)
    retry_succeeds(world, cm_farm, uid)
