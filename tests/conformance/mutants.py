"""The suite's mutation score: broken virtual chips, each with one rule of docs/protocol.md
broken, and the case that must catch it (docs/porting.md, "What the suite checks").

A mutant is the virtual chip with one part swapped, in a board served in this process: its link
endpoint (`ChipEndpoint` subclass), its I/O port (`ChipPort` subclass), or one function of its
boot ROM or firmware patched for as long as the board runs. The suite meets it over a real TCP
socket exactly as it meets a good chip; its power goes through the board's handler.

Two families are generated, one mutant per error code a request can reach (section 8.2):
``accepts-CODE`` answers ok where the chip must refuse with CODE (it skips the check), and
``misnames-CODE`` refuses with another code (8.2: the code is normative). `capacity` and
`internal` have none: no valid request reaches them (6.6 "Capacity").

These live in the test tree, not the package: they are chips with security checks removed, which
nobody should be able to serve from an installed trustprov; `make conformance-mutants` runs
them from the repository (`tests/conformance/run_mutants.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trustprov.chip.device import Hardware
from trustprov.chip.uart import ChipEndpoint
from trustprov.crypto.aead import AES_CCM_16_128_256
from trustprov.crypto.digest import sha256
from trustprov.crypto.schedule import asset_material
from trustprov.errors import FormatError
from trustprov.firmware.provisioning import ProvisioningSession
from trustprov.formats import budget, cose
from trustprov.formats.deflate import DEFLATE_SLACK
from trustprov.formats.receipt import ReceiptClaims, make_receipt
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages
from trustprov.link.port import ChipPort

from .broken import (
    DEFECTS,
    AnswersAnyHello,
    KeepsLink,
    ManyNaks,
    NeverIdles,
    NoErrorFrames,
    NoFragmentAcks,
    RunsLaterMessages,
    RunsWithoutHello,
    _Port,
)

PROV = "trustprov.firmware.provisioning"

#: error code -> the case that provokes it and checks the code
CODE_CASES = {
    "malformed": "rom.malformed",
    "unknown-command": "boot.bad-signature",
    "immutable-written": "manufacture.once",
    "identity-exists": "manufacture.once",
    "bad-certificate": "manufacture.burn",
    "lifecycle": "lock.locked",
    "bad-software": "boot.bad-software",
    "bad-signature": "boot.bad-signature",
    "code-mismatch": "boot.code-mismatch",
    "rollback": "boot.rollback",
    "bad-request": "refusal.bad-request",
    "bad-sequence": "refusal.bad-sequence",
    "bad-sealed-value": "refusal.swapped-kinds",
    "wrong-family": "refusal.other-family",
    "bad-share": "refusal.tampered-share",
    "bad-manifest": "refusal.tampered-manifest",
    "bundle-version": "refusal.manifest-version",
    "software-too-old": "refusal.software-too-old",
    "domain-mismatch": "refusal.domain-mismatch",
    "stale-epoch": "refusal.stale-epoch",
    "unauthorized": "refusal.unauthorized",
    "ram-budget": "refusal.ram-budget",
    "bad-chunk": "refusal.tampered-chunk",
    "bad-asset": "refusal.bad-asset",
    "incomplete": "refusal.incomplete",
}
UNREACHABLE_CODES = ("capacity", "internal")

#: cases that need others run before them on the same chip
PREREQUISITES = {
    "refusal.stale-epoch": ("fig3.provision",),
    "refusal.domain-mismatch": ("fig3.provision",),
    "fig3.update": ("fig3.provision",),
    "fig3.deflate": ("fig3.provision",),
    "lock.locked": ("fig3.provision",),
}


@dataclass(frozen=True)
class Mutant:
    name: str
    case: str  # the case that must fail on it
    rule: str
    endpoint: type[ChipEndpoint] = ChipEndpoint
    port: type[ChipPort] = ChipPort
    patches: tuple[tuple[str, Any], ...] = ()  # (dotted target, replacement), while it runs
    suite: str = "EdDSA"  # the signature suite the chip is burned for


# -- generated: every reachable error code ------------------------------------------------------
def _accepts(code: str) -> type[ChipPort]:
    class Accepts(_Port):
        def broken(self, _op: str, _args: dict[str, Any], request: bytes) -> bytes:
            response = self.real(request)
            err = self.error_of(response)
            return messages.encode_ok({}) if err is not None and err[0] == code else response

    Accepts.__name__ = Accepts.__qualname__ = f"Accepts_{code}"
    return Accepts


def _misnames(code: str) -> type[ChipPort]:
    other = "bad-request" if code != "bad-request" else "bad-sequence"

    class Misnames(_Port):
        def broken(self, _op: str, _args: dict[str, Any], request: bytes) -> bytes:
            response = self.real(request)
            err = self.error_of(response)
            if err is not None and err[0] == code:
                return messages.encode_error(other, err[1])
            return response

    Misnames.__name__ = Misnames.__qualname__ = f"Misnames_{code}"
    return Misnames


# -- the port ---------------------------------------------------------------------------------
class BootForgetsCounter(_Port):
    """Boots, but answers a security counter that is not the one it holds (section 5, 8.1)."""

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        response = self.real(request)
        if op == "rom.boot" and self.error_of(response) is None:
            return messages.encode_ok({"security-counter": 0})
        return response


class LenientDecoder(_Port):
    """Parses requests with a general CBOR decoder: no limits, duplicates, tags (section 1)."""

    def handle(self, request: bytes) -> bytes:
        try:
            messages.decode_request(request)
        except FormatError:
            try:
                value = cbor2.loads(request)
                op, args = value["op"], dict(value["args"])
            except Exception:  # noqa: BLE001 - what even this decoder cannot read
                return super().handle(request)
            return messages.encode_ok(self._dispatch(str(op), args))
        return super().handle(request)


class FailedBootKeepsSoftware(_Port):
    """Keeps the running software when a boot is refused (8.3: none runs until one succeeds)."""

    def broken(self, op: str, _args: dict[str, Any], request: bytes) -> bytes:
        software = self._software
        response = self.real(request)
        if op == "rom.boot" and self.error_of(response) is not None and software is not None:
            self._software = software
        return response


class NoAesCcm(_Port):
    """Implements AES-GCM only: refuses a manifest of AES-CCM (claim 6)."""

    def broken(self, op: str, args: dict[str, Any], request: bytes) -> bytes:
        if op == "cm.begin":
            try:
                body = cbor2.loads(cbor2.loads(args["manifest"]).value[2])
            except Exception:  # noqa: BLE001 - not a manifest: the real chip says so
                return self.real(request)
            if body.get("aead") == AES_CCM_16_128_256.cose_id:
                return messages.encode_error("bad-manifest", "unsupported AEAD")
        return self.real(request)


class RefusesProofAnyChip(_Port):
    """Refuses a proof sent with a bundle whose "authorized" is null (15.3: ignored)."""

    def broken(self, op: str, args: dict[str, Any], request: bytes) -> bytes:
        if op == "cm.begin" and "proof" in args:
            try:
                body = cbor2.loads(cbor2.loads(args["manifest"]).value[2])
            except Exception:  # noqa: BLE001 - not a manifest: the real chip says so
                return self.real(request)
            if body.get("authorized") is None:
                return messages.encode_error("unauthorized", "a proof for no set")  # the defect
        return self.real(request)


def _any_form(_value: Any, _data: bytes) -> None:
    """The defect: a request is taken in any well-formed encoding."""


# -- the firmware: one function patched -------------------------------------------------------
class _Anything(bytes):
    """Equal to every value: a comparison with it never fails."""

    def __eq__(self, _other: object) -> bool:
        return True

    def __ne__(self, _other: object) -> bool:
        return False

    __hash__ = bytes.__hash__


def _any_link(_tag: bytes, _next: bytes) -> bytes:
    return _Anything()


class _AnyKind(SealedValue):
    @classmethod
    def from_bytes(cls, data: bytes, expected: Any = None) -> SealedValue:  # noqa: ARG003 - ignored: the defect
        return SealedValue.from_bytes(data)


class _AnyLength(SealedValue):
    """The defect: a sealed value's plaintext is taken at any length its kind's key opens."""

    def open(self, key: bytes) -> bytes:
        m = self.message
        return AESGCM(key).decrypt(m.unprotected[cose.IV], m.body, m.enc_structure())


_verified = ProvisioningSession._verified_manifest


def _no_min_svn(self: ProvisioningSession, keys: Any, data: bytes) -> Any:
    return dataclasses.replace(_verified(self, keys, data), min_security_version=0)


def _signed_by_another_key(claims: ReceiptClaims, certificate: bytes, _sign: Any) -> bytes:
    other = ec.generate_private_key(ec.SECP256R1())

    def sign(message: bytes) -> bytes:
        r, s = utils.decode_dss_signature(other.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return make_receipt(claims, certificate, sign)


def _counter(change: Callable[[int], int]) -> Callable[..., ReceiptClaims]:
    def claims(**kw: Any) -> ReceiptClaims:
        return ReceiptClaims(**{**kw, "counter": change(kw["counter"])})

    return claims


_install = Hardware.install


def _keeps_dropped_slots(self: Hardware, **kw: Any) -> None:
    old = self.installed
    if old is not None:
        kw["slots"] = {**old.slots, **kw["slots"]}  # the defect: an update merges
    _install(self, **kw)


def _material_of_another_name(seed: bytes, key_type: str, name: str, length: int) -> bytes:
    if key_type != "ec-p256":
        name += "'"  # the defect: every type but P-256 from another label
    return asset_material(seed, key_type, name, length)


def _f_hashed(oem_rnd_input: bytes, rnd_share: bytes) -> bytes:
    return sha256(rnd_share, oem_rnd_input)  # the defect: F a plain hash, not section 3's KDF


_verify = SignedSoftware.verify


def _any_suite(self: SignedSoftware, key: Any, *, suite: str | None = None) -> None:
    """Verifies what the image carries under as many of the chip's keys, whatever its suite."""
    keys = list(key)
    _verify(self, keys[: len(self.algorithms)])


def _no_key_check(_key_type: str, _value: bytes, _name: str) -> None:
    """The defect: any bytes install as an EC key."""


def _no_proof_check(*_a: Any, **_kw: Any) -> None:
    """The defect: a proof is required but never checked."""


def _inflate_without(check: str) -> Callable[[bytes, int, int], bytes]:
    """The chip's inflater (formats.deflate.inflate, 6.6 step 7) with one bound left out."""

    def inflate(stream: bytes, wbits: int, length: int) -> bytes:
        if check == "inflate":  # the defect: the sealed stream installed as it is
            return stream
        if check != "stream-length" and not 1 <= len(stream) <= length + DEFLATE_SLACK:
            raise FormatError("stream length out of bounds")
        d = zlib.decompressobj(-(15 if check == "window" else wbits))
        try:
            if check in ("window", "length"):  # one call: zlib checks no window past its output
                out = d.decompress(stream, 0 if check == "length" else length + 1)
            else:
                out = bytearray(d.decompress(stream, min(length + 1, 1 << wbits)))
                while len(out) <= length and not d.eof:
                    piece = d.decompress(d.unconsumed_tail, 1)
                    if not piece:
                        break
                    out += piece
        except zlib.error as e:
            raise FormatError("not DEFLATE") from e
        if check != "length" and len(out) > length:
            raise FormatError("past its length")
        if check != "final-block" and not d.eof:
            raise FormatError("truncated")
        if check != "trailing" and (d.unused_data or d.unconsumed_tail):
            raise FormatError("trailing bytes")
        if len(out) < length:
            raise FormatError("short")
        return bytes(out)

    return inflate


def _any_stream_length(plain_len: int, deflated: bool) -> tuple[int, int]:
    """The defect: a deflated chunk's stream of any length (`sealed_plain_range`)."""
    return (1, 1 << 32) if deflated else (plain_len, plain_len)


def _no_inflater_ram(chunk_size: int, _deflate: bool = False) -> int:
    return budget.chunk_ram(chunk_size)  # the defect: the inflater's 8,224 bytes not counted


# -- the registry -----------------------------------------------------------------------------
def _named() -> list[Mutant]:
    m = Mutant
    return [
        m("skips-tag-chain", "refusal.chain-next", "6.3 tag chain",
          patches=((f"{PROV}.tag_link", _any_link), (f"{PROV}.CHAIN_END", _Anything()))),
        m("skips-proof", "refusal.unauthorized", "6.6 step 6a, 15.3 proof",
          patches=((f"{PROV}.verify_inclusion", _no_proof_check),)),
        m("ignores-one-domain", "refusal.domain-mismatch", "6.6 one OEM domain",
          port=_accepts("domain-mismatch")),
        m("no-kind-check", "refusal.swapped-kinds", "4 sealed-value kinds",
          patches=(("trustprov.firmware.commands.SealedValue", _AnyKind),
                   (f"{PROV}.SealedValue", _AnyKind))),
        m("no-sealed-length-check", "refusal.sealed-lengths", "4 sealed-value lengths",
          patches=(("trustprov.firmware.commands.SealedValue", _AnyLength),
                   (f"{PROV}.SealedValue", _AnyLength))),
        m("no-min-svn", "refusal.software-too-old", "6.6 step 6 min-svn",
          patches=((f"{PROV}.ProvisioningSession._verified_manifest", _no_min_svn),)),
        m("receipt-wrong-key", "fig3.provision", "6.8 receipt signed by the identity key",
          patches=((f"{PROV}.make_receipt", _signed_by_another_key),)),
        m("no-counter-raise", "fig3.provision", "6.8 provisioning counter",
          patches=((f"{PROV}.ReceiptClaims", _counter(lambda c: c - 1)),)),
        m("counter-stuck", "fig3.update", "6.8 provisioning counter",
          patches=((f"{PROV}.ReceiptClaims", _counter(lambda c: min(c, 1))),)),
        m("keeps-dropped-slots", "fig3.update", "6.6 an update replaces the whole state",
          patches=(("trustprov.chip.device.Hardware.install", _keeps_dropped_slots),)),
        m("runs-without-hello", "link.power-cut", "12.3 RESET before a HELLO",
          endpoint=RunsWithoutHello),
        m("many-naks", "link.one-nak", "12.3 one NAK per position", endpoint=ManyNaks),
        m("no-aes-ccm", "fig3.update", "6.2 AES-CCM", port=NoAesCcm),
        m("wrong-generated-keys", "fig4.generated-keys", "3 generated key types",
          patches=(("trustprov.firmware.sealing.asset_material", _material_of_another_name),)),
        m("no-bad-asset-check", "refusal.bad-asset", "6.6 step 8 EC key range",
          patches=((f"{PROV}._check_key", _no_key_check),)),
        m("no-error-frames", "link.error-frames", "12.3 ERROR frames", endpoint=NoErrorFrames),
        m("keeps-link-after-power-cut", "link.power-cut", "12.5 RESET after a power cut",
          endpoint=KeepsLink),
        m("lenient-decoder", "rom.malformed", "1 decoder limits", port=LenientDecoder),
        m("failed-boot-keeps-software", "boot.bad-signature", "8.3 what a boot resets",
          port=FailedBootKeepsSoftware),
        m("runs-later-messages", "link.out-of-order", "12.3 in order", endpoint=RunsLaterMessages),
        m("never-idles", "link.idle-timeout", "12.5 idle timeout", endpoint=NeverIdles),
        m("answers-any-hello", "link.hello", "12.2 HELLO", endpoint=AnswersAnyHello),
        m("no-fragment-acks", "link.fragments", "12.3 ACK", endpoint=NoFragmentAcks),
        m("hashed-f", "fig2.keygen", "3 F",
          patches=(("trustprov.firmware.commands.f_oem_share", _f_hashed),)),
        m("suite-not-enforced", "boot.other-suite", "5.2 exactly the chip's suite",
          patches=(("trustprov.formats.software.SignedSoftware.verify", _any_suite),),
          suite="ES256+ML-DSA-65"),
        m("boot-forgets-counter", "boot.good", "5 step 4 rom.boot's answer",
          port=BootForgetsCounter),
        m("accepts-non-canonical", "rom.non-canonical", "1, 8.1 canonical requests",
          patches=(("trustprov.link.messages.check_canonical", _any_form),)),
        m("refuses-proof-any-chip", "cm.proof-any-chip", "15.3 a proof for any chip ignored",
          port=RefusesProofAnyChip),
        m("inflates-unbounded", "deflate.bomb", "6.6 step 7 no more than the chunk's length",
          patches=((f"{PROV}.inflate", _inflate_without("length")),)),
        m("accepts-unfinished-stream", "deflate.truncated", "6.6 step 7 final block",
          patches=((f"{PROV}.inflate", _inflate_without("final-block")),)),
        m("accepts-trailing-bytes", "deflate.trailing", "6.6 step 7 nothing after the final block",
          patches=((f"{PROV}.inflate", _inflate_without("trailing")),)),
        m("no-stream-length-bound", "deflate.too-long", "6.2 a stream of 1 .. len + 16",
          patches=((f"{PROV}.inflate", _inflate_without("stream-length")),
                   ("trustprov.formats.bundle.entries.sealed_plain_range", _any_stream_length))),
        m("ignores-window", "deflate.far-distance", "6.2 no distance beyond 2^W",
          patches=((f"{PROV}.inflate", _inflate_without("window")),)),
        m("installs-compressed", "fig3.deflate", "6.6 step 7 the inflated plaintext installs",
          patches=((f"{PROV}.inflate", _inflate_without("inflate")),)),
        m("no-inflater-ram", "deflate.ram-budget", "8.4 the inflater's 8,224 bytes",
          patches=((f"{PROV}.chunk_ram", _no_inflater_ram),)),
    ]  # fmt: skip


def _generated() -> list[Mutant]:
    out = []
    for code, case in CODE_CASES.items():
        rule = f"8.2 {code}"
        out.append(Mutant(f"accepts-{code}", case, rule, port=_accepts(code)))
        out.append(Mutant(f"misnames-{code}", case, rule, port=_misnames(code)))
    return out


def _existing() -> list[Mutant]:
    return [
        Mutant(name, case, "(broken.py)", endpoint=endpoint, port=port)
        for name, (endpoint, port, case) in DEFECTS.items()
    ]


MUTANTS: dict[str, Mutant] = {m.name: m for m in (*_existing(), *_named(), *_generated())}


def selection(mutant: Mutant) -> set[str]:
    """The cases the fast check runs on ``mutant``: its own, what it needs first, and the burn."""
    return {"manufacture.burn", *PREREQUISITES.get(mutant.case, ()), mutant.case}


@functools.cache
def by_case() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in MUTANTS.values():
        out.setdefault(m.case, []).append(m.name)
    return out
