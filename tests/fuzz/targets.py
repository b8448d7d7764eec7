"""Every parser of untrusted bytes, as a `Target` over the corpus's valid artifacts.

What each may raise:

- the format parsers and ``decode_request``: any `TrustprovError` (in practice `FormatError`);
- ``decode_response``: `TransportError` (malformed) or `ChipRefused` (a well-formed refusal);
- the asset list (``assets.load``, which reads the file, parses TOML and calls ``assets.parse``):
  `InputError` or `FormatError`;
- the chip (``ChipPort.handle``): nothing at all. It must answer every request with a response
  that ``decode_response`` accepts, never with ``internal`` (an unexpected fault inside the
  chip), and a chip with no session open holds no RAM. (The harness raises
  `ChipAnsweredRefusal` for a well-formed refusal, to count it.)
"""

from __future__ import annotations

import io
import json
import traceback
from pathlib import Path
from typing import Any

from trustprov.errors import ChipRefused, FormatError, InputError, TransportError, TrustprovError
from trustprov.formats import cbor, cose
from trustprov.formats.attestation import Attestation
from trustprov.formats.authz import AuthorizedSet, InclusionProof
from trustprov.formats.bundle import Bundle, Manifest, SignedManifest
from trustprov.formats.bundle.bundle_file import BundleIndex
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.limits import LIMITS
from trustprov.formats.lot import LotManifest
from trustprov.formats.lotsig import LotSignature
from trustprov.formats.receipt import Receipt
from trustprov.formats.sealed import SEALED_KINDS, SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link import messages
from trustprov.roles import assets

from .chips import ChipLab
from .corpus import Corpus
from .engine import Fuzzer, Target, Unexpected

CBOR_KINDS = (
    "software",
    "sealed",
    "manifest",
    "payload",
    "bundle",
    "immutable",
    "request",
    "auth",
    "proof",
    "lotsig",
)


#: the bytes and shape limits of the artifact each COSE message is
_COSE_LIMITS = {
    cose.TAG_ENCRYPT0: (LIMITS.sealed_value, LIMITS.sealed_value_shape),
    cose.TAG_MAC0: (LIMITS.manifest, LIMITS.manifest_shape),
    cose.TAG_SIGN1: (LIMITS.software, LIMITS.software_shape),
}


def _cose(tag: int) -> Any:
    limit, shape = _COSE_LIMITS[tag]

    def parse(data: bytes) -> cose.CoseMessage:
        m = cose.decode(data, tag, limit=limit, what="fuzz", shape=shape)
        assert m.tag == tag
        return m

    return parse


def _sealed(data: bytes) -> SealedValue:
    value = SealedValue.from_bytes(data)
    for kind in SEALED_KINDS:  # the same bytes where one kind is expected
        try:
            assert SealedValue.from_bytes(data, kind).kind == kind == value.kind
        except FormatError:
            assert kind != value.kind
    return value


def _decode_response(data: bytes) -> dict[str, Any]:
    result = messages.decode_response(data)
    assert isinstance(result, dict)
    return result


def _assets_loader(directory: Path) -> Any:
    path = directory / "fuzz-assets.toml"

    def load(data: bytes) -> assets.AssetList:
        path.write_bytes(data)
        return assets.load(path)

    return load


def _fault_site(lab: ChipLab, scenario: int, request: bytes) -> str:
    """Where in trustprov an internal fault comes from: the port answers it with no detail, so
    replay the request past the port's catch-all on a fresh chip in the same scenario."""
    _, port = lab.power_on(lab.scenarios[scenario % len(lab.scenarios)])
    op, args = messages.decode_request(request)
    try:
        port._dispatch(op, args)
    except TrustprovError:
        return "(not reproduced)"
    except Exception as e:  # noqa: BLE001 - what the port's catch-all caught
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "/trustprov/" in f.filename]
        site = " > ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[-4:])
        return f"{type(e).__name__} at {site or '?'}"
    return "(not reproduced)"


class ChipAnsweredRefusal(TrustprovError):
    """Raised by the harness (never by the chip) when the chip answered a well-formed refusal,
    so that refusals count as such; the port itself must never raise."""


def _chip(lab: ChipLab) -> Any:
    def handle(data: bytes) -> str:
        """Send ``data[1:]`` to a chip in scenario ``data[0]``; "ok", or `ChipAnsweredRefusal`
        with the code of its refusal."""
        scenario = data[0] if data else 0
        chip, port, response = lab.exchange(scenario, data[1:])
        name = lab.scenarios[scenario % len(lab.scenarios)].name
        if not isinstance(response, bytes):
            raise Unexpected("ChipPort.handle", "response is not bytes", data, name)
        try:
            messages.decode_response(response)
            code = "ok"
        except ChipRefused as e:
            code = e.code
        except TransportError as e:
            raise Unexpected("ChipPort.handle", "malformed response", data, e.message) from e
        if code == "internal":
            where = _fault_site(lab, scenario, data[1:])
            raise Unexpected("ChipPort.handle", f"internal fault {where}", data, name)
        software = getattr(port, "_software", None)
        idle = software is None or (
            getattr(software, "_sealing", None) is None
            and getattr(software, "_provisioning", None) is None
        )
        if idle and chip.ram.used:
            raise Unexpected(
                "ChipPort.handle", "RAM held with no session open", data, f"{name}: {code}"
            )
        if code != "ok":
            raise ChipAnsweredRefusal(f"{name}: {code}", code=code)
        return code

    return handle


def _receipts() -> list[bytes]:
    """A chip's receipt (tests/vectors/receipt.json): the OEM parses what the CM hands it."""
    vector = Path(__file__).parents[1] / "vectors" / "receipt.json"
    return [bytes.fromhex(json.loads(vector.read_text())["receipt"])]


def _tokens() -> list[bytes]:
    """A chip's attestation token (tests/vectors/link_messages.json, step rom.attest
    provisioned): the station parses what a board hands it."""
    vector = Path(__file__).parents[1] / "vectors" / "link_messages.json"
    steps = json.loads(vector.read_text())["steps"]
    answer = next(s["answer"] for s in steps if s["name"] == "rom.attest provisioned")
    return [messages.decode_response(bytes.fromhex(answer))["token"]]


def _index(data: bytes) -> BundleIndex:
    """The bundle file indexed from its heads, as `cm provision` reads it."""
    return BundleIndex.read(io.BytesIO(data), len(data))


def build_targets(c: Corpus) -> dict[str, Target]:
    a = c.artifacts
    every_cbor = [x for k in CBOR_KINDS for x in a[k]]
    lab = c.lab
    targets = [
        Target("cbor.decode", lambda d: cbor.decode(d, limit=LIMITS.link_message, what="fuzz",
                                                     tags=cose.COSE_TAGS),
               every_cbor, allowed=(TrustprovError,)),
        Target("cose.decode[16]", _cose(cose.TAG_ENCRYPT0), a["sealed"],
               allowed=(TrustprovError,), result_type=cose.CoseMessage),
        Target("cose.decode[17]", _cose(cose.TAG_MAC0), a["manifest"],
               allowed=(TrustprovError,), result_type=cose.CoseMessage),
        Target("cose.decode[18]", _cose(cose.TAG_SIGN1), a["software"],
               allowed=(TrustprovError,), result_type=cose.CoseMessage),
        Target("SignedSoftware.from_bytes", SignedSoftware.from_bytes, a["software"],
               allowed=(TrustprovError,), result_type=SignedSoftware),
        Target("SealedValue.from_bytes", _sealed, a["sealed"], allowed=(TrustprovError,),
               result_type=SealedValue),
        Target("SignedManifest.from_bytes", SignedManifest.from_bytes, a["manifest"],
               allowed=(TrustprovError,), result_type=SignedManifest),
        Target("Manifest.from_payload", Manifest.from_payload, a["payload"],
               allowed=(TrustprovError,), result_type=Manifest),
        Target("Bundle.from_bytes", Bundle.from_bytes, a["bundle"], allowed=(TrustprovError,),
               result_type=Bundle),
        Target("BundleIndex.read", _index, a["bundle"], allowed=(TrustprovError,),
               result_type=BundleIndex),
        Target("ImmutableMemory.from_bytes", ImmutableMemory.from_bytes, a["immutable"],
               allowed=(TrustprovError,), result_type=ImmutableMemory),
        Target("LotManifest.from_json", LotManifest.from_json, a["lot"], flavor="json",
               allowed=(TrustprovError,), result_type=LotManifest),
        Target("decode_request", messages.decode_request, a["request"],
               allowed=(TrustprovError,), result_type=tuple),
        Target("decode_response", _decode_response, a["response"],
               allowed=(TransportError, ChipRefused), result_type=dict),
        Target("ChipPort.handle", _chip(lab), [r for _, r in lab.seeds],
               allowed=(ChipAnsweredRefusal,), result_type=str,
               seed_scenarios=[s for s, _ in lab.seeds], scenarios=len(lab.scenarios),
               fixup=lab.authenticator.fix),
        Target("Receipt.from_bytes", Receipt.from_bytes, _receipts(),
               allowed=(TrustprovError,), result_type=Receipt),
        Target("Attestation.from_bytes", Attestation.from_bytes, _tokens(),
               allowed=(TrustprovError,), result_type=Attestation),
        Target("assets.load", _assets_loader(c.assets_dir), a["toml"], flavor="toml",
               allowed=(InputError, FormatError), result_type=assets.AssetList),
        Target("AuthorizedSet.from_bytes", AuthorizedSet.from_bytes, a["auth"],
               allowed=(TrustprovError,), result_type=AuthorizedSet),
        Target("InclusionProof.from_bytes", InclusionProof.from_bytes, a["proof"],
               allowed=(TrustprovError,), result_type=InclusionProof),
        Target("LotSignature.from_bytes", LotSignature.from_bytes, a["lotsig"],
               allowed=(TrustprovError,), result_type=LotSignature),
    ]  # fmt: skip
    return {t.name: t for t in targets}


def build_fuzzers(c: Corpus) -> dict[str, Fuzzer]:
    """A `Fuzzer` per target; the splice pool is every valid artifact of the same flavour."""
    a = c.artifacts
    pools = {
        "cbor": [x for k in (*CBOR_KINDS, "response") for x in a[k]],
        "json": a["lot"],
        "toml": a["toml"],
    }
    return {
        name: Fuzzer(t, [s for s in pools[t.flavor] if s not in t.seeds])
        for name, t in build_targets(c).items()
    }
