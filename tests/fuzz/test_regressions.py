"""Inputs the fuzzers found, minimised by hand, run through the same oracle as every fuzz input.

Each test is one finding: it fails while the bug is there and passes once it is fixed, so that a
finding never depends on a random run finding it again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from trustprov.formats.sealed import SealedValue
from trustprov.link import messages

from .corpus import Corpus
from .engine import Fuzzer, check

EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey
X509_V3 = bytes.fromhex("a003020102")  # [0] { INTEGER 2 }: the version of an X.509 v3 certificate


def _scenario(corpus: Corpus, name: str) -> int:
    return next(i for i, s in enumerate(corpus.lab.scenarios) if s.name == name)


def _store_certificate(corpus: Corpus) -> tuple[int, bytes]:
    """The identity scenario and the certificate a chip in it accepts (DER)."""
    for scenario, request in corpus.lab.seeds:
        op, args = messages.decode_request(request)
        if op == "rom.store-certificate":
            return scenario, args["certificate"]
    raise AssertionError("no rom.store-certificate seed")


def _off_curve(der: bytes) -> bytes:
    point = der.index(bytes.fromhex("03420004")) + 4  # the uncompressed P-256 point
    return der[: point + 63] + bytes([der[point + 63] ^ 1]) + der[point + 64 :]


def _unknown_key_algorithm(der: bytes) -> bytes:
    return der.replace(EC_PUBLIC_KEY_OID, EC_PUBLIC_KEY_OID[:-1] + b"\x09")


@pytest.mark.parametrize("mangle", [_off_curve, _unknown_key_algorithm])
def test_chip_answers_a_certificate_with_a_mangled_key_without_a_fault(
    fuzz_corpus: Corpus, fuzzers: dict[str, Fuzzer], mangle: Callable[[bytes], bytes]
) -> None:
    """rom.store-certificate parses the certificate, but its public key only lazily, outside the
    try (src/trustprov/chip/device.py, Chip.store_certificate, ``cert.public_key()``): a key that
    is not on the curve raises ValueError, an unknown key algorithm UnsupportedAlgorithm, and the
    port answers ``internal``."""
    scenario, der = _store_certificate(fuzz_corpus)
    request = messages.encode_request("rom.store-certificate", {"certificate": mangle(der)})
    check(fuzzers["ChipPort.handle"].target, bytes([scenario]) + request)


@pytest.mark.parametrize("scenario", ["sealing", "cm-begun"])
@pytest.mark.parametrize("image", [b"\x00", None], ids=["bad-image", "good-image"])
def test_rebooting_a_chip_mid_session_releases_the_session_ram(
    fuzz_corpus: Corpus, fuzzers: dict[str, Fuzzer], scenario: str, image: bytes | None
) -> None:
    """rom.boot drops the running software (src/trustprov/link/port.py, ChipPort._boot) without
    ending its open sealing or provisioning session, whose RAM stays reserved (and whose keys
    stay in memory) whether the new image boots or not: reboot a chip mid-session often enough
    and every session then refuses with ram-budget."""
    if image is None:
        image = next(
            messages.decode_request(r)[1]["image"]
            for _, r in fuzz_corpus.lab.seeds
            if messages.decode_request(r)[0] == "rom.boot"
        )
    boot = messages.encode_request("rom.boot", {"image": image})
    check(fuzzers["ChipPort.handle"].target, bytes([_scenario(fuzz_corpus, scenario)]) + boot)


def _invalid_version(der: bytes) -> bytes:
    version = der.index(X509_V3) + 4
    return der[:version] + b"\x05" + der[version + 1 :]


def _bad_utf8_in(name: bytes) -> Callable[[bytes], bytes]:
    """A certificate whose Name holding ``name`` (a UTF8String) is not valid UTF-8."""

    def mangle(der: bytes) -> bytes:
        assert name in der
        return der.replace(name, b"\xff" + name[1:])

    mangle.__name__ = f"bad_utf8_in_{name.decode().replace(' ', '_')}"
    return mangle


@pytest.mark.parametrize(
    "mangle",
    [_invalid_version, _bad_utf8_in(b"trustprov ICM"), _bad_utf8_in(b"trustprov chip")],
    ids=lambda f: f.__name__,
)
def test_lot_manifest_with_a_mangled_certificate(
    fuzz_corpus: Corpus, fuzzers: dict[str, Fuzzer], mangle: Callable[[bytes], bytes]
) -> None:
    """LotManifest.from_json (src/trustprov/formats/lot.py) catches ValueError and
    UnicodeEncodeError around x509.load_pem_x509_certificate, but (1) that raises
    x509.InvalidVersion, not a ValueError, for a version other than v1/v3, and (2) the
    certificate's issuer and subject are parsed lazily, outside the try, by the UID/family
    binding check (``_check_binding``: ``cert.subject``, ``cert.issuer``), which raises ValueError
    for a malformed Name (the issuer's O, the subject's O)."""
    doc = json.loads(fuzz_corpus.artifacts["lot"][0])
    chip = doc["chips"][0]  # its certificate, from the ICM, passes every check of the manifest
    der = base64.b64decode("".join(chip["certificate"].strip().splitlines()[1:-1]))
    chip["certificate"] = _pem(mangle(der))
    check(fuzzers["LotManifest.from_json"].target, json.dumps(doc).encode())


def _pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----", ""])


def test_asset_list_with_a_file_name_too_long(fuzzers: dict[str, Fuzzer]) -> None:
    """``path.is_file()`` raises OSError (ENAMETOOLONG) for a name over the file system's limit;
    assets._source (src/trustprov/roles/oem/assets/__init__.py) does not catch it."""
    doc = '[[asset]]\nname = "fw"\nkind = "firmware"\nregion = "app"\nfile = "{}"\n'
    check(fuzzers["assets.load"].target, doc.format("a" * 300).encode())


def test_asset_list_with_an_integer_of_5000_digits(fuzzers: dict[str, Fuzzer]) -> None:
    """tomllib raises ValueError (Python's int-from-str digit limit), not TOMLDecodeError, for an
    integer of more than 4300 digits; assets.load catches only UnicodeDecodeError and
    TOMLDecodeError."""
    check(fuzzers["assets.load"].target, b"[bundle]\nepoch = " + b"9" * 5000 + b"\n")


def _reseal(corpus: Corpus, request: bytes, field: str, plaintext: bytes) -> bytes:
    """``request`` with its sealed value ``field`` sealed again, with the right key, kind and
    family, around ``plaintext``: what only a chip of the family could make."""
    op, args = messages.decode_request(request)
    old = SealedValue.from_bytes(args[field])
    key = corpus.lab.authenticator.keys[old.kind]
    new = SealedValue.seal(key, old.kind, old.family_id, bytes(12), plaintext)
    return messages.encode_request(op, {**args, field: new.to_bytes()})


def _seed(corpus: Corpus, scenario: str, op: str) -> tuple[int, bytes]:
    index = _scenario(corpus, scenario)
    for s, request in corpus.lab.seeds:
        if s == index and messages.decode_request(request)[0] == op:
            return s, request
    raise AssertionError(f"no {op} seed in {scenario}")


@pytest.mark.parametrize(
    "case",
    [
        ("booted", "cm.begin", "enc-oem-share", 16),
        ("oem-booted", "oem.regen", "enc-oem-rnd-input", 20),
        ("oem-booted", "oem.regen", "enc-rnd-share", 16),
    ],
    ids=lambda case: f"{case[1]}-{case[2]}-{case[3]}",
)
def test_chip_refuses_an_authentic_sealed_value_of_the_wrong_length(
    fuzz_corpus: Corpus, fuzzers: dict[str, Fuzzer], case: tuple[str, str, str, int]
) -> None:
    """A sealed value opens to 1..64 bytes (formats/sealed.py, MAX_PLAINTEXT) but the key
    schedule takes exactly 32 (OEM_SHARE, RND_SHARE) or 16/32 (OEM_RND_INPUT) bytes and raises
    ValueError (crypto/schedule.py, _check): cm.begin (firmware/provisioning.py -> oem_keys ->
    g_master_key) and oem.regen (firmware/commands.py -> f_oem_share) answer ``internal``.
    Defence in depth: only the family's chips (or its ICM) can seal such a value."""
    scenario, op, field, size = case
    index, request = _seed(fuzz_corpus, scenario, op)
    request = _reseal(fuzz_corpus, request, field, bytes(size))
    check(fuzzers["ChipPort.handle"].target, bytes([index]) + request)
