"""The C chip (chip-c/) judged like silicon: the conformance suite and the link-message vectors
over a pseudo-terminal and TCP, driven by the host's own link (trustprov.link).

The cases it passes are listed by name and must pass; any it does not pass are listed by name too
and must still fail, so a case that starts passing (or stops) changes this file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.conformance.cases import CASES
from trustprov.conformance.suite import Context, run_cases
from trustprov.formats.attestation import Attestation
from trustprov.formats.bundle import Bundle
from trustprov.formats.frame import Frame, FrameDecoder, FrameType, encode_frame, encode_hello
from trustprov.formats.receipt import Receipt
from trustprov.link.address import open_link
from trustprov.link.client import ChipClient, PreparedBundle
from trustprov.link.messages import decode_response

from .chipc import PROGRAM, ROOT, SOFTWARE, TEST_PROGRAM, ChipProcess, build

IDLE = 0.3
# not the link-message vectors' UID: 15 of its bytes are the vector asset aes-1's, which
# secrets.scan looks for in every answer
UID = "5eed0c0de0000000000000000000c0c0"

# every case of the suite: the C chip passes them all (NOT_YET names any that it stops passing
# while a part of it is being reworked)
PASSING = [c.name for c in CASES]
NOT_YET: list[str] = []


def test_the_lists_name_every_case_once() -> None:
    assert sorted(PASSING + NOT_YET) == sorted(c.name for c in CASES)


@pytest.mark.parametrize("listen", ["pty", "tcp://127.0.0.1:0"])
def test_the_conformance_suite_on_a_c_chip(tmp_path: Path, listen: str) -> None:
    build()
    chip = ChipProcess(
        PROGRAM,
        [
            "--nvm",
            str(tmp_path / "chip.nvm"),
            "--uid",
            UID,
            "--idle-timeout",
            str(IDLE),
            "--listen",
            listen,
        ],
    )
    try:
        scheme = "serial:///dev/" if listen == "pty" else "tcp://127.0.0.1:"
        assert chip.port.startswith(scheme)
        ctx = Context(chip.port, code=SOFTWARE.read_bytes(), idle_timeout=IDLE)
        results = {r.name: r for r in run_cases(ctx, CASES)}
    finally:
        assert chip.stop() == 0  # SIGTERM stops it cleanly
    failed = [f"{n}: {results[n].evidence}" for n in PASSING if not results[n].passed]
    assert not failed, failed
    now_passing = [n for n in NOT_YET if results[n].passed]
    assert not now_passing, f"move to PASSING: {now_passing}"


def test_a_new_nvm_file_is_a_blank_chip_with_its_uid_and_keeps_its_state(tmp_path: Path) -> None:
    build()
    nvm = tmp_path / "chip.nvm"
    for _ in range(2):  # the second run powers the same chip on again from its file
        chip = ChipProcess(PROGRAM, ["--nvm", str(nvm), "--uid", UID, "--listen", "pty"])
        try:
            link = open_link(chip.port)
            try:
                answer = link.exchange(bytes.fromhex("a2626f706a726f6d2e7374617475736461726773a0"))
            finally:
                link.close()
        finally:
            chip.stop()
        assert UID in answer.hex()
        assert b"BLANK" in answer
    assert nvm.stat().st_mode & 0o777 == 0o600


def test_an_empty_nvm_file_is_a_blank_chip_and_a_foreign_one_is_refused(tmp_path: Path) -> None:
    """protocol.md 13.4: a tray's chip (`chip blank --tray`) is an empty file, a blank chip with
    the UID and lot it is started with; a file that is not this program's state is refused."""
    build()
    nvm = tmp_path / "chip.nvm"
    nvm.write_bytes(b"")
    nvm.chmod(0o600)
    chip = ChipProcess(
        PROGRAM, ["--nvm", str(nvm), "--uid", UID, "--lot", "TRAY-1", "--listen", "pty"]
    )
    try:
        link = open_link(chip.port)
        try:
            answer = decode_response(link.exchange(messages_status()))
        finally:
            link.close()
    finally:
        chip.stop()
    assert (answer["uid"].hex(), answer["lot"], answer["lifecycle"]) == (UID, "TRAY-1", "BLANK")
    foreign = tmp_path / "foreign.nvm"
    foreign.write_bytes(b"TPNVM001" + bytes(100))
    done = subprocess.run(
        [str(PROGRAM), "--nvm", str(foreign), "--uid", UID, "--stdio"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert done.returncode != 0
    assert foreign.read_bytes() == b"TPNVM001" + bytes(100)


def messages_status() -> bytes:
    return bytes.fromhex("a2626f706a726f6d2e7374617475736461726773a0")  # rom.status, no args


def test_link_message_vectors_replay_on_the_c_chip(tmp_path: Path) -> None:
    """protocol.md 8.5: TRNG fed from the file's stream, the firmware image the file names; every
    step answers the same code, every ok answer byte for byte but its randomized bytes (the
    signatures of the receipt and of the attestation token), which verify under the chip's
    identity key."""
    build()
    vectors = json.loads((ROOT / "tests/vectors/link_messages.json").read_text())
    code = tmp_path / "code.cbor"
    code.write_bytes(bytes.fromhex(vectors["chip"]["code_archive"]))
    chip = ChipProcess(
        TEST_PROGRAM,
        [
            "--nvm",
            str(tmp_path / "chip.nvm"),
            "--uid",
            vectors["chip"]["uid"],
            "--lot",
            vectors["chip"]["lot"],
            "--test-trng-label",
            vectors["chip"]["trng_label"],
            "--test-code",
            str(code),
            "--listen",
            "pty",
        ],
    )
    receipts = []
    tokens: list[tuple[bytes, bytes]] = []
    certificate = None
    try:
        link = open_link(chip.port)
        try:
            for step in vectors["steps"]:
                answer = link.exchange(bytes.fromhex(step["request"]))
                want = bytes.fromhex(step["answer"])
                name = step["name"]
                if want.startswith(bytes.fromhex("a2656572726f72")):  # an error: the code only
                    code_end = 8 + want[7] - 0x60
                    assert answer[:code_end] == want[:code_end], name
                    continue
                if "random" in step:
                    offset, length = step["random"]
                    assert len(answer) == len(want), name
                    spliced = answer[:offset] + want[offset : offset + length]
                    assert spliced + answer[offset + length :] == want, name
                    ok = decode_response(answer)
                    if "token" in ok:
                        challenge = cbor2.loads(bytes.fromhex(step["request"]))["args"]["challenge"]
                        tokens.append((ok["token"], challenge))
                    else:
                        receipts.append(ok["receipt"])
                else:
                    assert answer == want, name
                if name == "rom.identity":
                    certificate = decode_response(answer)["certificate"]
        finally:
            link.close()
    finally:
        chip.stop()
    assert certificate is not None
    assert receipts
    key = x509.load_der_x509_certificate(certificate).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    for receipt in receipts:
        Receipt.from_bytes(receipt).verify(key)
    assert tokens  # rom.attest (8.8): the chip's token over the vector's challenge
    for token, challenge in tokens:
        Attestation.from_bytes(token).verify(key, challenge)


def test_the_c_chip_installs_the_vector_bundle_and_signs_a_receipt_that_verifies(
    tmp_path: Path,
) -> None:
    """FIG. 3 end to end on the C chip: the installed digest is the vector's, the receipt
    (protocol.md 6.8) parses and verifies under the chip's certified identity key, and a power
    cycle (a new process on the same NVM file) keeps the install."""
    build()
    nvm = tmp_path / "chip.nvm"
    chip = ChipProcess(PROGRAM, ["--nvm", str(nvm), "--uid", UID, "--listen", "pty"])
    try:
        ctx = Context(chip.port, code=SOFTWARE.read_bytes())
        results = run_cases(ctx, [c for c in CASES if c.name == "manufacture.burn"])
        assert results[0].passed, results[0].evidence
        with ctx.client() as client:
            ctx.boot(client)
            prepared = ctx.prepared()
            client.send(prepared.begin)
            for request in prepared.chunks:
                client.send(request)
            done = client.call("cm.finish")
            certificate = client.certificate()
    finally:
        chip.stop()
    vector = ctx.family.vector
    receipt = Receipt.from_bytes(done["receipt"])
    assert certificate is not None
    assert receipt.certificate == certificate
    key = x509.load_der_x509_certificate(certificate).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    receipt.verify(key)
    claims = receipt.claims
    assert claims.uid.hex() == UID
    assert claims.installed_digest == vector.installed_digest
    assert claims.domain_id == vector.domain_id == done["domain-id"]
    assert (claims.counter, claims.lifecycle, claims.epoch) == (1, 2, done["epoch"])

    chip = ChipProcess(PROGRAM, ["--nvm", str(nvm), "--listen", "pty"])
    try:
        link = open_link(chip.port)
        try:
            status = ChipClient(link).status(digests=True)
        finally:
            link.close()
    finally:
        chip.stop()
    assert status["installed-digest"] == vector.installed_digest
    assert status["lifecycle"] == "PROVISIONED"
    assert sorted(status["installed"]["regions"]) == ["app", "config"]


def test_a_c_chip_seals_a_bundle_with_a_device_key_and_installs_it(tmp_path: Path) -> None:
    """Both ends of FIG. 2/3 on one C chip: it seals a config and a device key (6.8), then
    installs that bundle; the device key is made in the chip, its public key is in the receipt
    only, and the installed digest is the one a host computes from the manifest alone."""
    build()
    chip = ChipProcess(
        PROGRAM, ["--nvm", str(tmp_path / "chip.nvm"), "--uid", UID, "--listen", "pty"]
    )
    config = b"mode=production\n"
    try:
        ctx = Context(chip.port, code=SOFTWARE.read_bytes())
        assert run_cases(ctx, [c for c in CASES if c.name == "manufacture.burn"])[0].passed
        with ctx.client() as client:
            ctx.boot(client)
            sealed = client.keygen(bytes(range(16)), ctx.params())
            client.seal_asset("cfg", "config", len(config), {"region": "config"})
            chunk = client.seal_chunk(0, config)
            client.seal_asset("cloud", "device-key", 1, {"key-type": "ec-p256", "slot": 9})
            manifest = client.seal_finish()
            bundle = Bundle.from_bytes(cbor2.dumps(["trustprov-bundle", 1, manifest, [[chunk]]]))
            prepared = PreparedBundle.prepare(bundle, sealed["enc-oem-share"])
            done = client.provision(prepared)
            status = client.status(digests=True)
            certificate = client.certificate()
    finally:
        chip.stop()
    assert certificate is not None
    receipt = Receipt.from_bytes(done["receipt"])
    key = x509.load_der_x509_certificate(certificate).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    receipt.verify(key)
    (device_key,) = receipt.claims.device_keys
    assert (device_key.slot, device_key.name) == (9, "cloud")
    slot = status["installed"]["slots"][9]
    assert slot["key-type"] == "ec-p256"
    assert slot["public-key"] == device_key.public_key
    digest = prepared.installed_digest(done["domain-id"])
    assert status["installed-digest"] == digest == receipt.claims.installed_digest


def test_the_link_on_standard_input_and_output(tmp_path: Path) -> None:
    """`--stdio` (for `chip serve --exec`): the same link over the program's stdin and stdout;
    it ends when its input does."""
    build()
    link_id = bytes.fromhex("6c1d0a57")
    request = bytes.fromhex("a2626f706a726f6d2e7374617475736461726773a0")  # rom.status
    proc = subprocess.Popen(
        [str(PROGRAM), "--nvm", str(tmp_path / "chip.nvm"), "--uid", UID, "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    decoder = FrameDecoder()
    proc.stdin.write(encode_frame(FrameType.HELLO, payload=encode_hello(link_id)))
    proc.stdin.flush()
    frames: list[Frame] = []
    while not frames:
        frames = decoder.feed(os.read(proc.stdout.fileno(), 4096))
    (answer,) = frames
    assert answer.kind == FrameType.HELLO_ANSWER
    assert answer.payload[12:16] == link_id
    first = int.from_bytes(answer.payload[8:10], "big") ^ int.from_bytes(link_id[:2], "big")
    proc.stdin.write(encode_frame(FrameType.REQUEST, first, 0, request))
    proc.stdin.close()
    frames = []
    while not frames:
        frames = decoder.feed(os.read(proc.stdout.fileno(), 4096))
    (response,) = frames
    assert response.kind == FrameType.RESPONSE
    assert response.seq == first
    assert bytes(response.payload).startswith(bytes.fromhex("a1626f6b"))
    assert UID in bytes(response.payload).hex()
    assert proc.wait(timeout=10) == 0  # its input ended: the program ends
    proc.stdout.close()
