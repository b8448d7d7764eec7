"""Machinery of the attack suite: the CM's bench, its artifacts, and the test's own probe.

The CM reaches chips only through the link (`FarmLink`) and sends pre-encoded requests; it is
judged by what the chip did. `Result` says where a request sequence was refused and why, and the
test-only `Probe` says what a chip holds. The secrets the CM must never obtain are rebuilt here
from the ICM's family secrets and the OEM's sealed files (`DomainSecrets`), and `OemKeyWitness`
recognises anything made under an OEM's keys: the test is the probe.

Sample sizes: `make test` runs a quick sample of the large spaces; ``TRUSTPROV_ATTACKS_FULL=1``
(``make attacks``) runs the full counts. Every test prints what it reached (see with ``-s``).
"""

from __future__ import annotations

import hmac
import itertools
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import assert_holds_world_assets, assert_untouched, world_job

from trustprov.chip.probe import Probe, Reading
from trustprov.crypto.aead import A256GCM, AES_CCM_16_128_256, TAG_LEN, cmac_tag
from trustprov.crypto.digest import CHAIN_END, sealed_tag, tag_link
from trustprov.crypto.keys import (
    MATERIAL_LEN,
    private_key_bytes,
    private_key_from_material,
    public_key_der,
)
from trustprov.crypto.schedule import (
    OemKeys,
    asset_material,
    derive_keys,
    f_oem_share,
    g_master_key,
    h_seed,
)
from trustprov.errors import ArtifactError, ChipRefused
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import Bundle, chunk_aad, chunk_nonce
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS
from trustprov.formats.sealed import H_FAMILY, H_VALUE, SealedValue
from trustprov.formats.software import CODE_ROOT
from trustprov.link import messages
from trustprov.link.client import ChipClient
from trustprov.link.farm_link import FarmLink
from trustprov.roles.cm import Job, provision_chip
from trustprov.roles.icm import Icm, manufacture, sign_software

FULL = os.environ.get("TRUSTPROV_ATTACKS_FULL") == "1"
MODE = "full" if FULL else "default"


def sample(default: int, full: int) -> int:
    """How many of a large space this run tries: a quick sample, or the full count."""
    return full if FULL else default


def report(attack: str, **counts: object) -> None:
    """One line per test with what it reached (visible with ``pytest -s``)."""
    detail = ", ".join(f"{k}={v}" for k, v in counts.items())
    print(f"\n[attack:{MODE}] {attack}: {detail}")


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    yield lambda: round(time.perf_counter() - start, 2)


# -- requests --------------------------------------------------------------------------------------
FINISH = messages.encode_request("cm.finish", {})


def begin_request(share: bytes, manifest: bytes) -> bytes:
    return messages.encode_request("cm.begin", {"enc-oem-share": share, "manifest": manifest})


def chunk_request(asset: int, index: int, data: bytes, next_link: bytes) -> bytes:
    return messages.encode_request(
        "cm.chunk", {"asset": asset, "index": index, "data": data, "next": next_link}
    )


boot_request = ChipClient.boot_request


def chained(parts: Sequence[tuple[int, int, bytes]]) -> list[bytes]:
    """cm.chunk requests for (asset label, index label, sealed data) in the CM's chosen order,
    each with the tag-chain link the CM computes itself over what it sends: the strongest CM
    makes every link self-consistent, and only the manifest's CMAC-verified head can stop it."""
    out: list[bytes] = []
    for _, group in itertools.groupby(parts, key=lambda p: p[0]):
        items = list(group)
        links = [CHAIN_END]
        for _, _, data in reversed(items[1:]):
            # data shorter than a tag has none: the CM links its bytes padded to a tag's length
            # (any link would do; the chip must refuse such a chunk whatever comes beside it)
            tag = sealed_tag(data) if len(data) >= TAG_LEN else data.rjust(TAG_LEN, b"\x00")
            links.append(tag_link(tag, links[-1]))
        links.reverse()
        out += [chunk_request(a, i, d, n) for (a, i, d), n in zip(items, links, strict=True)]
    return out


@dataclass(frozen=True)
class Artifacts:
    """What the CM was sent: the signed software, ENC(OEM_SHARE) and the bundle."""

    image: bytes
    share: bytes
    bundle: Bundle = field(repr=False)

    @classmethod
    def load(cls, software: Path, share: Path, bundle: Path) -> Artifacts:
        return cls(
            software.read_bytes(), share.read_bytes(), Bundle.from_bytes(bundle.read_bytes())
        )

    @property
    def manifest(self) -> bytes:
        return self.bundle.signed.to_bytes()

    def chunks(self) -> list[list[bytes]]:
        return [list(c) for c in self.bundle.chunks]

    def parts(self) -> list[tuple[int, int, bytes]]:
        """Every sealed chunk in manifest order as (asset, index, data)."""
        return [(a, i, d) for a, cs in enumerate(self.bundle.chunks) for i, d in enumerate(cs)]

    def begin(self, share: bytes | None = None, manifest: bytes | None = None) -> bytes:
        return begin_request(
            self.share if share is None else share, self.manifest if manifest is None else manifest
        )

    def stream(self) -> list[bytes]:
        """The genuine cm.chunk requests, in order."""
        return chained(self.parts())

    def flow(self) -> list[bytes]:
        return [self.begin(), *self.stream(), FINISH]


# -- running requests on a chip --------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    at: int  # index of the refused request; len(requests) if the chip accepted all of them
    code: str  # the chip's error code, or "accepted"

    @property
    def accepted(self) -> bool:
        return self.code == "accepted"


def run(client: ChipClient, requests: Sequence[bytes]) -> Result:
    """Send the requests in order until the chip refuses one."""
    for i, request in enumerate(requests):
        try:
            client.send(request)
        except ChipRefused as e:
            return Result(i, e.code)
    return Result(len(requests), "accepted")


@contextmanager
def powered(farm: Path, uid: bytes, image: bytes | None = None, **kw: Any) -> Iterator[ChipClient]:
    """Chip ``uid`` powered on in a socket of the CM's line, booted with ``image`` if given;
    powered off (RAM dropped) on exit."""
    with FarmLink(farm) as link, link.connect(uid, **kw) as client:
        if image is not None:
            client.boot(image)
        yield client


class RecordingTrng:
    """The chip's TRNG (os.urandom), remembering every output: the nonces, bundle ids and IVs a
    chip could have sealed anything under."""

    def __init__(self) -> None:
        self.outputs: list[bytes] = []

    def random(self, n: int) -> bytes:
        value = os.urandom(n)
        self.outputs.append(value)
        return value


class Socket:
    """One chip in a socket that the CM powers on and off at will, booting it each time."""

    def __init__(self, link: FarmLink, uid: bytes, image: bytes) -> None:
        self._link = link
        self.uid = uid
        self._image = image
        self._stack = ExitStack()
        self.trng = RecordingTrng()
        self.client: ChipClient
        self.power_cycles = 0
        self.power_on()

    def power_on(self) -> None:
        self.trng = RecordingTrng()
        self.client = self._stack.enter_context(self._link.connect(self.uid, trng=self.trng))
        self.client.boot(self._image)

    def power_cycle(self) -> None:
        self._stack.close()
        self.power_cycles += 1
        self.power_on()

    def close(self) -> None:
        self._stack.close()


# -- what a chip holds -----------------------------------------------------------------------------
def read(farm: Path, uid: bytes) -> Reading:
    with Probe(farm) as probe:
        return probe.read(uid)


def assert_chip_untouched(farm: Path, uid: bytes) -> Reading:
    r = read(farm, uid)
    assert_untouched(r)
    return r


def assert_same_holding(before: Reading, after: Reading) -> None:
    """Nothing the chip holds changed (its security counter may have advanced by a boot)."""
    keep = ("lifecycle", "slots", "regions", "region_assets", "domain_id", "bundle_id", "epoch")
    changed = [k for k in keep if getattr(before, k) != getattr(after, k)]
    assert not changed, f"the chip's {changed} changed"


def retry_succeeds(world: Any, farm: Path, uid: bytes, software: Path | None = None) -> None:
    """The good artifacts still provision the chip: the attack left it retryable."""
    job = world_job(world) if software is None else Job.load(software, world.share, world.bundle)
    with FarmLink(farm) as link, link.connect(uid) as client:
        outcome = provision_chip(client, uid, job)
    assert outcome.result == "provisioned", (outcome.error_code, outcome.error)
    assert_holds_world_assets(read(farm, uid), world.public_keys)


# -- the secrets, rebuilt by the test --------------------------------------------------------------
@dataclass(frozen=True)
class DomainSecrets:
    """One OEM domain's secrets, from the OEM's sealed files opened with the family secrets."""

    oem_rnd_input: bytes = field(repr=False)
    rnd_share: bytes = field(repr=False)
    oem_share: bytes = field(repr=False)
    k_mk: bytes = field(repr=False)
    keys: OemKeys
    seed: bytes = field(repr=False)

    @classmethod
    def of_oem_dir(cls, imm: ImmutableMemory, oem_dir: Path) -> DomainSecrets:
        master = imm.k_oem_master_share
        enc_input = (oem_dir / "enc-oem-rnd-input.cose").read_bytes()
        enc_rnd = (oem_dir / "enc-rnd-share.cose").read_bytes()
        oem_rnd_input = SealedValue.from_bytes(enc_input, "oem-rnd-input").open(master)
        rnd_share = SealedValue.from_bytes(enc_rnd, "rnd-share").open(master)
        oem_share = f_oem_share(oem_rnd_input, rnd_share)
        enc_share = (oem_dir / "enc-oem-share.cose").read_bytes()
        assert SealedValue.from_bytes(enc_share, "oem-share").open(imm.k_oem_share) == oem_share
        k_mk = g_master_key(oem_share, imm.hw_share, imm.rom_share)
        return cls(
            oem_rnd_input,
            rnd_share,
            oem_share,
            k_mk,
            derive_keys(k_mk, imm.family_id),
            h_seed(oem_rnd_input, rnd_share),
        )

    def generated(self, key_type: str, name: str) -> bytes:
        """The slot value of the key generated on the chip as ``name`` (FIG. 2, from the seed)."""
        material = asset_material(self.seed, key_type, name, MATERIAL_LEN[key_type])
        if key_type == "aes-256":
            return material
        return private_key_bytes(private_key_from_material(key_type, material))

    def named(self, tag: str) -> dict[str, bytes]:
        return {
            f"{tag} OEM_RND_INPUT": self.oem_rnd_input,
            f"{tag} RND_SHARE": self.rnd_share,
            f"{tag} OEM_SHARE": self.oem_share,
            f"{tag} K_MK": self.k_mk,
            f"{tag} K_ENCK": self.keys.enck,
            f"{tag} K_ENCD": self.keys.encd,
            f"{tag} K_AUTH": self.keys.auth,
            f"{tag} seed": self.seed,
        }


def family_secrets(imm: ImmutableMemory) -> dict[str, bytes]:
    family_key = bytes(a ^ b for a, b in zip(imm.hw_share, imm.rom_share, strict=True))
    return {
        "HW_SHARE": imm.hw_share,
        "ROM_SHARE": imm.rom_share,
        "HW_SHARE xor ROM_SHARE": family_key,
        "K_OEM_SHARE": imm.k_oem_share,
        "K_OEM_MASTER_SHARE": imm.k_oem_master_share,
    }


WINDOW = 8


class SecretScanner:
    """Finds any secret, or any piece of one of 8 bytes or more, in bytes that left a chip."""

    def __init__(self, secrets: dict[str, bytes]) -> None:
        self._windows: dict[bytes, str] = {}
        for name, secret in secrets.items():
            assert len(secret) >= WINDOW, name
            for i in range(len(secret) - WINDOW + 1):
                self._windows.setdefault(secret[i : i + WINDOW], name)
        self.scanned = 0

    @property
    def windows(self) -> int:
        return len(self._windows)

    def hits(self, data: bytes) -> set[str]:
        """Every substring of ``data`` of 8 bytes or more that is a piece of a secret contains
        an 8-byte window of that secret: looking up every 8-byte window of ``data`` finds all."""
        self.scanned += len(data)
        w = self._windows
        pieces = (data[i : i + WINDOW] for i in range(len(data) - WINDOW + 1))
        return {w[p] for p in pieces if p in w}


class OemKeyWitness:
    """Recognises anything made under one OEM's keys: a manifest MACed under its K_AUTH, a chunk
    that opens under its K_ENCK or K_ENCD, or a fresh seal of its shares."""

    ASSET_POSITIONS = 4
    CHUNK_INDEXES = 4

    def __init__(self, imm: ImmutableMemory, secrets: DomainSecrets) -> None:
        self._imm = imm
        self._secrets = secrets
        keys = secrets.keys
        self._ciphers = [
            (aead, name, aead.cipher(key))
            for aead in (A256GCM, AES_CCM_16_128_256)
            for name, key in (("K_ENCK", keys.enck), ("K_ENCD", keys.encd))
        ]
        self.checked = 0

    def findings(self, value: Any, randoms: Sequence[bytes]) -> list[str]:
        """What in ``value`` (any response, walked recursively) was made under the OEM's keys."""
        found: list[str] = []
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, dict):
                stack += [*v.keys(), *v.values()]
            elif isinstance(v, list | tuple):
                stack += list(v)
            elif isinstance(v, bytes | bytearray):
                found += self._bytes(bytes(v), randoms)
        return found

    def _bytes(self, data: bytes, randoms: Sequence[bytes]) -> list[str]:
        self.checked += 1
        found = []
        s = self._secrets
        try:
            m = cose.decode(data, cose.TAG_MAC0, limit=LIMITS.manifest, what="response")
        except ArtifactError:
            pass
        else:
            if hmac.compare_digest(cmac_tag(s.keys.auth, m.mac_structure()), m.auth):
                found.append("a manifest MACed under the OEM's K_AUTH")
        try:
            sealed = SealedValue.from_bytes(data)
        except ArtifactError:
            pass
        else:
            for key, plain, what in (
                (self._imm.k_oem_share, s.oem_share, "the OEM's OEM_SHARE"),
                (self._imm.k_oem_master_share, s.rnd_share, "the OEM's RND_SHARE"),
                (self._imm.k_oem_master_share, s.oem_rnd_input, "the OEM's OEM_RND_INPUT"),
            ):
                try:
                    if sealed.open(key) == plain:
                        found.append(f"a fresh seal of {what}")
                except ArtifactError:
                    pass
        if 16 < len(data) <= LIMITS.chunk + 16:
            found += self._chunk(data, randoms)
        return found

    def _chunk(self, data: bytes, randoms: Sequence[bytes]) -> list[str]:
        bundle_ids = {r for r in randoms if len(r) == 16}
        for aead, name, cipher in self._ciphers:
            prefixes = {r for r in randoms if len(r) == aead.nonce_len - 5}
            for prefix, bundle_id, a, i, last in itertools.product(
                prefixes,
                bundle_ids,
                range(self.ASSET_POSITIONS),
                range(self.CHUNK_INDEXES),
                (False, True),
            ):
                try:
                    aead.open(cipher, chunk_nonce(prefix, i, last), data, chunk_aad(bundle_id, a))
                except ArtifactError:
                    continue
                return [f"a chunk that opens under the OEM's {name}"]
        return []


# -- every command with every argument the CM can craft --------------------------------------------
ROM_ARGS: dict[str, tuple[str, ...]] = {
    "rom.status": (),
    "rom.identity": (),
    "rom.burn": ("image",),
    "rom.make-identity": (),
    "rom.store-certificate": ("certificate",),
    "rom.boot": ("image",),
}
#: argument names of every command of the software (docs/protocol.md section 8)
SOFTWARE_ARGS: dict[str, tuple[str, ...]] = {
    "oem.keygen": ("oem-rnd-input", "bundle"),
    "oem.regen": ("enc-oem-rnd-input", "enc-rnd-share", "bundle"),
    "seal.asset": ("name", "kind", "length", "key-type", "slot", "region"),
    "seal.chunk": ("index", "data"),
    "seal.generate": ("name", "key-type", "slot"),
    "seal.finish": (),
    "cm.begin": ("enc-oem-share", "manifest"),
    "cm.chunk": ("asset", "index", "data", "next"),
    "cm.finish": (),
    "lock": (),
}
#: commands no chip has: readback and debug requests a CM would try
UNKNOWN_OPS = ("slot.read", "flash.read", "rom.read", "debug", "seal.open", "cm.export")
#: names a CM adds to a command that takes none
STRAY_ARGS = ("enc-oem-share", "manifest", "data", "slot")


def cm_crafted_calls(
    base: dict[str, dict[str, Any]], bytes_values: Sequence[bytes], other_values: Sequence[Any]
) -> list[tuple[str, dict[str, Any]]]:
    """Every command with every argument the CM can craft: each argument in turn replaced by
    every candidate, each one left out, every bytes argument at once set to each bytes
    candidate, and stray arguments; unknown commands with each candidate."""
    calls: list[tuple[str, dict[str, Any]]] = []
    values = [*bytes_values, *other_values]
    for op, names in {**SOFTWARE_ARGS, **ROM_ARGS}.items():
        args = base[op]
        calls.append((op, args))
        for name in names:
            calls += [(op, {**args, name: v}) for v in values]
            if name in args:
                calls.append((op, {k: v for k, v in args.items() if k != name}))
        byte_names = [n for n in names if isinstance(args.get(n), bytes)]
        if len(byte_names) > 1:
            calls += [(op, {**args, **dict.fromkeys(byte_names, v)}) for v in bytes_values]
        if not names:
            calls += [(op, {n: v}) for n in STRAY_ARGS for v in bytes_values]
    for op in UNKNOWN_OPS:
        calls += [(op, {"slot": 1, "region": "app", "data": v}) for v in bytes_values[:4]]
    return calls


def relabelled(sealed_bytes: bytes, **header: Any) -> bytes:
    """A sealed value with its protected header fields replaced (the ciphertext kept)."""
    m = cose.decode(sealed_bytes, cose.TAG_ENCRYPT0, limit=LIMITS.sealed_value, what="x")
    protected = cose.encode_protected({**m.protected, **header})
    return cose.CoseMessage(cose.TAG_ENCRYPT0, protected, {}, m.unprotected, m.body).to_bytes()


def retagged(sealed_bytes: bytes, tag: int) -> bytes:
    """A sealed value's fields dressed up as another COSE message (Mac0, Sign1)."""
    m = cose.decode(sealed_bytes, cose.TAG_ENCRYPT0, limit=LIMITS.sealed_value, what="x")
    return cbor.encode(
        cbor2.CBORTag(tag, [m.protected_bytes, {}, m.body, m.unprotected[cose.IV] + bytes(4)])
    )


@dataclass
class SweepLog:
    calls: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)


def sweep(
    socket: Socket,
    setup: Sequence[tuple[str, dict[str, Any]]],
    calls: Sequence[tuple[str, dict[str, Any]]],
    log: SweepLog,
    *,
    witness: OemKeyWitness | None = None,
    check: Callable[[str, bytes], list[str]] | None = None,
) -> None:
    """Bring the chip into the state ``setup`` makes, send one crafted call, judge its answer;
    again for every call. A refused call ends the software's sessions; a ROM call power-cycles
    the chip afterwards (a re-boot or a burn must not leave state for the next call)."""
    end = messages.encode_request("seal.finish", {"end": 0})  # refused: ends every session
    for op, args in calls:
        with suppress(ChipRefused):
            socket.client.send(end)
        socket.trng.outputs.clear()
        for s_op, s_args in setup:
            socket.client.call(s_op, s_args)  # the state must be reachable every time
        log.calls += 1
        request = messages.encode_request(op, args)
        raw = socket.client._link.exchange(request)  # the raw answer is judged
        try:
            result = messages.decode_response(raw)
        except ChipRefused as e:
            log.refused[e.code] += 1
        else:
            log.accepted[op] += 1
            if witness is not None:
                for f in witness.findings(result, socket.trng.outputs):
                    log.findings.append(f"{op} {sorted(args)}: {f}")
        if check is not None:
            log.findings += [f"{op} {sorted(args)}: {f}" for f in check(op, raw)]
        if op.startswith("rom.") or op in UNKNOWN_OPS:
            socket.power_cycle()


PARAMS = {"epoch": 1, "min-svn": 1, "aead": 3, "chunk-size": 256}


def cm_material(world: Any, a: Artifacts, cm_own_dir: Path, certificate: bytes) -> dict[str, Any]:
    """Everything the CM can put in an argument, the base arguments of every command, and the
    session states it can reach, from what it holds: the OEM's ENC(OEM_SHARE) and bundle, the
    software, a chip's certificate, and its own FIG. 2 output in ``cm_own_dir``."""
    share = a.share
    sealed = cose.decode(share, cose.TAG_ENCRYPT0, limit=LIMITS.sealed_value, what="share")
    m = cose.decode(a.manifest, cose.TAG_MAC0, limit=LIMITS.manifest, what="manifest")
    chunks = a.chunks()
    ca_key, _ = rogue_ca()
    own = {
        "input": (cm_own_dir / "enc-oem-rnd-input.cose").read_bytes(),
        "rnd": (cm_own_dir / "enc-rnd-share.cose").read_bytes(),
        "share": (cm_own_dir / "enc-oem-share.cose").read_bytes(),
        "manifest": Artifacts.load(
            world.software, cm_own_dir / "enc-oem-share.cose", cm_own_dir / "bundle.cbor"
        ).manifest,
    }
    bytes_values = [
        share,
        relabelled(share, **{H_VALUE: "rnd-share"}),
        relabelled(share, **{H_VALUE: "oem-rnd-input"}),
        relabelled(share, **{H_FAMILY: bytes(8)}),
        retagged(share, cose.TAG_MAC0),
        retagged(share, cose.TAG_SIGN1),
        sealed.body,
        sealed.body[:32],
        sealed.body[:16],
        sealed.unprotected[cose.IV],
        a.manifest,
        m.body,
        m.auth,
        # the manifest dressed as a sealed value
        cbor2.dumps(
            cbor2.CBORTag(cose.TAG_ENCRYPT0, [m.protected_bytes, {cose.IV: m.auth[:12]}, m.body])
        ),
        chunks[0][0],
        chunks[2][0],
        a.bundle.chain_links(2)[0],
        own["input"],
        own["rnd"],
        own["share"],
        own["manifest"],
        b"",
        bytes(16),
        bytes(32),
        a.bundle.manifest.bundle_id,
        certificate,
    ]
    other_values = [
        0,
        1,
        255,
        2**32,
        -1,
        "key",
        "oem-share",
        "rnd-share",
        "",
        True,
        None,
        [],
        {},
        dict(PARAMS),
        {"enc-oem-share": share},
        [share],
    ]
    base: dict[str, dict[str, Any]] = {
        "oem.keygen": {"oem-rnd-input": sealed.body[:32], "bundle": dict(PARAMS)},
        "oem.regen": {
            "enc-oem-rnd-input": own["input"],
            "enc-rnd-share": own["rnd"],
            "bundle": dict(PARAMS),
        },
        "seal.asset": {"name": "x", "kind": "config", "length": 300, "region": "r"},
        "seal.chunk": {"index": 1, "data": bytes(44)},
        "seal.generate": {"name": "g", "key-type": "aes-256", "slot": 3},
        "seal.finish": {},
        "cm.begin": {"enc-oem-share": share, "manifest": a.manifest},
        "cm.chunk": {"asset": 0, "index": 0, "data": chunks[0][0], "next": CHAIN_END},
        "cm.finish": {},
        "lock": {},
        "rom.status": {},
        "rom.identity": {},
        "rom.burn": {"image": cm_immutable_image(world.icm.family_id)[0]},
        "rom.make-identity": {},
        "rom.store-certificate": {"certificate": reissued(certificate, ca_key)},
        "rom.boot": {"image": a.image},
    }
    states: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "booted": [],
        "OEM provisioning session": [("cm.begin", base["cm.begin"])],
        "OEM provisioning mid-bundle": [
            ("cm.begin", base["cm.begin"]),
            *(("cm.chunk", args) for args in chunk_args(a)[:3]),
        ],
        "CM sealing session (regen), asset open": [
            ("oem.regen", base["oem.regen"]),
            ("seal.asset", base["seal.asset"]),
        ],
        "CM sealing session (keygen), asset sealed": [
            ("oem.keygen", base["oem.keygen"]),
            ("seal.generate", {"name": "k", "key-type": "ec-p256", "slot": 4}),
        ],
    }
    return {"bytes": bytes_values, "other": other_values, "base": base, "states": states}


def chunk_args(a: Artifacts) -> list[dict[str, Any]]:
    out = []
    for asset in range(len(a.bundle.chunks)):
        links = a.bundle.chain_links(asset)
        for index, data in enumerate(a.bundle.chunks[asset]):
            out.append({"asset": asset, "index": index, "data": data, "next": links[index]})
    return out


# -- identities the CM forges ----------------------------------------------------------------------
def rogue_ca(name: str = "trustprov rogue CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    return ec.generate_private_key(ec.SECP256R1()), x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    )


def reissued(
    genuine_der: bytes, ca_key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None
) -> bytes:
    """The genuine chip certificate re-signed by another CA: same subject, same public key,
    same extensions and serial, and (by default) the genuine issuer's name, as a forger would."""
    cert = x509.load_der_x509_certificate(genuine_der)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(issuer if issuer is not None else cert.issuer)
        .public_key(cert.public_key())  # type: ignore[arg-type]
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def cm_immutable_image(family_id: bytes) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """An immutable-memory image of the CM's making (its own shares and its own software signing
    key, which would let it run its own software and open everything if a chip took it), and
    that signing key."""
    signing_key = ec.generate_private_key(ec.SECP256R1())
    image = ImmutableMemory(
        family_id=family_id,
        hw_share=os.urandom(32),
        rom_share=os.urandom(32),
        k_oem_share=os.urandom(32),
        k_oem_master_share=os.urandom(32),
        software_keys=(public_key_der(signing_key),),
    ).to_bytes()
    return image, signing_key


def sign_other_code(icm_: Icm, root: Path) -> tuple[Path, Path]:
    """The ICM's own key over other code: a copy of the software with one more command (a
    readback "debug.dump"), as a debug build would be; at security version 7. Returns the
    signed image and the modified code tree."""
    tree = root / "modified" / "trustprov"
    shutil.copytree(CODE_ROOT, tree, ignore=shutil.ignore_patterns("__pycache__"))
    commands = tree / "firmware" / "commands.py"
    text = commands.read_text()
    entry = '"lock": ProvisioningSoftware.lock,'
    assert entry in text
    commands.write_text(
        text.replace(entry, f'{entry}\n    "debug.dump": ProvisioningSoftware.lock,')
    )
    out = root / "debug-build.cose"
    sign_software(icm_, out, security_version=7, code_root=tree)
    return out, tree


# -- the power -------------------------------------------------------------------------------------
class PowerLost(OSError):
    """The chip lost power: the persistent write in progress never lands."""


class PowerCut:
    """A `Farm.before_commit` hook: counts the chip's persistent writes and cuts the power just
    before write number ``at`` commits (None: only count)."""

    def __init__(self, at: int | None = None) -> None:
        self.at = at
        self.writes = 0

    def __call__(self) -> None:
        n = self.writes
        self.writes += 1
        if n == self.at:
            raise PowerLost(f"power cut at persistent write {n}")


def manufacture_lot(world: Any, root: Path, lot: str, count: int) -> tuple[Path, list[bytes]]:
    """A farm of fresh chips of the world's family (MANUFACTURED, counter 0)."""
    farm = root / f"{lot}.farm"
    made = manufacture(world.icm, farm, lot, count, root / f"{lot}.json")
    return farm, list(made.uids)
