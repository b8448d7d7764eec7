"""The chip side of the link under fuzzing: chips in every state a request can meet.

A `ChipLab` holds snapshots of chip states (blank, burned, with an identity, manufactured,
provisioned, locked; a CM chip and the OEM's chip) and, per scenario, the valid requests that
bring a freshly powered chip into it (boot, cm.begin, some chunks, oem.keygen, seal.asset...).
`ChipLab.exchange(scenario, request)` powers a chip on from its snapshot, replays the scenario's
requests (each must succeed), sends the fuzzed request and returns the chip, its port and the
response. An `Authenticator` re-MACs and re-seals mutated artifacts with the world's secrets.
Chips commit to a scratch copy of the farm; every exchange starts again from the snapshot.

The chip uses a deterministic TRNG, so an exchange is reproducible from its two inputs.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.chip.model import ChipState
from trustprov.chip.trng import DeterministicTrng
from trustprov.crypto.aead import cmac_tag
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.errors import ChipRefused
from trustprov.formats import cose
from trustprov.formats.bundle import Bundle, SignedManifest
from trustprov.formats.sealed import SealedValue
from trustprov.link import messages
from trustprov.link.client import PreparedBundle
from trustprov.link.port import ChipPort
from trustprov.roles import icm

from . import mutate

OEM_RND_INPUT = bytes(range(100, 132))
BUNDLE_PARAMS = {"epoch": 1, "min-svn": 1, "aead": 3, "chunk-size": 256}
FW_LEN = 700  # three chunks of 256


def request(op: str, args: dict[str, Any] | None = None) -> bytes:
    return messages.encode_request(op, args or {})


@dataclass(frozen=True)
class Scenario:
    name: str
    state: str  # which snapshot the chip starts from
    farm: str  # "cm" | "oem"
    prefix: tuple[bytes, ...]  # valid requests replayed before the fuzzed one


@dataclass(repr=False)
class Authenticator:
    """What only the OEM and the family's chips hold, used to make mutated artifacts that
    authenticate: a chip's code behind the CMAC and the AEAD is fuzzed too, not only the check
    that refuses a forgery. (An attacker without the family secrets cannot do this; the chip must
    still refuse such inputs with a typed error, never fault.)"""

    auth: bytes  # K_AUTH of the lab's OEM
    keys: dict[str, bytes]  # sealed value kind -> the key that seals it
    plaintexts: dict[str, bytes]  # sealed value kind -> its real plaintext

    def fix(self, rng: random.Random, request: bytes) -> bytes:
        """``request`` with each COSE_Mac0 argument re-MACed under K_AUTH and each
        COSE_Encrypt0 argument re-sealed (a real or a random plaintext) under its kind's key;
        ``request`` itself if it does not decode."""
        try:
            req = cbor2.loads(request)
            args = dict(req["args"])
            for name, value in args.items():
                if isinstance(value, bytes) and value[:1] in (b"\xd0", b"\xd1"):
                    args[name] = self._fix(rng, value)
            return mutate.encode({**req, "args": args})
        except Exception:  # noqa: BLE001 - not a request we can fix: send it as it is
            return request

    def _fix(self, rng: random.Random, artifact: bytes) -> bytes:
        msg = cbor2.loads(artifact)
        items = list(msg.value)
        if msg.tag == cose.TAG_MAC0:
            items[3] = cmac_tag(self.auth, cose.mac_structure(items[0], items[2]))
        else:
            header = cbor2.loads(items[0])
            kind = header.get("tp-value") if isinstance(header, dict) else None
            key = self.keys.get(kind) if isinstance(kind, str) else None
            if key is None or rng.randint(0, 3) == 0:
                key = rng.choice(list(self.keys.values()))
            plaintext = self.plaintexts.get(kind) if isinstance(kind, str) else None
            if plaintext is None or rng.randint(0, 1):
                plaintext = rng.randbytes(rng.choice([0, 1, 15, 16, 17, 31, 32, 33, 48, 64]))
            aad = cose.CoseMessage(16, items[0], {}, {}, b"").enc_structure()
            items[2] = AESGCM(key).encrypt(items[1][cose.IV], plaintext, aad)
        return mutate.encode(cbor2.CBORTag(msg.tag, items))


@dataclass
class ChipLab:
    scenarios: list[Scenario]
    states: dict[str, ChipState]
    farms: dict[str, Farm]
    #: (scenario index, request): valid requests in the scenario they belong to
    seeds: list[tuple[int, bytes]]
    authenticator: Authenticator
    status_result: dict[str, Any] = field(default_factory=dict)

    def power_on(self, scenario: Scenario) -> tuple[Chip, ChipPort]:
        state = dataclasses.replace(self.states[scenario.state])
        farm = self.farms[scenario.farm]
        # a fresh chip in the snapshot's state goes into the socket: scenarios share a chip's
        # row, and the farm never lowers a lifecycle or counter (OTP), so the lab puts them back
        farm._db.execute(
            "UPDATE chips SET lifecycle = ?, security_counter = ?, prov_counter = ? WHERE uid = ?",
            (int(state.lifecycle), state.security_counter, state.prov_counter, state.uid),
        )
        chip = Chip(farm, state, trng=DeterministicTrng(7))
        port = ChipPort(chip)
        for r in scenario.prefix:
            answer = messages.decode_response(port.handle(r))  # raises if the replay fails
            assert isinstance(answer, dict)
        return chip, port

    def exchange(self, index: int, data: bytes) -> tuple[Chip, ChipPort, bytes]:
        chip, port = self.power_on(self.scenarios[index % len(self.scenarios)])
        return chip, port, port.handle(data)

    def close(self) -> None:
        for f in self.farms.values():
            f.close()


def _ok(port: ChipPort, r: bytes) -> dict[str, Any]:
    try:
        return messages.decode_response(port.handle(r))
    except ChipRefused as e:
        raise AssertionError(f"chip lab setup: {e.code}: {e.message}") from e


def build_chip_lab(root: Path, made: icm.Icm, image: bytes, oem_uid: bytes) -> ChipLab:
    """Snapshots and scenarios from the farms ``build_corpus`` made under ``root``."""
    for name in ("cm", "oem"):  # chips under fuzzing write to copies, never to the corpus
        shutil.copyfile(root / f"{name}.farm", root / f"fuzz-{name}.farm")
    farms = {"cm": Farm(root / "fuzz-cm.farm"), "oem": Farm(root / "fuzz-oem.farm")}
    cm_uid = farms["cm"].uids("LOT-A")[0]
    states: dict[str, ChipState] = {
        "manufactured": farms["cm"].load(cm_uid),
        "oem": farms["oem"].load(oem_uid),
    }

    # chips not yet manufactured: blank, immutable memory burned, identity key made
    blank_uid = bytes(15) + b"\x01"
    states["blank"] = farms["cm"].add_blank(blank_uid, "BLANK")
    burn = request("rom.burn", {"image": made.immutable.to_bytes()})
    make_identity = request("rom.make-identity")

    def run(state: str, farm: str, *reqs: bytes) -> tuple[ChipState, list[dict[str, Any]]]:
        chip = Chip(farms[farm], dataclasses.replace(states[state]), trng=DeterministicTrng(7))
        port = ChipPort(chip)
        answers = [_ok(port, r) for r in reqs]
        return chip._state, answers

    states["burned"], _ = run("blank", "cm", burn)
    states["identity"], answers = run("burned", "cm", make_identity)
    cert = icm.issue_certificate(made, blank_uid, answers[0]["public-key"])
    certificate = cert.public_bytes(Encoding.DER)
    store = request("rom.store-certificate", {"certificate": certificate})

    # the OEM's keygen, and a bundle sealed by it, for the CM chip's scenarios
    boot = request("rom.boot", {"image": image})
    keygen = request("oem.keygen", {"oem-rnd-input": OEM_RND_INPUT, "bundle": BUNDLE_PARAMS})
    seal_key = request(
        "seal.asset",
        {"name": "k", "kind": "key", "length": 32, "key-type": "aes-256", "slot": 1},
    )
    seal_key_chunk = request("seal.chunk", {"index": 0, "data": bytes(range(32))})
    seal_fw = request(
        "seal.asset", {"name": "fw", "kind": "firmware", "length": FW_LEN, "region": "app"}
    )
    fw = bytes(i % 251 for i in range(FW_LEN))
    fw_chunks = [
        request("seal.chunk", {"index": i, "data": fw[i * 256 : i * 256 + 256]}) for i in (2, 1, 0)
    ]
    generate = request("seal.generate", {"name": "g", "key-type": "ec-p256", "slot": 8})
    finish_sealing = request("seal.finish")

    oem_chip_state = states["oem"]
    chip = Chip(farms["oem"], dataclasses.replace(oem_chip_state), trng=DeterministicTrng(7))
    port = ChipPort(chip)
    _ok(port, boot)
    sealed = _ok(port, keygen)
    chunks = [_ok(port, r).get("chunk") for r in (seal_key, seal_key_chunk)][1:]
    fw_sealed = [_ok(port, r).get("chunk") for r in (seal_fw, *fw_chunks)][1:]
    gen_chunk = _ok(port, generate)["chunk"]
    manifest = _ok(port, finish_sealing)["manifest"]
    bundle = Bundle(
        SignedManifest.from_bytes(manifest),
        ((chunks[0],), tuple(reversed(fw_sealed)), (gen_chunk,)),
    )
    prepared = PreparedBundle.prepare(bundle, sealed["enc-oem-share"])
    regen = request(
        "oem.regen",
        {
            "enc-oem-rnd-input": sealed["enc-oem-rnd-input"],
            "enc-rnd-share": sealed["enc-rnd-share"],
            "bundle": BUNDLE_PARAMS,
        },
    )
    begin, cm_chunks, cm_finish = prepared.begin, list(prepared.chunks), prepared.finish
    lock = request("lock")

    states["provisioned"], _ = run("manufactured", "cm", boot, begin, *cm_chunks, cm_finish)
    states["locked"], _ = run("provisioned", "cm", boot, lock)

    status = request("rom.status")
    identity = request("rom.identity")
    scenarios = [
        Scenario("blank", "blank", "cm", ()),
        Scenario("burned", "burned", "cm", ()),
        Scenario("identity", "identity", "cm", ()),
        Scenario("manufactured", "manufactured", "cm", ()),
        Scenario("booted", "manufactured", "cm", (boot,)),
        Scenario("cm-begun", "manufactured", "cm", (boot, begin)),
        Scenario("cm-midway", "manufactured", "cm", (boot, begin, *cm_chunks[:2])),
        Scenario("cm-complete", "manufactured", "cm", (boot, begin, *cm_chunks)),
        Scenario("provisioned", "provisioned", "cm", (boot,)),
        Scenario("locked", "locked", "cm", (boot,)),
        Scenario("oem-booted", "oem", "oem", (boot,)),
        Scenario("sealing", "oem", "oem", (boot, keygen)),
        Scenario("sealing-asset", "oem", "oem", (boot, keygen, seal_fw, fw_chunks[0])),
        Scenario("sealing-done", "oem", "oem", (boot, keygen, seal_key, seal_key_chunk)),
    ]
    index = {s.name: i for i, s in enumerate(scenarios)}
    seeds = [
        (index["blank"], burn),
        (index["blank"], status),
        (index["burned"], make_identity),
        (index["identity"], store),
        (index["manufactured"], boot),
        (index["manufactured"], identity),
        (index["booted"], begin),
        (index["booted"], keygen),
        (index["booted"], regen),
        (index["cm-begun"], cm_chunks[0]),
        (index["cm-midway"], cm_chunks[2]),
        (index["cm-complete"], cm_finish),
        (index["provisioned"], begin),
        (index["provisioned"], lock),
        (index["locked"], status),
        (index["oem-booted"], keygen),
        (index["oem-booted"], regen),
        (index["sealing"], seal_fw),
        (index["sealing"], seal_key),
        (index["sealing"], generate),
        (index["sealing-asset"], fw_chunks[1]),
        (index["sealing-done"], finish_sealing),
    ]
    mem = made.immutable
    keys = {"oem-share": mem.k_oem_share, "oem-rnd-input": mem.k_oem_master_share}
    keys["rnd-share"] = mem.k_oem_master_share
    plaintexts = {
        kind: SealedValue.from_bytes(sealed[f"enc-{kind}"]).open(key) for kind, key in keys.items()
    }
    k_mk = g_master_key(plaintexts["oem-share"], mem.hw_share, mem.rom_share)
    authenticator = Authenticator(derive_keys(k_mk, mem.family_id).auth, keys, plaintexts)
    lab = ChipLab(scenarios, states, farms, seeds, authenticator)
    _, port = lab.power_on(scenarios[index["provisioned"]])
    lab.status_result = _ok(port, status)
    return lab
