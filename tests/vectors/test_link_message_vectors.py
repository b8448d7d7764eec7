"""Replay the link-message vectors (docs/protocol.md 8.5) on a fresh virtual chip: each request,
in order, must get exactly the recorded answer bytes; the one randomized field (the receipt's
ES256 signature) must verify under the chip's identity key instead.

A failure means the chip's answers changed. If that is deliberate, regenerate with
``python tests/vectors/generate_link_messages.py`` (``make vectors``) and document it in
docs/protocol.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, load_public_key
from trustprov.firmware import commands
from trustprov.formats import cbor
from trustprov.link import port

HERE = Path(__file__).resolve().parent
VECTORS: dict[str, Any] = json.loads((HERE / "link_messages.json").read_text(encoding="ascii"))
STEPS: list[dict[str, Any]] = VECTORS["steps"]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_link_messages", HERE / "generate_link_messages.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def test_the_file_describes_the_chip_it_was_made_on() -> None:
    chip = VECTORS["chip"]
    assert bytes.fromhex(chip["uid"]) == GEN.UID
    assert chip["lot"] == GEN.LOT
    assert bytes.fromhex(chip["trng_label"]) == GEN.TRNG_LABEL
    assert {k: bytes.fromhex(v) for k, v in chip["code"].items()} == GEN.CODE
    assert bytes.fromhex(chip["code_archive"]) == cbor.encode(GEN.CODE)


def test_the_trng_stream_is_the_documented_one() -> None:
    trng = GEN.StreamTrng()
    drawn = trng.random(5) + trng.random(40) + trng.random(19)
    label = GEN.TRNG_LABEL
    stream = b"".join(hashlib.sha256(label + i.to_bytes(4)).digest() for i in range(2))
    assert drawn == stream


def test_every_answer_is_the_recorded_one(tmp_path: Path) -> None:
    port = GEN.vector_chip(tmp_path)
    identity: ec.EllipticCurvePublicKey | None = None
    for step in STEPS:
        answer = port.handle(bytes.fromhex(step["request"]))
        expected = bytes.fromhex(step["answer"])
        if "random" not in step:
            assert answer == expected, step["name"]
        else:
            at, n = step["random"]
            assert len(answer) == len(expected), step["name"]
            assert answer[:at] + answer[at + n :] == expected[:at] + expected[at + n :]
            assert identity is not None
            for signed in (answer, expected):  # the recorded signature verifies too
                ok = cbor2.loads(signed)["ok"]
                _verify_receipt(ok["receipt"] if "receipt" in ok else ok["token"], identity)
        if step["name"] == "rom.make-identity":
            key = load_public_key(cbor2.loads(answer)["ok"]["public-key"])
            assert isinstance(key, ec.EllipticCurvePublicKey)
            identity = key


def _verify_receipt(receipt: bytes, key: ec.EllipticCurvePublicKey) -> None:
    tag = cbor2.loads(receipt)
    protected, _unprotected, payload, signature = tag.value
    tbs = cbor.encode(["Signature1", protected, b"", payload])
    SIGNATURE_ALGORITHMS["ES256"].verify(key, signature, tbs)


# every op the chip serves, from its own dispatch tables: a new op without a vector fails
OPS = (*port._ROM, *commands._COMMANDS)


@pytest.mark.parametrize("op", OPS)
def test_every_op_has_a_request_and_a_good_answer(op: str) -> None:
    answered = [
        s for s in STEPS if _op(s) == op and "ok" in cbor2.loads(bytes.fromhex(s["answer"]))
    ]
    assert answered, f"no vector of {op} answered ok"


def _op(step: dict[str, Any]) -> str | None:
    try:
        request = cbor2.loads(bytes.fromhex(step["request"]))
    except (ValueError, cbor2.CBORDecodeError):
        return None
    return request.get("op") if isinstance(request, dict) else None


def error_codes() -> set[str]:
    return {
        cbor2.loads(bytes.fromhex(s["answer"])).get("error")
        for s in STEPS
        if "error" in cbor2.loads(bytes.fromhex(s["answer"]))
    }
