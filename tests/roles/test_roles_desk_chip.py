"""The OEM's desk chip is checked against the device CA before it is sent anything: a chip whose
certificate another CA signed (even one that copies the device CA's name), that names another
chip, or that has none, is refused after the two reads that identify it, and nothing else; a
chip that shows a genuine chip's identity without its key fails the signed challenge after
them (`rom.attest`)."""

from __future__ import annotations

import dataclasses
import datetime
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.errors import InputError, VerificationError
from trustprov.link import messages
from trustprov.link.client import ChipClient
from trustprov.link.port import ChipPort
from trustprov.roles import oem
from trustprov.roles.oem import assets as asset_list
from trustprov.roles.oem.desk_chip import check_chip, load_ca


class RecordingPort:
    """The chip's port, with every op the host sent it written down."""

    def __init__(self, port: ChipPort) -> None:
        self.port = port
        self.ops: list[str] = []

    def exchange(self, request: bytes) -> bytes:
        self.ops.append(messages.decode_request(request)[0])
        return self.port.handle(request)


def _chip(farm_path: Path, uid: bytes) -> tuple[ChipClient, RecordingPort, Farm]:
    farm = Farm(farm_path)
    wire = RecordingPort(ChipPort(Chip(farm, farm.load(uid))))
    return ChipClient(wire), wire, farm


def _ca_path(world: Any) -> Path:
    return Path(world.icm.path) / "device-ca.pem"


def _impostor_ca(genuine: x509.Certificate, tmp_path: Path) -> Path:
    """A self-signed CA with the device CA's very subject, and a key of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(genuine.subject)
        .issuer_name(genuine.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "impostor-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_the_genuine_chip_passes_after_two_reads_and_a_signed_challenge(world: Any) -> None:
    chip, wire, farm = _chip(world.oem_farm, world.oem_uid)
    try:
        status = check_chip(chip, load_ca(_ca_path(world)), "desk")
    finally:
        farm.close()
    assert status["uid"] == world.oem_uid
    assert wire.ops == ["rom.status", "rom.identity", "rom.attest"]


class Emulator(RecordingPort):
    """A chip (or an emulator) that shows another, genuine chip's UID and certificate: both
    reads are rewritten; what it signs it can only sign with its own key."""

    def __init__(self, port: ChipPort, uid: bytes, certificate: bytes) -> None:
        super().__init__(port)
        self.uid, self.cert = uid, certificate

    def exchange(self, request: bytes) -> bytes:
        answer = super().exchange(request)
        said = messages.decode_response(answer)
        if self.ops[-1] == "rom.status":
            return messages.encode_ok({**said, "uid": self.uid})
        if self.ops[-1] == "rom.identity":
            return messages.encode_ok({"certificate": self.cert})
        return answer


def test_a_chip_showing_another_chips_identity_fails_the_signed_challenge(world: Any) -> None:
    cm = Farm(world.cm_farm)
    genuine = cm.load(world.cm_uids()[0])
    cm.close()
    assert genuine.certificate is not None
    farm = Farm(world.oem_farm)
    wire = Emulator(
        ChipPort(Chip(farm, farm.load(world.oem_uid))), genuine.uid, genuine.certificate
    )
    try:
        with pytest.raises(VerificationError, match="does not hold its certificate's key") as e:
            check_chip(ChipClient(wire), load_ca(_ca_path(world)), "desk")
    finally:
        farm.close()
    assert e.value.code == "bad-certificate"
    assert wire.ops == ["rom.status", "rom.identity", "rom.attest"]  # and nothing after


def test_a_ca_that_copies_the_device_cas_name_is_refused(world: Any, tmp_path: Path) -> None:
    impostor = load_ca(_impostor_ca(load_ca(_ca_path(world)), tmp_path))
    chip, wire, farm = _chip(world.oem_farm, world.oem_uid)
    try:
        with pytest.raises(VerificationError) as e:
            check_chip(chip, impostor, "desk")
    finally:
        farm.close()
    assert e.value.code == "bad-certificate"
    assert wire.ops == ["rom.status", "rom.identity"]  # nothing but the reads


def test_a_certificate_of_another_chip_is_refused(world: Any, tmp_path: Path) -> None:
    """A chip that shows a genuine certificate, but another chip's (the CM's first)."""
    farm_path = tmp_path / "oem.farm"
    shutil.copyfile(world.oem_farm, farm_path)
    cm = Farm(world.cm_farm)
    other = cm.load(world.cm_uids()[0]).certificate
    cm.close()
    farm = Farm(farm_path)
    state = farm.load(world.oem_uid)
    farm.save(dataclasses.replace(state, certificate=other))
    farm.close()
    chip, wire, farm = _chip(farm_path, world.oem_uid)
    try:
        with pytest.raises(VerificationError, match="not issued for it"):
            check_chip(chip, load_ca(_ca_path(world)), "desk")
    finally:
        farm.close()
    assert wire.ops == ["rom.status", "rom.identity"]


def test_a_blank_chip_is_refused(world: Any, tmp_path: Path) -> None:
    farm = Farm(tmp_path / "blank.farm", create=True)
    farm.add_blank(bytes(16), "blank")
    farm.close()
    chip, wire, farm = _chip(tmp_path / "blank.farm", bytes(16))
    try:
        with pytest.raises(InputError, match="not manufactured"):
            check_chip(chip, load_ca(_ca_path(world)), "desk")
    finally:
        farm.close()
    assert wire.ops == ["rom.status"]


def test_keygen_checks_a_farm_chip_too_when_given_the_ca(world: Any, tmp_path: Path) -> None:
    impostor = _impostor_ca(load_ca(_ca_path(world)), tmp_path)
    with pytest.raises(VerificationError):
        oem.keygen(
            world.oem_farm,
            world.oem_uid,
            ca=impostor,
            software_path=world.software,
            assets=asset_list.load(world.root / "assets" / "assets.toml"),
            out=tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


def test_a_ca_file_that_is_not_a_certificate_is_input_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    with pytest.raises(InputError, match=r"not an X\.509 certificate"):
        load_ca(tmp_path / "ca.pem")
