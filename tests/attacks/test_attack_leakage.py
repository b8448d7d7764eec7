"""T9, docs/design.md property 1: no secret ever leaves a chip.

One recorded run through the link: the ICM makes an OEM lot and a CM lot; the OEM runs FIG. 2 and
FIG. 4 (twice, one needing newer software); the CM runs FIG. 3 on several chips, an update, a
lock, its own FIG. 2, and then every error path the suite knows: modified, foreign, other-code
and rolled-back software, bit flips in every artifact, rearranged chunks, other domains, a stale
epoch, another family, a bundle needing newer software, a tight RAM budget, an invalid key asset,
a power cut, a locked chip, malformed requests, and the whole crafted-command sweep both in the
OEM's provisioning session on a CM chip and in the OEM's own sealing session on its chip (its
keys in RAM either way). Every byte every chip answered is then scanned for every secret the test
can rebuild (family shares, both domains' OEM_RND_INPUT, RND_SHARE, OEM_SHARE, K_MK, K_ENCK,
K_ENCD, K_AUTH and seed, the plaintext assets, the generated private keys, every chip's identity
key), as a whole and as every substring of 8 bytes or more: zero hits.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import cbor2
import pytest
from helpers import (
    CONFIG,
    KEY1,
    KEY2,
    Family,
    RecordingLink,
    copy_state,
    firmware_bytes,
    flip_bit,
    write_assets,
)

import trustprov.link.farm_link as link_farm
from trustprov.chip.farm import Farm
from trustprov.formats.bundle import Bundle, SignedManifest
from trustprov.link import messages
from trustprov.link.client import BundleParams
from trustprov.link.farm_link import FarmLink
from trustprov.link.port import ChipPort
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job, provision_chip
from trustprov.roles.oem import assets as asset_list

from .attack_helpers import (
    FINISH,
    PARAMS,
    Artifacts,
    DomainSecrets,
    SecretScanner,
    Socket,
    SweepLog,
    boot_request,
    chained,
    chunk_args,
    cm_crafted_calls,
    cm_material,
    family_secrets,
    read,
    report,
    run,
    sample,
    sign_other_code,
    sweep,
    timed,
)

RAW_KEY = bytes((i * 37 + 11) % 256 for i in range(64))
MORE_ASSETS = f"""
[[asset]]
name = "gen-p384"
kind = "generate"
key-type = "ec-p384"
slot = 9

[[asset]]
name = "gen-ed"
kind = "generate"
key-type = "ed25519"
slot = 10

[[asset]]
name = "gen-aes"
kind = "generate"
key-type = "aes-256"
slot = 11

[[asset]]
name = "raw-key"
kind = "key"
key-type = "raw"
slot = 12
hex = "{RAW_KEY.hex()}"
"""
GENERATED = {"signer": "ec-p256", "gen-p384": "ec-p384", "gen-ed": "ed25519", "gen-aes": "aes-256"}
#: every error code of docs/protocol.md section 8
PROTOCOL_CODES = {
    "bad-software",
    "bad-signature",
    "code-mismatch",
    "rollback",
    "lifecycle",
    "bad-share",
    "wrong-family",
    "bad-manifest",
    "software-too-old",
    "domain-mismatch",
    "stale-epoch",
    "ram-budget",
    "bad-sequence",
    "bad-chunk",
    "bad-asset",
    "incomplete",
    "bad-request",
    "bad-sealed-value",
    "unknown-command",
    "malformed",
    "internal",
}


class _Run:
    """The recorded run's farms, artifacts and chips."""

    def __init__(self, world: Any, tmp: Path, software_svn: dict[int, Path]) -> None:
        self.world = world
        self.tmp = tmp
        self.image = world.software.read_bytes()
        self.svn = {n: p.read_bytes() for n, p in software_svn.items()}
        self.oem_farm, self.cm_farm = tmp / "oem.farm", tmp / "cm.farm"
        lot = icm.manufacture(world.icm, self.oem_farm, "OEM-L", 3, tmp / "oem-lot.json")
        self.oem_uids = list(lot.uids)
        lot = icm.manufacture(world.icm, self.cm_farm, "CM-L", 12, tmp / "cm-lot.json")
        self.cm_uids = list(lot.uids)

    def keygen(self, name: str, farm: Path, uid: bytes, **options: Any) -> Artifacts:
        """FIG. 2 (by the OEM, or by the CM as its own OEM) into ``tmp/name``."""
        assets = asset_list.load(write_assets(self.tmp / f"{name}-assets", **options))
        out = self.tmp / name
        oem.keygen(farm, uid, software_path=self.world.software, assets=assets, out=out)
        return self.artifacts(name)

    def regen(self, name: str, uid: bytes, software: Path, **options: Any) -> Artifacts:
        """FIG. 4 from the OEM's kept state (``tmp/oem1``) into ``tmp/name``."""
        assets = asset_list.load(write_assets(self.tmp / f"{name}-assets", **options))
        out = self.tmp / name
        state = copy_state(self.tmp / "oem1", self.tmp / f"{name}-state")
        oem.regen(self.oem_farm, uid, software_path=software, state=state, assets=assets, out=out)
        return self.artifacts(name)

    def artifacts(self, name: str) -> Artifacts:
        out = self.tmp / name
        return Artifacts.load(self.world.software, out / "enc-oem-share.cose", out / "bundle.cbor")

    def kept(self, name: str) -> bytes:
        return (self.tmp / "oem1" / name).read_bytes()

    def attempt(self, uid: bytes, image: bytes, requests: list[bytes], **kw: Any) -> str:
        with FarmLink(self.cm_farm, **kw) as link, link.connect(uid) as client:
            boot = run(client, [boot_request(image)])
            return boot.code if not boot.accepted else run(client, requests).code


def _flips(a: Artifacts, rng: random.Random) -> list[list[bytes]]:
    """Bit flips of T4 as request sequences: in ENC(OEM_SHARE), the manifest, every chunk and
    every chain link (a sample; every bit of the share and the manifest in the full mode)."""
    flow = a.flow()
    out = [
        [a.begin(share=flip_bit(a.share, b)), *flow[1:]]
        for b in range(0, len(a.share) * 8, sample(3, 1))
    ]
    out += [
        [a.begin(manifest=flip_bit(a.manifest, b)), *flow[1:]]
        for b in range(0, len(a.manifest) * 8, sample(11, 1))
    ]
    for k, arg in enumerate(chunk_args(a)):
        for _ in range(sample(12, 200)):
            for field, bits in (("data", len(arg["data"]) * 8), ("next", 256)):
                tampered = {**arg, field: flip_bit(arg[field], rng.randrange(bits))}
                request = messages.encode_request("cm.chunk", tampered)
                out.append([*flow[: 1 + k], request, *flow[2 + k :]])
    return out


def _codes(log: list[tuple[bytes, bytes]]) -> set[str]:
    codes = set()
    for _, response in log:
        answer = cbor2.loads(response)
        if "error" in answer:
            codes.add(answer["error"])
    return codes


def _provisioning(r: _Run, a1: Artifacts, a2: Artifacts) -> None:
    """The CM's FIG. 3 on three chips, an update and a lock."""
    job1 = Job.from_bytes(r.image, a1.share, a1.bundle.to_bytes())
    with FarmLink(r.cm_farm) as link:
        for uid in r.cm_uids[:3]:
            with link.connect(uid) as client:
                assert provision_chip(client, uid, job1).result == "provisioned"
        with link.connect(r.cm_uids[0]) as client:
            client.boot(r.image)
            assert run(client, a2.flow()).accepted
            client.lock()


def _error_paths(r: _Run, a: dict[str, Artifacts], other_family: Family) -> dict[str, str]:
    """Every error path of the suite once or a few times; returns what each attempt got."""
    cm, a1 = r.cm_uids, a["oem1"]
    seen: dict[str, str] = {}
    # software: modified, other code, another family's, rolled back
    rng = random.Random(7)
    for bit in [*range(0, 1200, 37), *(rng.randrange(len(r.image) * 8) for _ in range(20))]:
        seen[f"software bit {bit}"] = r.attempt(cm[3], flip_bit(r.image, bit), [])
    debug, _ = sign_other_code(r.world.icm, r.tmp)
    seen["other code"] = r.attempt(cm[3], debug.read_bytes(), [])
    seen["other family's software"] = r.attempt(cm[3], other_family.software.read_bytes(), [])
    assert r.attempt(cm[4], r.svn[2], []) == "accepted"
    seen["rollback"] = r.attempt(cm[4], r.image, [])
    # bit flips, rearranged chunks, a bundle cut short
    for n, requests in enumerate(_flips(a1, rng)):
        seen[f"flip {n}"] = r.attempt(cm[5], r.image, requests)
    parts = a1.parts()
    for n, order in enumerate([[1, 0, 2, 3, 4, 5, 6], [0, 1, 3, 2, 4, 5, 6], [0, 1, 2, 2, 3]]):
        stream = chained([parts[i] for i in order])
        seen[f"order {n}"] = r.attempt(cm[5], r.image, [a1.begin(), *stream, FINISH])
    seen["cut short"] = r.attempt(cm[5], r.image, [a1.begin(), *a1.stream()[:4], FINISH])
    # other domains, a stale epoch, another family, newer software needed, RAM, lifecycle
    own = a["cm-own"]
    seen["CM share, OEM bundle"] = r.attempt(
        cm[5], r.image, [a1.begin(share=own.share), *a1.flow()[1:]]
    )
    seen["CM bundle on an OEM chip"] = r.attempt(cm[1], r.image, own.flow())
    assert r.attempt(cm[10], r.image, own.flow()) == "accepted"
    seen["OEM bundle on a chip holding the CM's"] = r.attempt(cm[10], r.image, a1.flow())
    theirs = Artifacts.load(other_family.software, other_family.oem.share, other_family.oem.bundle)
    seen["another family"] = r.attempt(cm[5], r.image, theirs.flow())
    seen["needs newer software"] = r.attempt(cm[5], r.image, a["oem3"].flow())
    assert r.attempt(cm[2], r.image, a["oem2"].flow()) == "accepted"
    seen["stale epoch"] = r.attempt(cm[2], r.image, a1.flow())
    seen["RAM"] = r.attempt(cm[5], r.image, a1.flow(), ram_budget=16 * 1024)
    seen["locked"] = r.attempt(cm[0], r.image, a["oem3"].flow())
    lock = messages.encode_request("lock", {})
    seen["lock a manufactured chip"] = r.attempt(cm[5], r.image, [lock])
    seen["invalid key asset"] = r.attempt(cm[6], r.image, _invalid_key_bundle(r, a1).flow())
    # a power cut at the installation commit
    with FarmLink(r.cm_farm) as link, link.connect(cm[7]) as client:
        client.boot(r.image)
        link._farm.before_commit = _power_cut
        seen["power cut"] = run(client, a1.flow()).code
    # malformed requests
    with FarmLink(r.cm_farm) as link, link.connect(cm[8]) as client:
        status = messages.encode_request("rom.status", {})
        for n, raw in enumerate(
            [b"\xff", b"", status + b"\x00", cbor2.dumps({"op": "rom.status"}), cbor2.dumps([1])]
        ):
            seen[f"malformed {n}"] = run(client, [raw]).code
    return seen


def _power_cut() -> None:
    raise OSError("power lost")


def _invalid_key_bundle(r: _Run, a1: Artifacts) -> Artifacts:
    """An EC key asset of scalar 0, sealed on the OEM's chip (FIG. 4): refused at installation,
    after the chip decrypted it."""
    with FarmLink(r.oem_farm) as link, link.connect(r.oem_uids[2]) as client:
        client.boot(r.image)
        client.regen(
            r.kept("enc-oem-rnd-input.cose"),
            r.kept("enc-rnd-share.cose"),
            BundleParams(9, 1, 3, 16384),
        )
        client.seal_asset("k", "key", 32, {"key-type": "ec-p256", "slot": 4})
        chunk = client.seal_chunk(0, bytes(32))
        bundle = Bundle(SignedManifest.from_bytes(client.seal_finish()), ((chunk,),))
    return Artifacts(r.image, a1.share, bundle)


def _sweeps(r: _Run, a1: Artifacts) -> SweepLog:
    """The crafted-command sweep in the OEM's provisioning session on a CM chip, and in the
    OEM's own sealing session on its chip: the OEM's keys in chip RAM either way."""
    with FarmLink(r.cm_farm) as link, link.connect(r.cm_uids[9]) as client:
        certificate = client.certificate()
    assert certificate is not None
    material = cm_material(r.world, a1, r.tmp / "cm-own", certificate)
    calls = cm_crafted_calls(material["base"], material["bytes"], material["other"])
    log = SweepLog()
    with FarmLink(r.cm_farm) as link:
        socket = Socket(link, r.cm_uids[9], r.image)
        for state in ("booted", "OEM provisioning mid-bundle"):
            sweep(socket, material["states"][state], calls, log)
        socket.close()
    kept = {
        "enc-oem-rnd-input": r.kept("enc-oem-rnd-input.cose"),
        "enc-rnd-share": r.kept("enc-rnd-share.cose"),
        "bundle": dict(PARAMS),
    }
    base = {**material["base"], "oem.regen": kept}
    values = [*material["bytes"], kept["enc-oem-rnd-input"], kept["enc-rnd-share"]]
    setup = [("oem.regen", kept), ("seal.asset", base["seal.asset"])]
    with FarmLink(r.oem_farm) as link:
        socket = Socket(link, r.oem_uids[2], r.image)
        sweep(socket, setup, cm_crafted_calls(base, values, material["other"]), log)
        socket.close()
    return log


def _secrets(r: _Run) -> dict[str, bytes]:
    """Every secret of the run, rebuilt from the family secrets, the OEM's and the CM's sealed
    files, the asset list, and (like a probe) the chips' identity keys."""
    imm = r.world.icm.immutable
    oem_domain = DomainSecrets.of_oem_dir(imm, r.tmp / "oem1")
    cm_domain = DomainSecrets.of_oem_dir(imm, r.tmp / "cm-own")
    secrets = family_secrets(imm) | oem_domain.named("OEM") | cm_domain.named("CM")
    holding = read(r.cm_farm, r.cm_uids[1])
    assert holding.domain_id == oem_domain.keys.domain_id  # the rebuilt keys are the chips' own
    for name, key_type in GENERATED.items():
        value = oem_domain.generated(key_type, name)
        slot = next(n for n, s in holding.slots.items() if s.asset == name)
        assert holding.slots[slot].value == value
        secrets[f"OEM generated {name}"] = value
    secrets["CM generated signer"] = cm_domain.generated("ec-p256", "signer")
    secrets |= {"KEY1": KEY1, "KEY2": KEY2, "raw key": RAW_KEY, "config": CONFIG}
    secrets["firmware"] = firmware_bytes()
    for path in (r.oem_farm, r.cm_farm):
        farm = Farm(path)
        try:
            for uid in farm.uids():
                identity = farm.load(uid).identity_key
                assert identity is not None
                secrets[f"identity key {uid.hex()}"] = identity
        finally:
            farm.close()
    return secrets


def test_attack_no_secret_leaves_any_chip_over_a_full_run(
    world: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    other_family: Family,
    software_svn: dict[int, Path],
) -> None:
    log: list[tuple[bytes, bytes]] = []

    def recording(port: ChipPort) -> RecordingLink:
        return RecordingLink(port, log)

    monkeypatch.setattr(link_farm, "InProcessLink", recording)  # every FarmLink records
    with timed() as elapsed:
        r = _Run(world, tmp_path, software_svn)
        oem_chips, cm = r.oem_uids, r.cm_uids
        a = {
            "oem1": r.keygen("oem1", r.oem_farm, oem_chips[0], extra=MORE_ASSETS),
            "oem2": r.regen("oem2", oem_chips[1], world.software, epoch=2, extra=MORE_ASSETS),
            "oem3": r.regen("oem3", oem_chips[1], software_svn[2], epoch=3, min_svn=2),
            "cm-own": r.keygen("cm-own", r.cm_farm, cm[-1], epoch=5),
        }
        assert a["oem3"].bundle.manifest.min_security_version == 2
        _provisioning(r, a["oem1"], a["oem2"])
        seen = _error_paths(r, a, other_family)
        sweeps = _sweeps(r, a["oem1"])
    accepted = [what for what, code in seen.items() if code == "accepted"]
    assert not accepted, accepted
    codes = _codes(log)
    missing = PROTOCOL_CODES - codes
    assert not missing, f"error paths not exercised: {sorted(missing)}"

    secrets = _secrets(r)
    scanner = SecretScanner(secrets)
    assert scanner.hits(b"\x00" + secrets["OEM K_MK"][3:12] + b"\x00") == {"OEM K_MK"}  # control
    leaks = set()
    for request, response in log:
        for name in scanner.hits(response):
            leaks.add(f"{messages.decode_request(request)[0]}: {name}")
    assert not leaks, f"responses carry secrets: {sorted(leaks)}"
    report(
        "secret leakage",
        responses=len(log),
        bytes_scanned=scanner.scanned,
        secrets=len(secrets),
        windows=scanner.windows,
        error_codes=len(codes),
        attempts=len(seen),
        sweep_calls=sweeps.calls,
        hits=0,
        seconds=elapsed(),
    )
