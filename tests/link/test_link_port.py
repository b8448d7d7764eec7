"""The chip's I/O port and the wire format: every bad request is a refusal, never a crash."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import Bench, world_job

from trustprov.errors import ChipRefused, TransportError
from trustprov.firmware import commands
from trustprov.firmware.commands import ProvisioningSoftware
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS
from trustprov.link import messages
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.link.port import ChipPort
from trustprov.link.transport import InProcessLink

MALFORMED = {
    "empty": b"",
    "not cbor": b"\xff\xff",
    "array": cbor.encode(["rom.status", {}]),
    "op not text": cbor.encode({"op": 1, "args": {}}),
    "no args": cbor.encode({"op": "rom.status"}),
    "args not a map": cbor.encode({"op": "rom.status", "args": []}),
    "args key not text": cbor.encode({"op": "rom.status", "args": {1: 2}}),
    "op too long": cbor.encode({"op": "x" * 33, "args": {}}),
    "extra field": cbor.encode({"op": "rom.status", "args": {}, "x": 1}),
    "trailing bytes": cbor.encode({"op": "rom.status", "args": {}}) + b"\x00",
    "oversized": cbor.encode({"op": "rom.boot", "args": {"image": bytes(LIMITS.link_message + 1)}}),
    "deep nesting": b"\x81" * 100_000 + b"\x00",
    "huge integer field": cbor.encode({"op": "rom.status", "args": {}, 2**20000: 1}),
}


@pytest.fixture
def bench(cm_farm: Path) -> Any:
    with Bench(cm_farm) as b:
        yield b


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_refused_and_the_chip_keeps_serving(
    bench: Bench, request_bytes: bytes
) -> None:
    client = bench.client(bench.uids()[0])
    with pytest.raises(ChipRefused) as e:
        client.send(request_bytes)
    assert e.value.code == "malformed"
    assert client.status()["lifecycle"] == "MANUFACTURED"


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("rom.status", {"x": 1}),
        ("rom.identity", {"x": 1}),
        ("rom.burn", {}),
        ("rom.burn", {"image": "text"}),
        ("rom.burn", {"image": b"junk"}),
        ("rom.make-identity", {"x": 1}),
        ("rom.store-certificate", {}),
        ("rom.store-certificate", {"certificate": 5}),
        ("rom.store-certificate", {"certificate": bytes(5000)}),
        ("rom.boot", {}),
        ("rom.boot", {"image": None}),
        ("rom.boot", {"image": b"junk"}),
    ],
)
def test_rom_commands_refuse_bad_arguments(bench: Bench, op: str, args: dict[str, Any]) -> None:
    uid = bench.uids()[0]
    before = bench.read(uid)
    with pytest.raises(ChipRefused) as e:
        bench.client(uid).call(op, args)
    assert e.value.code != "internal"
    assert bench.read(uid) == before


def test_manufacturing_rom_commands_refuse_on_a_manufactured_chip(world: Any, bench: Bench) -> None:
    uid = bench.uids()[0]
    before = bench.read(uid)
    client = bench.client(uid)
    with pytest.raises(ChipRefused) as e:
        client.burn(world.icm.immutable.to_bytes())
    assert e.value.code == "immutable-written"
    with pytest.raises(ChipRefused) as e:
        client.make_identity()
    assert e.value.code == "identity-exists"
    with pytest.raises(ChipRefused) as e:
        client.store_certificate(client.certificate() or b"")
    assert e.value.code == "lifecycle"
    assert bench.read(uid) == before


def test_unknown_commands(world: Any, bench: Bench) -> None:
    client = bench.client(bench.uids()[0])
    for op in ("nope", "oem.keygen", "cm.begin", "lock"):  # no software booted: ROM only
        with pytest.raises(ChipRefused) as e:
            client.call(op)
        assert e.value.code in ("malformed", "unknown-command")
    client.boot(world.software.read_bytes())
    for op in ("nope", "rom.nope", "oem.export"):
        with pytest.raises(ChipRefused) as e:
            client.call(op)
        assert e.value.code == "unknown-command"


def test_an_internal_fault_is_answered_without_detail(
    world: Any, bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = world.icm.immutable.hw_share

    def fault(self: ProvisioningSoftware, args: Any) -> Any:
        raise ValueError(f"memory dump {secret.hex()} {secret!r}")

    monkeypatch.setitem(commands._COMMANDS, "lock", fault)
    uid = bench.uids()[0]
    client = bench.client(uid)
    client.boot(world.software.read_bytes())
    with pytest.raises(ChipRefused) as e:
        client.lock()
    assert e.value.code == "internal"
    _, response = bench.log[-1]
    assert secret not in response
    assert secret.hex().encode() not in response
    assert b"memory dump" not in response


def test_error_messages_are_bounded(bench: Bench) -> None:
    client = bench.client(bench.uids()[0])
    with pytest.raises(ChipRefused) as e:
        client.call("rom.status", {"k" * 60 + str(i): 0 for i in range(40)})
    assert len(e.value.message) <= messages.MAX_MESSAGE_TEXT
    _, response = bench.log[-1]
    assert len(response) < messages.MAX_MESSAGE_TEXT + 64


class _Answers:
    def __init__(self, response: bytes) -> None:
        self.response = response

    def exchange(self, request: bytes) -> bytes:
        assert request  # whatever is asked, the same answer
        return self.response


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"\xff",
        cbor.encode([1]),
        cbor.encode({"ok": 1}),
        cbor.encode({"ok": {}, "error": "x"}),
        cbor.encode({"error": 1, "message": "m"}),
        cbor.encode({"error": "x"}),
    ],
)
def test_a_malformed_response_is_a_transport_error(response: bytes) -> None:
    with pytest.raises(TransportError):
        ChipClient(_Answers(response)).status()


def test_responses_round_trip() -> None:
    assert messages.decode_response(messages.encode_ok({"a": b"1"})) == {"a": b"1"}
    assert messages.decode_response(messages.encode_ok({})) == {}
    with pytest.raises(ChipRefused) as e:
        messages.decode_response(messages.encode_error("bad-chunk", "m" * 1000))
    assert e.value.code == "bad-chunk"
    assert len(e.value.message) == messages.MAX_MESSAGE_TEXT
    assert messages.decode_request(messages.encode_request("op", {"a": 1})) == ("op", {"a": 1})


def test_a_client_without_the_expected_answer_raises_transport_error(world: Any) -> None:
    job = world_job(world)
    client = ChipClient(_Answers(messages.encode_ok({})))
    with pytest.raises(TransportError):
        client.make_identity()
    with pytest.raises(TransportError):
        client.seal_finish()
    assert client.provision(job.prepared) == {}  # provisioning needs no field of the answers


def test_a_chip_powered_off_leaves_no_reference_cycle(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    """A line powers a million chips on and off: each must be freed when its socket closes,
    not left to the cyclic garbage collector (ports and software hold no bound-method tables)."""
    farm = tmp_path / "chips.farm"
    shutil.copyfile(cm_farm, farm)
    job = world_job(world)

    def provision(link: FarmLink, uid: bytes) -> None:
        with link.connect(uid) as chip:
            chip.send(job.boot_request)
            chip.provision(job.prepared)
            chip.status()

    with FarmLink(farm) as link:
        uid = link.uids()[0]
        gc.collect()
        gc.disable()
        try:
            provision(link, uid)
            assert gc.collect() == 0
        finally:
            gc.enable()


class _StatusLink:
    """A link in front of a real chip that rewrites one field of its status answer, as a chip
    that holds more or less than it says would answer."""

    def __init__(self, inner: Any, **patch: Any) -> None:
        self._inner = inner
        self._patch = patch

    def exchange(self, request: bytes) -> bytes:
        response = self._inner.exchange(request)
        if messages.decode_request(request)[0] != "rom.status":
            return response
        return messages.encode_ok({**messages.decode_response(response), **self._patch})


def test_a_host_tells_whether_a_chip_holds_exactly_a_bundle(world: Any, bench: Bench) -> None:
    """`ChipClient.holds`: true for a chip that holds the bundle, false before it does, and
    false for a chip that names the bundle but reports another installed digest (one holding
    what an earlier bundle left, say), or none."""
    job = world_job(world)
    uid = bench.uids()[0]
    chip = bench.chip(uid)
    client = bench.client_for(chip)
    assert not client.holds(job.prepared)
    client.boot(job.image)
    client.provision(job.prepared)
    assert client.holds(job.prepared)
    status = client.status()
    domain_id = status["installed"]["domain-id"]
    assert status["installed-digest"] == job.prepared.installed_digest(domain_id)
    port_link = InProcessLink(ChipPort(chip))
    for patch in ({"installed-digest": bytes(32)}, {"installed-digest": None}):
        assert not ChipClient(_StatusLink(port_link, **patch)).holds(job.prepared), patch


def test_a_request_every_chip_receives_alike_is_decoded_and_checked_anew_each_time(
    world: Any, bench: Bench, tmp_path: Path
) -> None:
    """`messages.decode_request` finds the last "rom.boot" or "cm.begin" again by its bytes:
    equal bytes give an equal request, in a map of its own, and each chip still checks it."""
    job = world_job(world)
    request = job.boot_request
    _, args = messages.decode_request(request)
    args["image"] = b"changed by a handler"
    again = messages.decode_request(bytes(bytearray(request)))  # equal bytes, another object
    assert again == ("rom.boot", {"image": job.image})
    assert again[1] is not args
    other = messages.encode_request("rom.boot", {"image": job.image[:-1] + b"\x00"})
    assert messages.decode_request(other)[1]["image"] != job.image
    # kept across a chip's flow (the other requests between two boots): the image is found
    # again, not decoded anew, so the boot ROM finds its parse by identity
    kept = messages.decode_request(request)[1]["image"]
    for between in job.prepared.requests(bench.uids()[0]):
        messages.decode_request(between)
    assert messages.decode_request(request)[1]["image"] is kept
    # the same bytes boot a chip running the signed code and are refused by one running other
    code = tmp_path / "code"
    shutil.copytree(Path(commands.__file__).parent.parent, code)
    (code / "firmware" / "commands.py").write_text("# other code\n")
    first, second = bench.uids()[:2]
    assert bench.client(first).send(request)["security-counter"] >= 0
    with pytest.raises(ChipRefused) as e:
        bench.client(second, code_root=code).send(request)
    assert e.value.code == "code-mismatch"
