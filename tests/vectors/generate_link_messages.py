"""Link-message vectors (docs/protocol.md 8.5): a request of every op and every error code, and
the exact answer a chip gives it, from one virtual chip run from blank to LOCKED.

The chip is deterministic: its TRNG is a fixed byte stream (``StreamTrng``, written out in the
JSON so that a port can feed the same bytes), its UID and lot are fixed, and the code it measures
at boot is a fixed archive (the stand-in for a port's firmware image, section 5.3), so the
vectors do not change when trustprov's own sources do. Every request is built from the
published test family (section 14.1) and the vectors' OEM (section 11) with fixed nonces. The
steps run in order on that one chip; ``test_link_message_vectors.py`` replays each request on a
fresh chip made the same way and compares the answer bytes.

Three things are randomized and kept from the previous run while they still verify (as the
software vectors are): the chip certificate (the device CA's ECDSA signature), and the ES256
signatures of the receipt (the cm.finish answer) and of the attestation token (rom.attest), whose
64 bytes are named by the step's ``random``.

Run from any directory (``make vectors`` runs it after the other generators)::

    python tests/vectors/generate_link_messages.py
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.chip.device import Chip
from trustprov.chip.farm import Farm
from trustprov.conformance.family import TestFamily
from trustprov.crypto.keys import load_public_key
from trustprov.formats import cbor
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Bundle, SignedManifest
from trustprov.formats.deflate import deflate
from trustprov.formats.sealed import SealedKind, SealedValue
from trustprov.link import messages
from trustprov.link.port import ChipPort

OUT = Path(__file__).resolve().parent / "link_messages.json"

UID = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
LOT = "LOT-VECTORS"
TRNG_LABEL = b"trustprov link-message vectors TRNG"
ATTEST_CHALLENGE = hashlib.sha256(b"trustprov link-message vectors/attest").digest()
#: what the vector chip measures at boot (section 5.3): the archive of this one file
CODE = {"firmware/main.py": b"print('trustprov link-message vectors')\n"}
#: a P-256 key that is not the chip's, for the bad-certificate step (FIPS 186-5 A.2.1 material)
OTHER_KEY_MATERIAL = hashlib.sha256(b"trustprov link-message vectors/other key").digest() + bytes(8)


class StreamTrng:
    """The vector chip's TRNG: SHA-256(TRNG_LABEL || [i]_4), i = 0, 1, ..., concatenated; each
    draw takes the next bytes of that stream. NOT random: for vectors only."""

    def __init__(self) -> None:
        self._block = 0
        self._buf = b""

    def random(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += hashlib.sha256(TRNG_LABEL + self._block.to_bytes(4)).digest()
            self._block += 1
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def vector_chip(directory: Path) -> ChipPort:
    """A blank chip of the vectors, in a farm of its own under ``directory``."""
    code_root = directory / "code"
    for path, content in CODE.items():
        (code_root / path).parent.mkdir(parents=True, exist_ok=True)
        (code_root / path).write_bytes(content)
    farm = Farm(directory / "vectors.farm", create=True)
    state = farm.add_blank(UID, LOT)
    return ChipPort(Chip(farm, state, trng=StreamTrng(), code_root=code_root))


def nonce(label: str) -> bytes:
    return hashlib.sha256(f"trustprov link-message vectors/{label}".encode()).digest()[:12]


def _flip(data: bytes, at: int) -> bytes:
    at %= len(data)
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


class Script:
    """Runs each step on the chip and records it."""

    def __init__(self, port: ChipPort, previous: dict[str, dict[str, Any]]) -> None:
        self.port = port
        self.steps: list[dict[str, Any]] = []
        self._previous = previous

    def raw(self, name: str, section: str, request: bytes, note: str = "") -> bytes:
        answer = self.port.handle(request)
        step: dict[str, Any] = {
            "name": name,
            "section": section,
            "request": request.hex(),
            "answer": answer.hex(),
        }
        if note:
            step["note"] = note
        self.steps.append(step)
        return answer

    def call(self, name: str, section: str, op: str, args: dict[str, Any], note: str = "") -> Any:
        answer = self.raw(name, section, messages.encode_request(op, args), note)
        return cbor2.loads(answer)

    def attest(self, name: str, section: str, challenge: bytes) -> Any:
        """rom.attest: its token's ES256 signature is randomized; kept while it verifies."""
        request = messages.encode_request("rom.attest", {"challenge": challenge})
        answer = self.port.handle(request)
        token = cbor2.loads(answer)["ok"]["token"]
        at = answer.index(token) + len(token) - 64
        self._keep(name, section, request, answer, at=at, what="token")
        return cbor2.loads(bytes.fromhex(self.steps[-1]["answer"]))

    def _keep(
        self, name: str, section: str, request: bytes, answer: bytes, *, at: int, what: str
    ) -> None:
        old = self._previous.get(name)
        if old is not None:
            before = bytes.fromhex(old["answer"])
            if len(before) == len(answer) and (
                before[:at] + before[at + 64 :] == answer[:at] + answer[at + 64 :]
            ):
                answer = before  # the same bytes but the signature, which still verifies
        self.steps.append(
            {
                "name": name,
                "section": section,
                "request": request.hex(),
                "answer": answer.hex(),
                "random": [at, 64],
                "note": f"bytes [random[0], random[0] + 64) are the {what}'s ES256 signature "
                "(r || s): randomized; verify it under the chip's identity key",
            }
        )

    def finish_with_receipt(self, name: str, section: str) -> Any:
        """cm.finish: its receipt's ES256 signature is randomized; kept while it verifies."""
        request = messages.encode_request("cm.finish", {})
        answer = self.port.handle(request)
        receipt = cbor2.loads(answer)["ok"]["receipt"]
        at = answer.index(receipt) + len(receipt) - 64
        self._keep(name, section, request, answer, at=at, what="receipt")
        return cbor2.loads(bytes.fromhex(self.steps[-1]["answer"]))


def certificate(
    fam: TestFamily, key: ec.EllipticCurvePublicKey, previous: dict[str, Any] | None
) -> bytes:
    """A chip certificate (section 7) of ``key``, kept from the previous run's step while it
    still certifies that key (the device CA's ECDSA signature is randomized)."""
    if previous is not None:
        der: bytes = cbor2.loads(bytes.fromhex(previous["request"]))["args"]["certificate"]
        if x509.load_der_x509_certificate(der).public_key() == key:
            return der
    return fam.certificate(UID, key)


def sealed(fam: TestFamily, kind: SealedKind, value: bytes, label: str, family: bytes) -> bytes:
    key = fam.k_oem_share if kind == "oem-share" else fam.k_oem_master_share
    return SealedValue.seal(key, kind, family, nonce(label), value).to_bytes()


def cm_requests(bundle: Bundle, enc_oem_share: bytes) -> list[bytes]:
    """cm.begin, every cm.chunk (with its chain value, section 6.3) and cm.finish."""
    out = [
        messages.encode_request(
            "cm.begin", {"enc-oem-share": enc_oem_share, "manifest": bundle.signed.to_bytes()}
        )
    ]
    for a, chunks in enumerate(bundle.chunks):
        for i, (data, nxt) in enumerate(zip(chunks, bundle.chain_links(a), strict=True)):
            out.append(
                messages.encode_request(
                    "cm.chunk", {"asset": a, "index": i, "data": data, "next": nxt}
                )
            )
    return out


def seal_bundle(
    s: Script,
    prefix: str,
    assets: list[tuple[str, dict[str, Any], list[bytes]]],
    generate: tuple[dict[str, Any], ...] = (),
) -> Bundle:
    """seal.asset + seal.chunk (last to first) per asset, seal.generate, seal.finish."""
    chunks: list[tuple[bytes, ...]] = []
    for name, args, pieces in assets:
        s.call(f"{prefix}.seal.asset {name}", "8.1", "seal.asset", args)
        sealed_pieces = [b""] * len(pieces)
        for i in reversed(range(len(pieces))):
            out = s.call(
                f"{prefix}.seal.chunk {name} {i}",
                "6.5, 8.1",
                "seal.chunk",
                {"index": i, "data": pieces[i]},
            )
            sealed_pieces[i] = out["ok"]["chunk"]
        chunks.append(tuple(sealed_pieces))
    for g in generate:
        out = s.call(f"{prefix}.seal.generate {g['name']}", "3, 8.1", "seal.generate", g)
        chunks.append((out["ok"]["chunk"],))
    manifest = s.call(f"{prefix}.seal.finish", "6.1, 8.1", "seal.finish", {})["ok"]["manifest"]
    return Bundle(SignedManifest.from_bytes(manifest), tuple(chunks))


def run(port: ChipPort, previous: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    fam = TestFamily.load()
    s = Script(port, previous)
    code = cbor.encode(CODE)
    other_family = bytes(8)
    params = {"epoch": 7, "min-svn": 2, "aead": 3, "chunk-size": 256}

    # -- the boot ROM, blank chip ----------------------------------------------------------------
    s.call("rom.status blank", "8.1", "rom.status", {})
    s.call("rom.attest blank: lifecycle", "8.2, 8.8", "rom.attest", {"challenge": ATTEST_CHALLENGE})
    s.call("rom.boot blank: lifecycle", "8.3", "rom.boot", {"image": fam.sign(code, 2)})
    s.call("rom.make-identity blank: lifecycle", "8.3", "rom.make-identity", {})
    s.raw("not CBOR: malformed", "8.2", b"\xff")
    s.raw("no args: malformed", "8.2", cbor.encode({"op": "rom.status"}), "a request is {op, args}")
    s.call("rom.burn not an image: malformed", "8.2, 8.6", "rom.burn", {"image": b"\x80"})
    s.call("rom.burn", "8.1, 8.6", "rom.burn", {"image": fam.immutable().to_bytes()})
    s.call(
        "rom.burn again: immutable-written",
        "8.2",
        "rom.burn",
        {"image": fam.immutable().to_bytes()},
    )
    s.call(
        "rom.store-certificate before identity: lifecycle",
        "8.3",
        "rom.store-certificate",
        {"certificate": b"\x30"},
    )
    public = s.call("rom.make-identity", "7, 8.1", "rom.make-identity", {})["ok"]["public-key"]
    s.call("rom.make-identity again: identity-exists", "8.2", "rom.make-identity", {})
    other = ec.derive_private_key(
        int.from_bytes(OTHER_KEY_MATERIAL) % (2**255) + 1, ec.SECP256R1()
    ).public_key()
    s.call(
        "rom.store-certificate of another key: bad-certificate",
        "7, 8.2",
        "rom.store-certificate",
        {
            "certificate": certificate(
                fam, other, previous.get("rom.store-certificate of another key: bad-certificate")
            )
        },
    )
    key = load_public_key(public)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    cert = certificate(fam, key, previous.get("rom.store-certificate"))
    s.call("rom.store-certificate", "7, 8.1", "rom.store-certificate", {"certificate": cert})
    s.call("rom.identity", "8.1", "rom.identity", {})
    s.call(
        "rom.attest short challenge: malformed",
        "8.1, 8.2",
        "rom.attest",
        {"challenge": ATTEST_CHALLENGE[:31]},
    )
    s.call("unknown op before boot: unknown-command", "8.2", "rom.nothing", {})
    s.call("software op before boot: unknown-command", "8.2", "cm.finish", {})

    # -- boot (section 5) ------------------------------------------------------------------------
    s.call("rom.boot not an image: bad-software", "5, 8.2", "rom.boot", {"image": b"\xa0"})
    s.call(
        "rom.boot wrong key: bad-signature",
        "5, 8.2",
        "rom.boot",
        {"image": fam.sign(code, 3, wrong_key=True)},
    )
    s.call(
        "rom.boot other code: code-mismatch",
        "5, 8.2",
        "rom.boot",
        {"image": fam.sign(code + b"\x00", 3)},
    )
    s.call("rom.boot svn 3", "5, 8.1", "rom.boot", {"image": fam.sign(code, 3)})
    s.call("rom.boot svn 2: rollback", "5, 8.2", "rom.boot", {"image": fam.sign(code, 2)})
    s.call("cm.finish after a failed boot: unknown-command", "8.3", "cm.finish", {})
    s.call("rom.boot svn 3 again", "5, 8.3", "rom.boot", {"image": fam.sign(code, 3)})
    s.call("rom.status manufactured", "8.1", "rom.status", {"digests": True})
    s.call("unknown op: unknown-command", "8.2", "rom.nothing", {})

    # -- FIG. 2 keygen, FIG. 4 regen, sealing (sections 3, 4, 6.5) --------------------------------
    s.call(
        "oem.keygen short OEM_RND_INPUT: bad-request",
        "8.2",
        "oem.keygen",
        {"oem-rnd-input": fam.oem_rnd_input[:15], "bundle": params},
    )
    s.call(
        "oem.keygen chunk-size 255: bad-request",
        "8.2",
        "oem.keygen",
        {"oem-rnd-input": fam.oem_rnd_input, "bundle": {**params, "chunk-size": 255}},
    )
    keygen = s.call(
        "oem.keygen",
        "3, 4, 8.1",
        "oem.keygen",
        {"oem-rnd-input": fam.oem_rnd_input, "bundle": params},
    )["ok"]
    s.call(
        "oem.keygen under a session: bad-sequence",
        "8.3",
        "oem.keygen",
        {"oem-rnd-input": fam.oem_rnd_input, "bundle": params},
    )
    s.call(
        "seal.asset after a refusal: bad-sequence",
        "8.3",
        "seal.asset",
        {"name": "x", "kind": "config", "length": 1, "region": "x"},
    )
    enc_input = sealed(fam, "oem-rnd-input", fam.oem_rnd_input, "enc-oem-rnd-input", fam.family_id)
    enc_rnd = sealed(fam, "rnd-share", fam.rnd_share, "enc-rnd-share", fam.family_id)
    s.call(
        "oem.regen tampered ENC(RND_SHARE): bad-sealed-value",
        "4, 8.2",
        "oem.regen",
        {"enc-oem-rnd-input": enc_input, "enc-rnd-share": _flip(enc_rnd, -1), "bundle": params},
    )
    s.call(
        "oem.regen ENC(OEM_SHARE) as ENC(RND_SHARE): bad-sealed-value",
        "4, 8.2",
        "oem.regen",
        {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": keygen["enc-oem-share"],
            "bundle": params,
        },
    )
    s.call(
        "oem.regen other family: wrong-family",
        "4, 8.2",
        "oem.regen",
        {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": sealed(fam, "rnd-share", fam.rnd_share, "other", other_family),
            "bundle": params,
        },
    )
    # the good bundle: a config of 300 bytes (2 chunks) and a generated key; epoch 7
    enc_oem_share = s.call(
        "oem.regen",
        "3, 4, 8.1",
        "oem.regen",
        {"enc-oem-rnd-input": enc_input, "enc-rnd-share": enc_rnd, "bundle": params},
    )["ok"]["enc-oem-share"]
    config = bytes(range(256)) + bytes(44)
    s.call(
        "seal.asset cfg",
        "8.1",
        "seal.asset",
        {"name": "cfg", "kind": "config", "length": 300, "region": "config"},
    )
    s.call("seal.chunk 0 first: bad-sequence", "6.5, 8.2", "seal.chunk", {"index": 0, "data": b""})
    s.call(
        "oem.regen again",
        "8.3",
        "oem.regen",
        {"enc-oem-rnd-input": enc_input, "enc-rnd-share": enc_rnd, "bundle": params},
    )
    good = seal_bundle(
        s,
        "good",
        [
            (
                "cfg",
                {"name": "cfg", "kind": "config", "length": 300, "region": "config"},
                [config[:256], config[256:]],
            )
        ],
        ({"name": "signer", "key-type": "ec-p256", "slot": 2},),
    )
    s.call(
        "seal.finish without a session: bad-sequence",
        "8.3",
        "seal.finish",
        {},
    )
    # a bundle whose key is no P-256 scalar (d = 2^256 - 1 >= n): installs nothing (bad-asset)
    s.call(
        "oem.regen for a bad key",
        "8.1",
        "oem.regen",
        {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": enc_rnd,
            "bundle": {**params, "epoch": 8},
        },
    )
    bad_key = seal_bundle(
        s,
        "bad-key",
        [
            (
                "k",
                {"name": "k", "kind": "key", "length": 32, "key-type": "ec-p256", "slot": 1},
                [b"\xff" * 32],
            )
        ],
    )
    # a bundle for software of security version 4 and above
    s.call(
        "oem.regen min-svn 4",
        "8.1",
        "oem.regen",
        {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": enc_rnd,
            "bundle": {**params, "epoch": 8, "min-svn": 4},
        },
    )
    too_new = seal_bundle(
        s,
        "min-svn-4",
        [("c", {"name": "c", "kind": "config", "length": 1, "region": "c"}, [b"c"])],
    )
    # a bundle for the authorized chips of a set that does not hold this chip
    auth = AuthorizedSet.from_uids([bytes(16), bytes(15) + b"\x01"], fam.family_id)
    s.call(
        "oem.regen authorized",
        "8.1, 15.2",
        "oem.regen",
        {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": enc_rnd,
            "bundle": {**params, "epoch": 8, "authorized": [auth.root, len(auth)]},
        },
    )
    unauthorized = seal_bundle(
        s,
        "authorized",
        [("c", {"name": "c", "kind": "config", "length": 1, "region": "c"}, [b"c"])],
    )
    s.call(
        "oem.regen chunk-size 65536",
        "8.1",
        "oem.regen",
        {
            "enc-oem-rnd-input": enc_input,
            "enc-rnd-share": enc_rnd,
            "bundle": {**params, "chunk-size": 65536},
        },
    )
    s.call(
        "seal.asset chunk-size 65536",
        "8.1",
        "seal.asset",
        {"name": "c", "kind": "config", "length": 1, "region": "c"},
    )
    s.call("seal.chunk chunk-size 65536", "8.1", "seal.chunk", {"index": 0, "data": b"c"})
    s.call("seal.finish chunk-size 65536: ram-budget", "6.5, 8.4", "seal.finish", {})

    # -- FIG. 3 (section 6.6) ---------------------------------------------------------------------
    begin, *chunks = cm_requests(good, enc_oem_share)
    begin_args = cbor2.loads(begin)["args"]
    s.call(
        "cm.begin tampered ENC(OEM_SHARE): bad-share",
        "6.6, 8.2",
        "cm.begin",
        {**begin_args, "enc-oem-share": _flip(enc_oem_share, -1)},
    )
    s.call(
        "cm.begin ENC(OEM_SHARE) of another family: wrong-family",
        "6.6, 8.2",
        "cm.begin",
        {
            **begin_args,
            "enc-oem-share": sealed(fam, "oem-share", fam.oem_share, "share", other_family),
        },
    )
    s.call(
        "cm.begin ENC(RND_SHARE) as ENC(OEM_SHARE): bad-share",
        "4, 6.6, 8.2",
        "cm.begin",
        {**begin_args, "enc-oem-share": enc_rnd},
    )
    s.call(
        "cm.begin tampered manifest: bad-manifest",
        "6.6, 8.2",
        "cm.begin",
        {**begin_args, "manifest": _flip(begin_args["manifest"], -1)},
    )
    v1 = cbor2.loads(good.signed.message.body)
    v1["v"] = 1  # genuine (MACed with K_AUTH) but of the old construction
    s.call(
        "cm.begin manifest v1: bundle-version",
        "6.1, 8.2",
        "cm.begin",
        {
            **begin_args,
            "manifest": fam.manifest_mac0(cbor.encode(v1)),
        },
    )
    s.call(
        "cm.begin min-svn 4: software-too-old",
        "6.6, 8.2",
        "cm.begin",
        {**begin_args, "manifest": too_new.signed.to_bytes()},
    )
    s.call(
        "cm.begin without proof: unauthorized",
        "6.6, 15.3, 8.2",
        "cm.begin",
        {**begin_args, "manifest": unauthorized.signed.to_bytes()},
    )
    manifest = good.manifest
    big = dataclasses.replace(
        manifest,
        chunk_size=65536,
        assets=tuple(dataclasses.replace(a, chunks=1) for a in manifest.assets),
    )
    big_mac0 = fam.manifest_mac0(big.to_payload())
    s.call(
        "cm.begin chunk-size 65536: ram-budget",
        "6.6, 8.4",
        "cm.begin",
        {**begin_args, "manifest": big_mac0},
    )
    s.raw("cm.chunk without a session: bad-sequence", "8.3", chunks[0])
    s.raw("cm.begin", "6.6, 8.1", begin)
    s.call("cm.begin under a session: bad-sequence", "8.3", "cm.begin", begin_args)
    s.raw("cm.begin after the refusal", "8.3", begin)
    s.call(
        "cm.chunk missing next: bad-request",
        "8.2",
        "cm.chunk",
        {k: v for k, v in cbor2.loads(chunks[0])["args"].items() if k != "next"},
    )
    s.raw("cm.begin again", "8.3", begin)
    s.raw("cm.chunk 1 before 0: bad-sequence", "6.6, 8.2", chunks[1])
    s.raw("cm.begin for a tampered chunk", "8.3", begin)
    c0 = cbor2.loads(chunks[0])["args"]
    s.call(
        "cm.chunk tampered: bad-chunk",
        "6.3, 6.6, 8.2",
        "cm.chunk",
        {**c0, "data": _flip(c0["data"], 0)},
    )
    s.raw("cm.begin for an early finish", "8.3", begin)
    s.raw("cm.chunk 0", "6.6, 8.1", chunks[0])
    s.call("cm.finish early: incomplete", "6.6, 8.2", "cm.finish", {})
    bk_begin, bk_chunk = cm_requests(bad_key, enc_oem_share)
    s.raw("cm.begin bad key", "6.6", bk_begin)
    s.raw("cm.chunk bad key: bad-asset", "6.6, 8.2", bk_chunk)
    s.raw("cm.begin to install", "6.6, 8.1", begin)
    for k, request in enumerate(chunks):
        s.raw(f"cm.chunk {k} to install", "6.6, 8.1", request)
    s.finish_with_receipt("cm.finish", "6.6, 6.8, 8.1")
    s.call("rom.status provisioned", "6.7, 8.1", "rom.status", {"digests": True})
    s.attest("rom.attest provisioned", "8.1, 8.8", ATTEST_CHALLENGE)
    s.raw("cm.begin the same bundle: stale-epoch", "6.6, 8.2", begin)
    # a second OEM (its own domain) on a chip of the first
    other = s.call(
        "oem.keygen second OEM",
        "3, 4, 8.1",
        "oem.keygen",
        {"oem-rnd-input": fam.other_oem_rnd_input, "bundle": {**params, "epoch": 9}},
    )["ok"]
    foreign = seal_bundle(
        s,
        "second-oem",
        [("c", {"name": "c", "kind": "config", "length": 1, "region": "c"}, [b"c"])],
    )
    s.raw(
        "cm.begin of another OEM: domain-mismatch",
        "6.6, 8.2",
        cm_requests(foreign, other["enc-oem-share"])[0],
    )
    # -- lock (section 8.3) ------------------------------------------------------------------------
    s.call(
        "oem.regen before lock",
        "8.3",
        "oem.regen",
        {"enc-oem-rnd-input": enc_input, "enc-rnd-share": enc_rnd, "bundle": params},
    )
    s.call("lock under a session: bad-sequence", "6.6, 8.3", "lock", {})
    s.call("lock", "6.6, 8.1", "lock", {})
    s.call("lock again: lifecycle", "8.3", "lock", {})
    s.call(
        "cm.begin locked, tampered share: lifecycle",
        "8.3",
        "cm.begin",
        {**begin_args, "enc-oem-share": _flip(enc_oem_share, -1)},
    )
    s.call("rom.status locked", "8.1", "rom.status", {})
    # -- a deflated firmware sealed (6.5: the host sends each chunk deflated; a LOCKED chip seals)
    regen = {"enc-oem-rnd-input": enc_input, "enc-rnd-share": enc_rnd, "bundle": params}
    firmware = b"".join(b"link vector firmware %04d; " % i for i in range(25))[:600]
    pieces = [deflate(firmware[i : i + 256], 15) for i in range(0, 600, 256)]
    fw = {"name": "fw", "kind": "firmware", "length": 600, "region": "app", "deflate": 15}
    s.call("oem.regen deflated: locked chips seal", "6.5, 8.3", "oem.regen", regen)
    seal_bundle(s, "deflated", [("fw", fw, pieces)])
    s.call("oem.regen deflated, bounds", "6.5", "oem.regen", regen)
    s.call("seal.asset deflated again", "6.5, 8.1", "seal.asset", fw)
    s.call(
        "seal.chunk deflated 17 bytes over: bad-request",
        "6.2, 6.5, 8.2",
        "seal.chunk",
        {"index": 2, "data": bytes(88 + 17)},
    )
    s.call("oem.regen deflated key", "6.5", "oem.regen", regen)
    s.call(
        "seal.asset key with deflate: bad-request",
        "6.1, 8.2",
        "seal.asset",
        {"name": "k", "kind": "key", "length": 32, "key-type": "aes-256", "slot": 1, "deflate": 15},
    )
    return s.steps


def compute(make: Callable[[Path], ChipPort] = vector_chip) -> dict[str, Any]:
    previous = {}
    if OUT.is_file():
        previous = {s["name"]: s for s in json.loads(OUT.read_text(encoding="ascii"))["steps"]}
    with tempfile.TemporaryDirectory() as d:
        steps = run(make(Path(d)), previous)
    names = [s["name"] for s in steps]
    assert len(set(names)) == len(names), "step names are unique"
    return {
        "about": "trustprov link-message vectors (docs/protocol.md 8.5): each request of "
        "'steps', sent in order to one blank chip, gets exactly 'answer'. Hex. Regenerate with: "
        "python tests/vectors/generate_link_messages.py",
        "chip": {
            "uid": UID.hex(),
            "lot": LOT,
            "trng": "SHA-256(label || [i]_4), i = 0, 1, ... concatenated; draws in order",
            "trng_label": TRNG_LABEL.hex(),
            "code": {k: v.hex() for k, v in CODE.items()},
            "code_archive": cbor.encode(CODE).hex(),
        },
        "steps": steps,
    }


def main() -> None:
    OUT.write_text(json.dumps(compute(), indent=2, sort_keys=True) + "\n", encoding="ascii")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
