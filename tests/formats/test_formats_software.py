"""trustprov.formats.software: the signed provisioning software (COSE_Sign1)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cbor2
import pytest

from trustprov.crypto.digest import sha256
from trustprov.crypto.keys import PrivateKey
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor, cose
from trustprov.formats.software import (
    CODE_PARTS,
    CONTENT_TYPE,
    H_CODE,
    H_NAME,
    H_SVN,
    H_VERSION,
    MAX_SVN,
    SignedSoftware,
    code_archive,
)

ALGS = ["ES256", "ES384", "EdDSA"]
OTHER_ALG = {"ES256": "ES384", "ES384": "EdDSA", "EdDSA": "ES256"}
COSE_ID = {"ES256": -7, "ES384": -35, "EdDSA": -8}


def forge(
    sw: SignedSoftware,
    *,
    header: dict[Any, Any] | None = None,
    unprotected: dict[Any, Any] | None = None,
    body: bytes | None = None,
    auth: bytes | None = None,
) -> bytes:
    """``sw`` re-encoded with some parts replaced (the signature is kept unless given)."""
    m = sw.message
    h = m.protected if header is None else header
    protected = m.protected_bytes if header is None else cose.encode_protected(h)
    return cose.CoseMessage(
        cose.TAG_SIGN1,
        protected,
        h,
        m.unprotected if unprotected is None else unprotected,
        m.body if body is None else body,
        m.auth if auth is None else auth,
    ).to_bytes()


def with_header(sw: SignedSoftware, **changes: Any) -> dict[Any, Any]:
    h = dict(sw.message.protected)
    for k, v in changes.items():
        key = {"alg": cose.ALG, "ct": cose.CONTENT_TYPE}.get(k, "tp-" + k)
        if v is None:
            h.pop(key, None)
        else:
            h[key] = v
    return h


@pytest.fixture(scope="module", params=ALGS)
def signed(
    request: pytest.FixtureRequest, builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> tuple[str, PrivateKey, SignedSoftware]:
    alg = request.param
    key = signing_keys[alg]
    return alg, key, builders.sign_software(key, alg)


def test_sign_parse_verify_round_trip(signed: tuple[str, PrivateKey, SignedSoftware]) -> None:
    alg, key, sw = signed
    parsed = SignedSoftware.from_bytes(sw.to_bytes())
    assert (parsed.name, parsed.version, parsed.security_version, parsed.alg) == (
        "trustprov-prov",
        "1.2.3",
        4,
        alg,
    )
    assert parsed.code == sw.code
    assert parsed.code_digest == sha256(sw.code)
    assert parsed.to_bytes() == sw.to_bytes()
    assert parsed.verify(key.public_key()) is None


def test_protected_header_layout(signed: tuple[str, PrivateKey, SignedSoftware]) -> None:
    alg, _, sw = signed
    value = cbor2.loads(sw.to_bytes())
    assert value.tag == 18
    protected, unprotected, payload, signature = value.value
    assert cbor2.loads(protected) == {
        1: COSE_ID[alg],
        3: CONTENT_TYPE,
        H_NAME: "trustprov-prov",
        H_VERSION: "1.2.3",
        H_SVN: 4,
        H_CODE: sha256(payload),
    }
    assert protected == cbor.encode(cbor2.loads(protected))  # canonical
    assert unprotected == {}
    assert len(signature) == {"ES256": 64, "ES384": 96, "EdDSA": 64}[alg]


def test_sign_with_wrong_key_type_raises(
    builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> None:
    for alg in ALGS:
        with pytest.raises(VerificationError) as e:
            builders.sign_software(signing_keys[OTHER_ALG[alg]], alg)
        assert e.value.code == "wrong-key-type"


def test_verify_with_another_key_raises(
    signed: tuple[str, PrivateKey, SignedSoftware], builders: SimpleNamespace
) -> None:
    alg, _, sw = signed
    with pytest.raises(VerificationError):
        sw.verify(builders.signing_key(alg).public_key())


def test_verify_with_wrong_key_type_raises(
    signed: tuple[str, PrivateKey, SignedSoftware], signing_keys: dict[str, PrivateKey]
) -> None:
    alg, _, sw = signed
    with pytest.raises(VerificationError):
        sw.verify(signing_keys[OTHER_ALG[alg]].public_key())


def test_tampered_payload_fails_the_code_digest(
    signed: tuple[str, PrivateKey, SignedSoftware],
) -> None:
    _, _, sw = signed
    with pytest.raises(FormatError, match="code digest"):
        SignedSoftware.from_bytes(forge(sw, body=sw.code + b"\x00"))


def test_tampered_payload_with_matching_digest_fails_the_signature(
    signed: tuple[str, PrivateKey, SignedSoftware],
) -> None:
    _, key, sw = signed
    evil = b"evil code"
    data = forge(sw, header=with_header(sw, code=sha256(evil)), body=evil)
    parsed = SignedSoftware.from_bytes(data)
    with pytest.raises(VerificationError):
        parsed.verify(key.public_key())


@pytest.mark.parametrize(
    "change",
    [{"svn": 5}, {"svn": 0}, {"name": "other"}, {"version": "9.9.9"}],
    ids=["svn-up", "svn-down", "name", "version"],
)
def test_tampered_header_fails_the_signature(
    signed: tuple[str, PrivateKey, SignedSoftware], change: dict[str, Any]
) -> None:
    _, key, sw = signed
    parsed = SignedSoftware.from_bytes(forge(sw, header=with_header(sw, **change)))
    with pytest.raises(VerificationError):
        parsed.verify(key.public_key())


def test_reencoded_protected_header_fails_the_signature(
    signed: tuple[str, PrivateKey, SignedSoftware],
) -> None:
    """Same header values, other bytes (the map's keys in reverse order): the signature covers
    bytes. (An indefinite-length map is refused before: see test_formats_cbor.)"""
    _, key, sw = signed
    m = sw.message
    pairs = list(m.protected.items())[::-1]
    items = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in pairs)
    protected = bytes([0xA0 + len(pairs)]) + items
    assert protected != m.protected_bytes
    data = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, m.body, m.auth]))
    parsed = SignedSoftware.from_bytes(data)
    assert parsed.message.protected == m.protected
    with pytest.raises(VerificationError):
        parsed.verify(key.public_key())


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tampered_signature_raises(
    signed: tuple[str, PrivateKey, SignedSoftware], where: str
) -> None:
    _, key, sw = signed
    sig = bytearray(sw.message.auth)
    sig[{"first": 0, "middle": len(sig) // 2, "last": -1}[where]] ^= 0x80
    parsed = SignedSoftware.from_bytes(forge(sw, auth=bytes(sig)))
    with pytest.raises(VerificationError):
        parsed.verify(key.public_key())


@pytest.mark.parametrize("sig", [b"", b"\x00", b"\x01" * 63, b"\x01" * 200])
def test_signature_of_wrong_length_raises(
    signed: tuple[str, PrivateKey, SignedSoftware], sig: bytes
) -> None:
    _, key, sw = signed
    parsed = SignedSoftware.from_bytes(forge(sw, auth=sig))
    with pytest.raises(VerificationError):
        parsed.verify(key.public_key())


def test_alg_swapped_in_header_raises(
    signed: tuple[str, PrivateKey, SignedSoftware], signing_keys: dict[str, PrivateKey]
) -> None:
    alg, key, sw = signed
    other = OTHER_ALG[alg]
    parsed = SignedSoftware.from_bytes(forge(sw, header=with_header(sw, alg=COSE_ID[other])))
    assert parsed.alg == other
    with pytest.raises(VerificationError):
        parsed.verify(key.public_key())
    with pytest.raises(VerificationError):
        parsed.verify(signing_keys[other].public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"alg": -257},  # RS256: not ours
        {"alg": 3},
        {"alg": "ES256"},
        {"alg": True},
        {"ct": "application/cbor"},
        {"ct": 60},
        {"ct": None},
        {"name": None},
        {"name": ""},
        {"name": "x" * 65},
        {"name": 5},
        {"name": "bad\nname"},
        {"version": None},
        {"version": b"1.0"},
        {"svn": None},
        {"svn": -1},
        {"svn": MAX_SVN + 1},
        {"svn": True},
        {"svn": "4"},
        {"code": None},
        {"code": b"\x00" * 31},
        {"code": "digest"},
        {"extra": 1},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:40],
)
def test_bad_header_is_a_format_error(
    signed: tuple[str, PrivateKey, SignedSoftware], change: dict[str, Any]
) -> None:
    _, _, sw = signed
    with pytest.raises(FormatError):
        SignedSoftware.from_bytes(forge(sw, header=with_header(sw, **change)))


def test_svn_bounds(builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]) -> None:
    for svn in (0, MAX_SVN):
        sw = builders.sign_software(signing_keys["ES256"], "ES256", security_version=svn)
        assert SignedSoftware.from_bytes(sw.to_bytes()).security_version == svn
    with pytest.raises(FormatError):
        builders.sign_software(signing_keys["ES256"], "ES256", security_version=MAX_SVN + 1)


def test_unprotected_header_is_refused(signed: tuple[str, PrivateKey, SignedSoftware]) -> None:
    _, _, sw = signed
    with pytest.raises(FormatError, match="unprotected"):
        SignedSoftware.from_bytes(forge(sw, unprotected={4: b"kid"}))


def test_other_cose_messages_are_refused(signed: tuple[str, PrivateKey, SignedSoftware]) -> None:
    _, _, sw = signed
    m = sw.message
    mac0 = cose.CoseMessage(cose.TAG_MAC0, m.protected_bytes, m.protected, {}, m.body, m.auth)
    with pytest.raises(FormatError, match="COSE_Sign1"):
        SignedSoftware.from_bytes(mac0.to_bytes())


def test_huge_unsupported_alg_is_a_format_error(
    builders: SimpleNamespace, signing_keys: dict[str, PrivateKey]
) -> None:
    """An alg id that is a bignum of thousands of digits must be refused as FormatError, not
    leak Python's int-to-str ValueError from the error message."""
    sw = builders.sign_software(signing_keys["ES256"], "ES256")
    with pytest.raises(FormatError):
        SignedSoftware.from_bytes(forge(sw, header=with_header(sw, alg=256**2000)))


def test_code_archive(tmp_path: Path) -> None:
    """The firmware and what its imports reach in CODE_PARTS, *.py only: a module of the
    libraries that nothing imports is left out, the chip's own modules are walked through
    (what they import is in), and a typing-only import brings nothing."""
    assert CODE_PARTS == ("errors.py", "crypto", "formats", "firmware")
    files = {
        "errors.py": b"E = 0\n",
        "crypto/__init__.py": b"",
        "crypto/kdf.py": b"from trustprov.errors import E\n",
        "formats/__init__.py": b"",
        "formats/cbor.py": b"def f():\n    import trustprov.crypto.kdf\n",
        "formats/unused.py": b"U = 5\n",
        "formats/typing_only.py": b"T = 6\n",
        "formats/of_the_rom.py": b"R = 7\n",
        "firmware/commands.py": (
            b"from typing import TYPE_CHECKING\n"
            b"from trustprov.formats import cbor\n"
            b"from trustprov.chip import device\n"
            b"if TYPE_CHECKING:\n    from trustprov.formats import typing_only\n"
        ),
        "firmware/sub/deep.py": b"D = 4\n",
        "firmware/notes.txt": b"not code",
        "firmware/__pycache__/commands.py": b"stale",
        "chip/device.py": b"from trustprov.formats.of_the_rom import R\n",
        "cli.py": b"not part of the software",
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    archive = code_archive(tmp_path)
    left_out = ("notes", "__pycache__", "unused", "typing_only", "chip/", "cli.py")
    assert cbor2.loads(archive) == {
        k: v for k, v in files.items() if not any(x in k for x in left_out)
    }
    assert archive == cbor.encode(cbor2.loads(archive))
    (tmp_path / "crypto" / "kdf.py").write_bytes(b"K = 2\n")
    assert code_archive(tmp_path) != archive


def test_code_archive_of_an_empty_root(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no provisioning software code"):
        code_archive(tmp_path)


def test_installed_code_archive_holds_the_firmware_and_its_libraries() -> None:
    files = cbor2.loads(code_archive())
    assert "errors.py" in files
    for part in ("crypto/", "formats/", "firmware/"):
        assert any(name.startswith(part) for name in files), part
    assert not any(name.startswith(("chip/", "roles/", "cli/", "link/")) for name in files)


# -- COSE_Sign: the hybrid -------------------------------------------------------------------------
def _hybrid_items(samples: dict[str, bytes]) -> list[Any]:
    value = cbor2.loads(samples["software-hybrid"])
    assert value.tag == cose.TAG_SIGN
    return list(value.value)


def _tagged(items: list[Any]) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(cose.TAG_SIGN, items))


def test_hybrid_parses_with_both_algorithms(samples: dict[str, bytes]) -> None:
    sw = SignedSoftware.from_bytes(samples["software-hybrid"])
    assert (sw.alg, sw.algorithms) == ("ES256+ML-DSA-65", ("ES256", "ML-DSA-65"))
    assert [s.protected for s in sw.message.signatures] == [{1: -7}, {1: -49}]
    assert sw.to_bytes() == samples["software-hybrid"]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda it: [*it[:3], []], "1..4 signatures"),
        (lambda it: [*it[:3], [it[3][0]] * 5], "1..4 signatures"),
        (lambda it: [*it[:3], it[3][0]], "array of 3"),  # a signature not in its array
        (lambda it: [*it[:3], [it[3][0][:2], it[3][1]]], "array of 3"),
        (lambda it: [*it[:3], [[b"", {}, it[3][0][2]], it[3][1]]], "empty protected"),
        (lambda it: [*it[:3], [[it[3][0][0], {1: -7}, it[3][0][2]], it[3][1]]], "both"),
        (lambda it: [*it[:3], [[it[3][0][0], {4: b"k"}, it[3][0][2]], it[3][1]]], "unprotected"),
        (lambda it: [*it[:3], [[cbor2.dumps({1: -7, 4: b"k"}), {}, b""], it[3][1]]], "unknown"),
        (lambda it: [*it[:3], [[cbor2.dumps({1: -999}), {}, b""], it[3][1]]], "unsupported"),
        (lambda it: [cbor2.dumps({**cbor2.loads(it[0]), 1: -7}), *it[1:]], "unknown"),
    ],
)
def test_malformed_hybrids_are_refused(samples: dict[str, bytes], mutate: Any, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        SignedSoftware.from_bytes(_tagged(mutate(_hybrid_items(samples))))


def test_non_canonical_suites_parse_but_never_verify(
    samples: dict[str, bytes], builders: SimpleNamespace
) -> None:
    """One signature in a COSE_Sign, or the two reordered, parse (so that a chip refuses them as a
    bad signature, like any other) but no verifier accepts them."""
    items = _hybrid_items(samples)
    keys = [builders.signing_key("ES256").public_key()]
    for signatures in ([items[3][0]], [items[3][1], items[3][0]]):
        sw = SignedSoftware.from_bytes(_tagged([*items[:3], signatures]))
        with pytest.raises(VerificationError) as e:
            sw.verify(keys * len(signatures))
        assert e.value.code == "bad-signature"
