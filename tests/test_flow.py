"""FIG. 3 against a hostile CM: tampered artifacts, modified software, other families, replays,
other OEM domains and power cuts. On any failure nothing is installed, and the good artifacts
still provision the chip afterwards.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Bench,
    assert_holds_world_assets,
    assert_untouched,
    copy_farm,
    flip_bit,
    keygen_on,
    regen,
    second_family,
    world_job,
)

from trustprov.chip.model import Lifecycle
from trustprov.crypto.aead import cmac_tag
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.errors import ChipRefused, TrustprovError
from trustprov.formats import cose
from trustprov.formats.bundle import Bundle, Manifest, SignedManifest
from trustprov.formats.sealed import SealedValue
from trustprov.link import messages
from trustprov.link.client import PreparedBundle
from trustprov.roles import icm
from trustprov.roles.cm import Job

SEED = 20230063743


@pytest.fixture(scope="module")
def family2(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return second_family(tmp_path_factory.mktemp("family2"))


@pytest.fixture
def bench(cm_farm: Path) -> Iterator[Bench]:
    with Bench(cm_farm) as b:
        yield b


def attempt(bench: Bench, uid: bytes, image: bytes, share: bytes, bundle: bytes) -> str:
    """One CM attempt: "host" if the CM's pre-check refuses the artifacts, else the chip's
    refusal code, or "accepted"."""
    try:
        job = Job.from_bytes(image, share, bundle)
    except TrustprovError:
        return "host"
    return send(bench, uid, job.image, job.prepared)


def send(bench: Bench, uid: bytes, image: bytes, prepared: PreparedBundle) -> str:
    client = bench.client(uid)  # a fresh power-on for every attempt
    try:
        client.boot(image)
        client.provision(prepared)
    except ChipRefused as e:
        return e.code
    return "accepted"


def _code(bench: Bench, uid: bytes, image: bytes, prepared: PreparedBundle) -> str:
    client = bench.client(uid)
    client.boot(image)
    with pytest.raises(ChipRefused) as e:
        client.provision(prepared)
    return e.value.code


def _retry_succeeds(world: Any, bench: Bench, uid: bytes) -> None:
    assert bench.provision(uid, world_job(world)).result == "provisioned"
    assert_holds_world_assets(bench.read(uid), world.public_keys)


# -- tampering with the bundle and ENC(OEM_SHARE) ------------------------------------------------
def _spans(bundle_bytes: bytes) -> dict[str, range]:
    """Where the manifest and every sealed chunk lie in the bundle file."""
    bundle = Bundle.from_bytes(bundle_bytes)
    spans = {}
    parts = {"manifest": bundle.signed.to_bytes()}
    for a, chunks in enumerate(bundle.chunks):
        for i, c in enumerate(chunks):
            parts[f"asset {a} chunk {i}"] = c
    for name, part in parts.items():
        start = bundle_bytes.find(part)
        assert start > 0
        assert bundle_bytes.find(part, start + 1) == -1
        spans[name] = range(start, start + len(part))
    return spans


REFUSED_AT = {"bad-manifest": "cm.begin", "bad-share": "cm.begin", "bad-chunk": "cm.chunk"}


def _last_op(bench: Bench) -> str:
    return messages.decode_request(bench.log[-1][0])[0]


def _flip_and_check(
    world: Any, bench: Bench, uid: bytes, positions: dict[int, str], allowed: dict[str, set[str]]
) -> Counter[str]:
    image = world.software.read_bytes()
    share = world.share.read_bytes()
    good = world.bundle.read_bytes()
    seen: Counter[str] = Counter()
    wrong = []
    for bit, region in sorted(positions.items()):
        result = attempt(bench, uid, image, share, flip_bit(good, bit))
        seen[result] += 1
        if result not in allowed[region]:
            wrong.append((bit // 8, bit % 8, region, result))
        elif result in REFUSED_AT and _last_op(bench) != REFUSED_AT[result]:
            # the manifest is refused before any chunk is even received
            wrong.append((bit // 8, bit % 8, region, f"{result} at {_last_op(bench)}"))
        assert_untouched(bench.read(uid))
    assert not wrong, f"(byte, bit, region, result) not refused as expected: {wrong[:20]}"
    return seen


def test_a_flipped_bit_anywhere_in_the_manifest_is_refused(world: Any, bench: Bench) -> None:
    uid = bench.uids()[0]
    span = _spans(world.bundle.read_bytes())["manifest"]
    positions = {byte * 8 + byte % 8: "manifest" for byte in span}  # every byte, bits rotating
    seen = _flip_and_check(world, bench, uid, positions, {"manifest": {"host", "bad-manifest"}})
    assert seen["bad-manifest"] > 0  # many flips pass the CM's parse and only a chip catches them
    _retry_succeeds(world, bench, uid)


def test_flipped_bits_sampled_across_the_whole_bundle_are_refused(world: Any, bench: Bench) -> None:
    uid = bench.uids()[1]
    good = world.bundle.read_bytes()
    spans = _spans(good)
    rng = random.Random(SEED)
    positions: dict[int, str] = {}
    for name, span in spans.items():
        bits = [span[0] * 8, span[-1] * 8 + 7]
        bits += [rng.randrange(span[0] * 8, (span[-1] + 1) * 8) for _ in range(24)]
        positions.update(dict.fromkeys(bits, "manifest" if name == "manifest" else "chunk"))
    covered = {b for s in spans.values() for b in s}
    for byte in range(len(good)):  # every byte of the framing around them
        if byte not in covered:
            positions[byte * 8 + rng.randrange(8)] = "framing"
    assert len(positions) >= 200
    allowed = {
        "manifest": {"host", "bad-manifest"},
        "chunk": {"bad-chunk"},  # the CM cannot tell; the chip's hash chain does
        "framing": {"host"},
    }
    seen = _flip_and_check(world, bench, uid, positions, allowed)
    assert seen["bad-chunk"] >= 7 * 20
    _retry_succeeds(world, bench, uid)


def test_every_flipped_bit_of_enc_oem_share_is_refused(world: Any, bench: Bench) -> None:
    uid = bench.uids()[2]
    image = world.software.read_bytes()
    share = world.share.read_bytes()
    bundle = world.bundle.read_bytes()
    seen: Counter[str] = Counter()
    for bit in range(len(share) * 8):
        result = attempt(bench, uid, image, flip_bit(share, bit), bundle)
        seen[result] += 1
        assert result in ("host", "bad-share"), (bit // 8, bit % 8, result)
        assert result == "host" or _last_op(bench) == "cm.begin"
        assert_untouched(bench.read(uid))
    assert seen["bad-share"] > 0
    _retry_succeeds(world, bench, uid)


def _with_chunks(prepared: PreparedBundle, chunks: list[bytes]) -> PreparedBundle:
    return PreparedBundle(
        prepared.bundle_id, prepared.begin, tuple(chunks), prepared.finish, prepared.manifest
    )


@pytest.mark.parametrize(
    ("attack", "codes"),
    [
        ("swap two firmware chunks", {"bad-sequence", "bad-chunk"}),
        ("drop the last chunk", {"incomplete"}),
        ("drop a middle chunk", {"bad-sequence", "bad-chunk"}),
        ("repeat a chunk", {"bad-sequence", "bad-chunk"}),
        ("no chunks", {"incomplete"}),
        ("chunk of another asset", {"bad-chunk"}),
    ],
)
def test_chunks_out_of_manifest_order_are_refused(
    world: Any, bench: Bench, attack: str, codes: set[str]
) -> None:
    uid = bench.uids()[3]
    job = world_job(world)
    chunks = list(job.prepared.chunks)
    assert len(chunks) == 7  # aes-1, aes-2, fw (3 chunks), cfg, signer
    if attack == "swap two firmware chunks":
        chunks[2], chunks[3] = chunks[3], chunks[2]
    elif attack == "drop the last chunk":
        chunks = chunks[:-1]
    elif attack == "drop a middle chunk":
        del chunks[3]
    elif attack == "repeat a chunk":
        chunks.insert(3, chunks[2])
    elif attack == "no chunks":
        chunks = []
    else:  # aes-2's sealed bytes presented as aes-1's
        args = messages.decode_request(chunks[1])[1]
        chunks[0] = messages.encode_request("cm.chunk", {**args, "asset": 0})
    assert _code(bench, uid, job.image, _with_chunks(job.prepared, chunks)) in codes
    assert_untouched(bench.read(uid))
    _retry_succeeds(world, bench, uid)


# -- the software ----------------------------------------------------------------------------------
def test_modified_software_never_boots(world: Any, bench: Bench) -> None:
    uid = bench.uids()[4]
    image = world.software.read_bytes()
    rng = random.Random(SEED)
    bits = {byte * 8 + byte % 8 for byte in range(min(400, len(image)))}  # headers
    bits |= {byte * 8 + byte % 8 for byte in range(len(image) - 80, len(image))}  # signature
    bits |= {rng.randrange(len(image) * 8) for _ in range(400)}  # the code
    results: Counter[str] = Counter()
    for bit in sorted(bits):
        client = bench.client(uid)
        with pytest.raises(ChipRefused) as e:
            client.boot(flip_bit(image, bit))
        results[e.value.code] += 1
        assert e.value.code in ("bad-software", "bad-signature"), (bit // 8, bit % 8)
        with pytest.raises(ChipRefused) as after:  # and no software runs after the refusal
            client.call("cm.finish")
        assert after.value.code in ("malformed", "unknown-command")  # not the software's answer
        r = bench.read(uid)
        assert (r.lifecycle, r.security_counter) == (Lifecycle.MANUFACTURED, 0)
    assert results["bad-signature"] > 0
    _retry_succeeds(world, bench, uid)


def test_a_bundle_needing_newer_software_is_refused(
    world: Any, bench: Bench, tmp_path: Path
) -> None:
    svn2 = tmp_path / "svn2.cose"
    icm.sign_software(world.icm, svn2, security_version=2)
    run = regen(world, tmp_path, "needs2", software=svn2, min_svn=2)
    assert run.result.bundle.manifest.min_security_version == 2
    share, bundle = run.share.read_bytes(), run.bundle.read_bytes()
    uid = bench.uids()[0]
    with pytest.raises(TrustprovError):  # the CM's own check
        Job.from_bytes(world.software.read_bytes(), share, bundle)
    prepared = PreparedBundle.prepare(Bundle.from_bytes(bundle), share)
    assert send(bench, uid, world.software.read_bytes(), prepared) == "software-too-old"
    assert_untouched(bench.read(uid))
    assert send(bench, uid, svn2.read_bytes(), prepared) == "accepted"


# -- other families, other domains, replays --------------------------------------------------------
def test_a_bundle_of_another_family_is_refused(world: Any, family2: Any, bench: Bench) -> None:
    uid = bench.uids()[0]
    share, bundle = family2.oem.share.read_bytes(), family2.oem.bundle.read_bytes()
    image = world.software.read_bytes()
    assert attempt(bench, uid, image, share, bundle) == "wrong-family"
    assert_untouched(bench.read(uid))
    # with the other family's software the chip does not even boot
    other = family2.software.read_bytes()
    assert attempt(bench, uid, other, share, bundle) == "bad-signature"
    assert_untouched(bench.read(uid))
    # a mix of the two families is caught by the CM's pre-check already
    assert attempt(bench, uid, image, world.share.read_bytes(), bundle) == "host"
    assert attempt(bench, uid, image, share, world.bundle.read_bytes()) == "host"
    _retry_succeeds(world, bench, uid)


def test_a_manifest_naming_another_family_is_refused_even_under_a_valid_cmac(
    world: Any, family2: Any, bench: Bench
) -> None:
    """Step 6 does not rest on step 2: forged with K_AUTH itself (only a test knows it)."""
    imm = world.icm.immutable
    share = world.share.read_bytes()
    oem_share = SealedValue.from_bytes(share).open(imm.k_oem_share)
    keys = derive_keys(g_master_key(oem_share, imm.hw_share, imm.rom_share), imm.family_id)
    good = Bundle.from_bytes(world.bundle.read_bytes())
    m = good.manifest
    other = family2.icm.family_id
    forged = Manifest(
        other, m.bundle_id, m.epoch, m.min_security_version, m.aead, m.chunk_size, m.assets
    )
    header = SignedManifest.protected_header(other)
    protected = cose.encode_protected(header)
    payload = forged.to_payload()
    tag = cmac_tag(keys.auth, cose.mac_structure(protected, payload))
    message = cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, payload, tag)
    bundle = Bundle(SignedManifest.from_bytes(message.to_bytes()), good.chunks)
    prepared = PreparedBundle.prepare(bundle, share)
    uid = bench.uids()[0]
    assert send(bench, uid, world.software.read_bytes(), prepared) == "wrong-family"
    assert_untouched(bench.read(uid))


def test_an_older_epoch_is_refused_after_a_newer_one(
    world: Any, bench: Bench, tmp_path: Path
) -> None:
    epoch2 = regen(world, tmp_path, "epoch2", epoch=2).job(world.software)
    epoch1 = world_job(world)
    image = epoch1.image
    a, b = bench.uids()[:2]
    # chip a: epoch 2 first, then the epoch-1 bundle is a replay
    assert send(bench, a, image, epoch2.prepared) == "accepted"
    before = bench.read(a)
    assert before.epoch == 2
    assert send(bench, a, image, epoch1.prepared) == "stale-epoch"
    assert send(bench, a, image, epoch2.prepared) == "stale-epoch"  # not above: the same epoch
    assert bench.read(a) == before
    assert_holds_world_assets(before, world.public_keys)
    # chip b: epoch 1, then the update to epoch 2, then the replay of epoch 1
    assert send(bench, b, image, epoch1.prepared) == "accepted"
    assert send(bench, b, image, epoch2.prepared) == "accepted"
    r = bench.read(b)
    assert (r.epoch, r.bundle_id) == (2, epoch2.prepared.bundle_id)
    assert_holds_world_assets(r, world.public_keys)
    assert send(bench, b, image, epoch1.prepared) == "stale-epoch"
    assert bench.read(b) == r


def test_the_cm_as_its_own_oem_cannot_mix_its_assets_with_the_oems(
    world: Any, bench: Bench, tmp_path: Path
) -> None:
    uids = bench.uids()
    # the CM buys a chip of the family and runs FIG. 2 itself: its own OEM_SHARE, its own domain
    own_farm = copy_farm(world.cm_farm, tmp_path / "cm-own.farm")  # chips it bought
    cm_run = keygen_on(own_farm, uids[7], world.software, tmp_path, "cm-own")
    cm_job = cm_run.job(world.software)
    oem_job = world_job(world)
    image = oem_job.image

    assert send(bench, uids[0], image, oem_job.prepared) == "accepted"
    before = bench.read(uids[0])
    assert send(bench, uids[0], image, cm_job.prepared) == "domain-mismatch"
    assert bench.read(uids[0]) == before

    # its ENC(OEM_SHARE) opens none of the OEM's bundles, and the OEM's opens none of its own
    cm_share, cm_bundle = cm_run.share.read_bytes(), cm_run.bundle.read_bytes()
    oem_share, oem_bundle = world.share.read_bytes(), world.bundle.read_bytes()
    for share, bundle in ((cm_share, oem_bundle), (oem_share, cm_bundle)):
        assert attempt(bench, uids[1], image, share, bundle) == "bad-manifest"
        assert_untouched(bench.read(uids[1]))

    # a chip that took the CM's own assets never takes the OEM's afterwards
    assert send(bench, uids[2], image, cm_job.prepared) == "accepted"
    assert bench.read(uids[2]).domain_id != before.domain_id
    assert send(bench, uids[2], image, oem_job.prepared) == "domain-mismatch"
    _retry_succeeds(world, bench, uids[1])


def test_a_power_cut_at_the_install_commit_installs_nothing(world: Any, bench: Bench) -> None:
    uid = bench.uids()[5]
    job = world_job(world)
    client = bench.client(uid)
    client.boot(job.image)  # the counter commit happens here, before the cut is armed

    def power_cut() -> None:
        raise OSError("power lost")

    bench.farm.before_commit = power_cut
    try:
        with pytest.raises(ChipRefused):
            client.provision(job.prepared)
    finally:
        bench.farm.before_commit = None
    assert_untouched(bench.read(uid))
    _retry_succeeds(world, bench, uid)


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.mark.parametrize("scalar", [0, P256_ORDER, 2**256 - 1], ids=["zero", "order", "all-ones"])
def test_an_invalid_ec_private_key_is_refused_and_nothing_installed(
    world: Any, bench: Bench, tmp_path: Path, scalar: int
) -> None:
    """Sealed straight on the OEM's chip (FIG. 4), so no host tool stands in the way."""
    oem_farm = copy_farm(world.oem_farm, tmp_path / "oem.farm")
    with Bench(oem_farm) as oem_bench:
        sw = oem_bench.software(world.oem_uid, world.software.read_bytes())
        sw.handle(
            "oem.regen",
            {
                "enc-oem-rnd-input": (world.oem_dir / "enc-oem-rnd-input.cose").read_bytes(),
                "enc-rnd-share": (world.oem_dir / "enc-rnd-share.cose").read_bytes(),
                "bundle": {"epoch": 1, "min-svn": 1, "aead": 3, "chunk-size": 16384},
            },
        )
        sw.handle(
            "seal.asset",
            {"name": "k", "kind": "key", "length": 32, "key-type": "ec-p256", "slot": 4},
        )
        chunk = sw.handle("seal.chunk", {"index": 0, "data": scalar.to_bytes(32)})["chunk"]
        manifest = sw.handle("seal.finish", {})["manifest"]
    bundle = Bundle(SignedManifest.from_bytes(manifest), ((chunk,),))
    job = Job.from_bytes(world.software.read_bytes(), world.share.read_bytes(), bundle.to_bytes())
    uid = bench.uids()[6]
    assert _code(bench, uid, job.image, job.prepared) == "bad-asset"
    assert_untouched(bench.read(uid))
    _retry_succeeds(world, bench, uid)
