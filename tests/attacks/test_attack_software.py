"""T1-T3: the CM runs provisioning software the ICM did not sign for this chip, or an old one.

Every byte of the signed image is flipped (its protected header, the COSE framing, the signature,
and the code payload: all of it in the full mode, a dense sample in ``make test``); the genuine
code is signed by other ICM keys; the ICM's own key signs other code; an older security version
is booted after the counter advanced. The boot ROM must refuse every one, run no software after
the refusal, leave the chip's lifecycle and counter as they were, and the chip must still take
the genuine software and the OEM's bundle afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from helpers import Bench, world_job

from trustprov.chip.model import Lifecycle
from trustprov.crypto.digest import sha256
from trustprov.errors import ChipRefused
from trustprov.formats import cose
from trustprov.formats.software import H_CODE, H_SVN, SignedSoftware
from trustprov.link.client import ChipClient
from trustprov.roles import icm
from trustprov.roles.cm import provision_chip

from .attack_helpers import (
    FULL,
    assert_chip_untouched,
    boot_request,
    powered,
    read,
    report,
    retry_succeeds,
    sample,
    sign_other_code,
    timed,
)

BOOT_REFUSALS = {"bad-software", "bad-signature"}
PROBE_EVERY = 2000


def _spans(image: bytes) -> dict[str, range]:
    """Where the protected header, the payload and the signature lie in the image."""
    tagged = cbor2.loads(image)
    assert tagged.tag == cose.TAG_SIGN1
    protected, _, payload, signature = tagged.value
    spans = {}
    for name, part in (("header", protected), ("payload", payload), ("signature", signature)):
        start = image.find(part)
        assert start > 0
        assert image.find(part, start + 1) == -1
        spans[name] = range(start, start + len(part))
    return spans


def _boot_outcome(client: ChipClient, image: bytes) -> str:
    """The chip's answer to booting ``image``, checked that no software runs after a refusal."""
    try:
        client.send(boot_request(image))
    except ChipRefused as e:
        code = e.code
    else:
        return "booted"
    try:
        client.call("cm.finish")
    except ChipRefused as e:
        if e.code != "unknown-command":
            return f"software still answers ({e.code})"
    else:
        return "software still answers"
    return code


def _refuse_all(
    farm: Path, uid: bytes, images: Iterable[tuple[str, bytes]], allowed: set[str]
) -> Counter[str]:
    """Boot every image on one chip; every one must be refused with an allowed code."""
    seen: Counter[str] = Counter()
    wrong: list[tuple[str, str]] = []
    with powered(farm, uid) as client:
        for n, (what, image) in enumerate(images, 1):
            outcome = _boot_outcome(client, image)
            seen[outcome] += 1
            if outcome not in allowed:
                wrong.append((what, outcome))
            if n % PROBE_EVERY == 0:
                r = read(farm, uid)
                assert (r.lifecycle, r.security_counter) == (Lifecycle.MANUFACTURED, 0)
    assert not wrong, f"{len(wrong)} modified images not refused, e.g. {wrong[:10]}"
    r = assert_chip_untouched(farm, uid)
    assert r.security_counter == 0
    return seen


def _flip(image: bytes, byte: int, mask: int) -> bytes:
    out = bytearray(image)
    out[byte] ^= mask
    return bytes(out)


def test_attack_software_header_framing_and_signature_byte_flips_never_boot(
    world: Any, cm_farm: Path
) -> None:
    """Every byte outside the code payload, flipped in each of its 8 bits and inverted."""
    image = world.software.read_bytes()
    spans = _spans(image)
    payload = spans["payload"]
    targets = [b for b in range(len(image)) if b not in payload]
    targets += [payload[0], payload[-1]]  # the payload's own first and last bytes too
    masks = [1 << k for k in range(8)] + [0xFF]
    uid = world.cm_uids(cm_farm)[0]
    with timed() as elapsed:
        seen = _refuse_all(
            cm_farm,
            uid,
            ((f"byte {b} ^ {m:#x}", _flip(image, b, m)) for b in targets for m in masks),
            BOOT_REFUSALS,
        )
    assert seen["bad-signature"] > 0
    assert seen["bad-software"] > 0
    report(
        "software header/framing/signature flips",
        bytes=len(targets),
        header=len(spans["header"]),
        signature=len(spans["signature"]),
        flips=sum(seen.values()),
        refused=dict(seen),
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


def test_attack_software_payload_byte_flips_never_boot(world: Any, cm_farm: Path) -> None:
    """Every byte of the code payload (a dense sample in ``make test``), flipped as it is, and
    a sample flipped with the header's code digest recomputed to match (then only the
    signature stands in the way)."""
    image = world.software.read_bytes()
    payload = _spans(image)["payload"]
    stride = 1 if FULL else 8
    flipped = range(payload[0], payload[-1] + 1, stride)
    software = SignedSoftware.from_bytes(image)
    m = software.message
    rehashed_every = sample(97, 11)

    def rehashed(byte: int) -> bytes:
        body = _flip(m.body, byte - payload[0], 1 << (byte % 8))
        header = {**m.protected, H_CODE: sha256(body)}
        protected = cose.encode_protected(header)
        return cose.CoseMessage(cose.TAG_SIGN1, protected, header, {}, body, m.auth).to_bytes()

    def images() -> Iterable[tuple[str, bytes]]:
        for n, byte in enumerate(flipped):
            yield f"payload byte {byte}", _flip(image, byte, 1 << (byte % 8))
            if n % rehashed_every == 0:
                yield f"payload byte {byte}, digest recomputed", rehashed(byte)

    uid = world.cm_uids(cm_farm)[1]
    with timed() as elapsed:
        seen = _refuse_all(cm_farm, uid, images(), BOOT_REFUSALS)
    rehashed_count = len(range(0, len(flipped), rehashed_every))
    # the boot ROM does not hash the payload on its own: the signature, over header and payload,
    # is what refuses a flipped byte, whether or not the header's digest was recomputed
    assert dict(seen) == {"bad-signature": len(flipped) + rehashed_count}
    report(
        "software payload flips",
        payload_bytes=len(payload),
        flipped_bytes=len(flipped),
        every_byte=stride == 1,
        rehashed=rehashed_count,
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


@pytest.fixture(scope="module")
def other_icms(tmp_path_factory: pytest.TempPathFactory) -> list[icm.Icm]:
    root = tmp_path_factory.mktemp("other-icms")
    return [icm.init(root / alg, alg=alg) for alg in ("ES256", "ES384", "EdDSA")]


def test_attack_software_signed_by_another_icm_key_never_boots(
    world: Any, cm_farm: Path, other_icms: list[icm.Icm], tmp_path: Path
) -> None:
    """The genuine code signed by other ICMs' keys (every algorithm, and at the highest security
    version, which would lock the chip to the forger's software), and the genuine image with
    its signature swapped for another key's signature over the very same bytes."""
    genuine = SignedSoftware.from_bytes(world.software.read_bytes())
    images: list[tuple[str, bytes]] = []
    for other in other_icms:
        for svn in (1, 2**32 - 1):
            path = tmp_path / f"{other.alg}-{svn}.cose"
            icm.sign_software(other, path, security_version=svn)
            images.append((f"{other.alg} key, svn {svn}", path.read_bytes()))
        forged = SignedSoftware.sign(
            other.signing_key,
            alg=other.alg,
            name=genuine.name,
            version=genuine.version,
            security_version=genuine.security_version,
            code=genuine.code,
        )
        m = genuine.message
        swapped = cose.CoseMessage(
            cose.TAG_SIGN1, m.protected_bytes, m.protected, {}, m.body, forged.message.auth
        )
        images.append((f"{other.alg} signature on the genuine header", swapped.to_bytes()))
    uid = world.cm_uids(cm_farm)[2]
    seen = _refuse_all(cm_farm, uid, images, {"bad-signature"})
    report("software signed by other ICM keys", images=len(images), refused=dict(seen))
    retry_succeeds(world, cm_farm, uid)


def test_attack_genuinely_signed_image_of_other_code_never_runs(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    """The code binding: the ICM's own key over other code (a debug build with a readback
    command) does not boot on a genuine chip, and the genuine image does not run on a chip
    whose code was modified."""
    debug, tree = sign_other_code(world.icm, tmp_path)
    uids = world.cm_uids(cm_farm)
    seen = _refuse_all(
        cm_farm, uids[3], [("signed debug build", debug.read_bytes())], {"code-mismatch"}
    )
    assert seen == Counter({"code-mismatch": 1}), seen
    with Bench(cm_farm) as bench:
        chip = bench.chip(uids[4], code_root=tree)
        with pytest.raises(ChipRefused) as e:
            chip.boot(world.software.read_bytes())
        assert e.value.code == "code-mismatch"
    for uid in uids[3:5]:
        r = assert_chip_untouched(cm_farm, uid)
        assert r.security_counter == 0
        retry_succeeds(world, cm_farm, uid)
    report("genuinely signed other code", refused={"code-mismatch": 2})


def test_attack_software_rollback_after_the_counter_advanced_never_boots(
    world: Any, cm_farm: Path, software_svn: dict[int, Path]
) -> None:
    uid = world.cm_uids(cm_farm)[5]
    image = {svn: path.read_bytes() for svn, path in software_svn.items()}
    assert SignedSoftware.from_bytes(image[1]).message.protected[H_SVN] == 1
    refusals = 0
    with powered(cm_farm, uid) as client:
        client.boot(image[2])
    assert read(cm_farm, uid).security_counter == 2
    with powered(cm_farm, uid) as client:  # a fresh power-on: OTP keeps the counter
        assert _boot_outcome(client, image[1]) == "rollback"
        refusals += 1
    with powered(cm_farm, uid) as client:
        client.boot(image[3])
        client.send(boot_request(image[3]))  # the same version again is not a rollback
    assert read(cm_farm, uid).security_counter == 3
    with powered(cm_farm, uid) as client:
        for older in (2, 1, 2, 1):
            assert _boot_outcome(client, image[older]) == "rollback"
            refusals += 1
    r = assert_chip_untouched(cm_farm, uid)
    assert r.security_counter == 3
    # the old software cannot even provision the chip; the current one can
    with powered(cm_farm, uid) as client:
        outcome = provision_chip(client, uid, world_job(world))
    assert (outcome.result, outcome.error_code) == ("failed", "rollback")
    assert_chip_untouched(cm_farm, uid)
    retry_succeeds(world, cm_farm, uid, software=software_svn[3])
    # and on a provisioned chip the rollback is refused all the same
    with powered(cm_farm, uid) as client:
        assert _boot_outcome(client, image[1]) == "rollback"
        refusals += 1
    assert read(cm_farm, uid).security_counter == 3
    report("software rollback", refused=refusals, counter=3)


# -- ML-DSA and the hybrid: the chip verifies exactly the suite its immutable memory names ------
def _hybrid_parts(image: bytes) -> tuple[cose.CoseMessage, list[cose.CoseSignature]]:
    m = SignedSoftware.from_bytes(image).message
    assert m.tag == cose.TAG_SIGN
    return m, list(m.signatures)


def _with_signatures(m: cose.CoseMessage, signatures: list[cose.CoseSignature]) -> bytes:
    return cose.CoseMessage(
        cose.TAG_SIGN, m.protected_bytes, m.protected, {}, m.body, b"", tuple(signatures)
    ).to_bytes()


def _sign1(software: SignedSoftware, key: Any, alg: str) -> bytes:
    return SignedSoftware.sign(
        key,
        alg=alg,
        name=software.name,
        version=software.version,
        security_version=software.security_version,
        code=software.code,
    ).to_bytes()


@pytest.fixture(scope="module")
def suite_others(tmp_path_factory: pytest.TempPathFactory) -> dict[str, icm.Icm]:
    """Other ICMs (other keys) of every suite the attacks below need."""
    root = tmp_path_factory.mktemp("suite-others")
    return {
        alg: icm.init(root / alg, alg=alg)
        for alg in ("ES256", "ML-DSA-65", "ML-DSA-87", "ES256+ML-DSA-65")
    }


def test_attack_hybrid_software_stripped_swapped_downgraded_or_with_a_wrong_key_never_boots(
    suite_world: Any, suite_others: dict[str, icm.Icm], tmp_path: Path
) -> None:
    """On a chip whose immutable memory names ML-DSA-65 or the ES256+ML-DSA-65 hybrid: the
    genuine code signed with another suite (a downgrade to classical only, ML-DSA-87, the
    hybrid on an ML-DSA-only chip), by other keys of the right suite, and for the hybrid every
    one of its signatures stripped, reordered, duplicated, flipped, relabelled with another
    algorithm or replaced by another key's signature over the same bytes. Every one is refused
    as a bad signature, the chip stays as it was and the genuine software still provisions it."""
    world = suite_world
    image = world.software.read_bytes()
    genuine = SignedSoftware.from_bytes(image)
    assert genuine.alg == world.icm.alg
    keys = dict(zip(genuine.algorithms, world.icm.signing_keys, strict=True))
    images: list[tuple[str, bytes]] = []
    # downgrades and swaps, signed with the ICM's own keys where it has one for the algorithm
    for alg in ("ES256", "ML-DSA-65"):
        if alg in keys and len(keys) > 1:
            images.append(
                (f"downgrade to {alg} alone, genuine key", _sign1(genuine, keys[alg], alg))
            )
    for alg, other in suite_others.items():
        if alg != genuine.alg:
            images.append((f"{alg} by another ICM", _sign1(genuine, other.signing_keys, alg)))
    other_same = icm.init(tmp_path / "same-suite", alg=genuine.alg)
    images.append(
        ("right suite, other keys", _sign1(genuine, other_same.signing_keys, genuine.alg))
    )
    if genuine.message.tag == cose.TAG_SIGN:
        m, sigs = _hybrid_parts(image)
        forged_m, forged = _hybrid_parts(_sign1(genuine, other_same.signing_keys, genuine.alg))
        assert forged_m.protected_bytes == m.protected_bytes  # the same bytes, other keys
        for n, name in enumerate(genuine.algorithms):
            rest = sigs[:n] + sigs[n + 1 :]
            images.append((f"{name} signature stripped", _with_signatures(m, rest)))
            images.append((f"{name} signature doubled", _with_signatures(m, [sigs[n]] * 2)))
            replaced = [*sigs]
            replaced[n] = forged[n]
            images.append((f"{name} signature by another key", _with_signatures(m, replaced)))
            flipped = [*sigs]
            s = sigs[n]
            bad = bytearray(s.signature)
            bad[len(bad) // 2] ^= 0x01
            flipped[n] = cose.CoseSignature(s.protected_bytes, s.protected, {}, bytes(bad))
            images.append((f"{name} signature flipped", _with_signatures(m, flipped)))
        images.append(("signatures reordered", _with_signatures(m, sigs[::-1])))
        relabelled = [*sigs]
        header = {cose.ALG: -50}  # ML-DSA-87 in place of ML-DSA-65
        relabelled[1] = cose.CoseSignature(
            cose.encode_protected(header), header, {}, sigs[1].signature
        )
        images.append(("ML-DSA-65 relabelled ML-DSA-87", _with_signatures(m, relabelled)))
    uid = world.cm_uids(world.cm_farm)[0]
    farm = world.fresh_cm_farm(tmp_path)
    seen = _refuse_all(farm, uid, images, {"bad-signature"})
    report(f"{genuine.alg} software attacks", images=len(images), refused=dict(seen))
    retry_succeeds(world, farm, uid)


def test_attack_classical_chip_refuses_hybrid_and_ml_dsa_software(
    world: Any, cm_farm: Path, suite_others: dict[str, icm.Icm], tmp_path: Path
) -> None:
    """An ES256 chip takes no other suite, even one that carries a valid ES256 signature by its
    own key beside another one (a hybrid made with the genuine ES256 key)."""
    genuine = SignedSoftware.from_bytes(world.software.read_bytes())
    pq = suite_others["ML-DSA-65"].signing_key
    images = [
        (
            "hybrid with the genuine ES256 key",
            _sign1(genuine, [world.icm.signing_key, pq], "ES256+ML-DSA-65"),
        ),
        ("ML-DSA-65 by another ICM", _sign1(genuine, pq, "ML-DSA-65")),
    ]
    uid = world.cm_uids(cm_farm)[6]
    seen = _refuse_all(cm_farm, uid, images, {"bad-signature"})
    report("suites on an ES256 chip", refused=dict(seen))
    retry_succeeds(world, cm_farm, uid)
