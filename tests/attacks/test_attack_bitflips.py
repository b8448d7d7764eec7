"""T4: the CM flips bits in ENC(OEM_SHARE), the manifest, every sealed chunk and every hash-chain
link it passes beside a chunk; and it keeps each chunk's tag, which is all the chain binds, under
another ciphertext.

Artifacts up to 4 KiB are flipped in every bit; larger ones (the firmware's chunks) in a random
sample: a few hundred bits each in ``make test``, 10,000 each with ``TRUSTPROV_ATTACKS_FULL=1``.
Each attempt is the whole FIG. 3 request sequence on one booted chip, pre-encoded; the chip must
refuse exactly the tampered request with the expected code, so it never decrypts or installs
anything. A refused attempt changes nothing, so the same chip serves every attempt: the probe
checks it periodically and at the end, and the genuine artifacts must still provision it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from helpers import flip_bit

from .attack_helpers import (
    FINISH,
    Artifacts,
    assert_chip_untouched,
    chunk_request,
    powered,
    read,
    report,
    retry_succeeds,
    run,
    sample,
    timed,
)

SEED = 20230063743
EXHAUSTIVE_UP_TO = 4096  # bytes
PROBE_EVERY = 2500
Attempt = tuple[str, Sequence[bytes], int]  # what, the requests, where the chip must refuse


def _campaign(
    farm: Path, uid: bytes, image: bytes, attempts: Iterable[Attempt], codes: set[str]
) -> Counter[str]:
    seen: Counter[str] = Counter()
    wrong: list[tuple[str, object]] = []
    with powered(farm, uid, image) as client:
        for n, (what, requests, at) in enumerate(attempts, 1):
            result = run(client, requests)
            seen[result.code] += 1
            if result.code not in codes or result.at != at:
                wrong.append((what, result))
            if n % PROBE_EVERY == 0:
                assert read(farm, uid).bundle_id is None
    assert not wrong, f"{len(wrong)} tampered attempts not refused as expected: {wrong[:10]}"
    assert_chip_untouched(farm, uid)
    return seen


def _chunk_args(artifacts: Artifacts) -> list[tuple[int, int, bytes, bytes]]:
    """(asset, index, sealed, next link) of every chunk, in order."""
    bundle = artifacts.bundle
    links = [link for a in range(len(bundle.chunks)) for link in bundle.chain_links(a)]
    return [(a, i, d, n) for (a, i, d), n in zip(artifacts.parts(), links, strict=True)]


def test_attack_enc_oem_share_every_bit_flip_is_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    flow = artifacts.flow()
    share = artifacts.share
    attempts = (
        (f"bit {bit}", [artifacts.begin(share=flip_bit(share, bit)), *flow[1:]], 0)
        for bit in range(len(share) * 8)
    )
    uid = world.cm_uids(cm_farm)[0]
    with timed() as elapsed:
        seen = _campaign(cm_farm, uid, artifacts.image, attempts, {"bad-share", "wrong-family"})
    assert sum(seen.values()) == len(share) * 8
    report(
        "ENC(OEM_SHARE) bit flips",
        bytes=len(share),
        flips=sum(seen.values()),
        refused=dict(seen),
        exhaustive=True,
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


def test_attack_manifest_every_bit_flip_is_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    flow = artifacts.flow()
    manifest = artifacts.manifest
    assert len(manifest) <= EXHAUSTIVE_UP_TO
    attempts = (
        (f"bit {bit}", [artifacts.begin(manifest=flip_bit(manifest, bit)), *flow[1:]], 0)
        for bit in range(len(manifest) * 8)
    )
    uid = world.cm_uids(cm_farm)[1]
    with timed() as elapsed:
        seen = _campaign(cm_farm, uid, artifacts.image, attempts, {"bad-manifest"})
    assert sum(seen.values()) == len(manifest) * 8
    report(
        "manifest bit flips",
        bytes=len(manifest),
        flips=sum(seen.values()),
        exhaustive=True,
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


def _chunk_attempts(
    artifacts: Artifacts, positions: Iterable[tuple[int, int]], field: str
) -> Iterable[Attempt]:
    """Flip bit ``bit`` of chunk ``k``'s sealed data or its next link; the rest is genuine."""
    flow = artifacts.flow()
    args = _chunk_args(artifacts)
    for k, bit in positions:
        a, i, data, nxt = args[k]
        if field == "data":
            data = flip_bit(data, bit)
        else:
            nxt = flip_bit(nxt, bit)
        tampered = chunk_request(a, i, data, nxt)
        yield (
            f"chunk {k} (asset {a} #{i}) {field} bit {bit}",
            [
                *flow[: 1 + k],
                tampered,
                *flow[2 + k :],
            ],
            1 + k,
        )


def test_attack_every_bit_flip_of_every_small_chunk_is_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """The key, config and generated-key chunks (each up to 4 KiB): every bit of each."""
    args = _chunk_args(artifacts)
    small = [k for k, (_, _, d, _) in enumerate(args) if len(d) <= EXHAUSTIVE_UP_TO]
    assert len(small) >= 4
    positions = [(k, bit) for k in small for bit in range(len(args[k][2]) * 8)]
    uid = world.cm_uids(cm_farm)[2]
    with timed() as elapsed:
        seen = _campaign(
            cm_farm,
            uid,
            artifacts.image,
            _chunk_attempts(artifacts, positions, "data"),
            {"bad-chunk"},
        )
    assert seen["bad-chunk"] == len(positions)
    report(
        "small chunk bit flips",
        chunks=len(small),
        sizes=[len(args[k][2]) for k in small],
        flips=len(positions),
        exhaustive=True,
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


def test_attack_random_bit_flips_of_every_large_chunk_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """The firmware's chunks (over 4 KiB): random bits of each, plus its first and last bit."""
    args = _chunk_args(artifacts)
    large = [k for k, (_, _, d, _) in enumerate(args) if len(d) > EXHAUSTIVE_UP_TO]
    assert len(large) >= 3
    per_chunk = sample(300, 10_000)
    rng = random.Random(SEED)
    positions = []
    for k in large:
        bits = len(args[k][2]) * 8
        chosen = {0, bits - 1, *rng.sample(range(1, bits - 1), per_chunk)}
        positions += [(k, bit) for bit in sorted(chosen)]
    uid = world.cm_uids(cm_farm)[3]
    with timed() as elapsed:
        seen = _campaign(
            cm_farm,
            uid,
            artifacts.image,
            _chunk_attempts(artifacts, positions, "data"),
            {"bad-chunk"},
        )
    assert seen["bad-chunk"] == len(positions)
    report(
        "large chunk bit flips",
        chunks=len(large),
        sizes=[len(args[k][2]) for k in large],
        flips_per_chunk=per_chunk + 2,
        flips=len(positions),
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


def test_attack_every_bit_flip_of_every_chain_link_is_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """The hash-chain link the CM passes beside each chunk (h_{i+1}, 32 bytes): every bit."""
    args = _chunk_args(artifacts)
    positions = [(k, bit) for k in range(len(args)) for bit in range(len(args[k][3]) * 8)]
    uid = world.cm_uids(cm_farm)[4]
    with timed() as elapsed:
        seen = _campaign(
            cm_farm,
            uid,
            artifacts.image,
            _chunk_attempts(artifacts, positions, "next"),
            {"bad-chunk"},
        )
    assert seen["bad-chunk"] == len(positions)
    report(
        "chain link bit flips",
        chunks=len(args),
        flips=len(positions),
        exhaustive=True,
        seconds=elapsed(),
    )
    retry_succeeds(world, cm_farm, uid)


def _other_ciphertexts(args: Sequence[tuple[int, int, bytes, bytes]], k: int) -> list[bytes]:
    """Ciphertexts of chunk k's length to put before its genuine tag: zeros, ones, every other
    chunk's ciphertext (cut or padded to the length), and its own with the first byte changed."""
    body = args[k][2][:-16]
    others = [bytes(len(body)), b"\xff" * len(body)]
    for j, (_, _, d, _) in enumerate(args):
        if j != k:
            others.append(d[:-16][: len(body)].ljust(len(body), b"\x00"))
    others.append(bytes([body[0] ^ 0x80]) + body[1:])
    return [o for o in others if o != body]


def test_attack_genuine_tag_under_another_ciphertext_is_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """The chain binds a chunk's 16-byte tag only (docs/protocol.md 6.3): the CM keeps every
    tag and its genuine link, so the chain check passes, and sends other ciphertext before it.
    The AEAD must refuse it (it verifies that tag over the ciphertext, under a key the CM does
    not hold) before any plaintext is staged."""
    flow = artifacts.flow()
    args = _chunk_args(artifacts)
    attempts = [
        (
            f"chunk {k} (asset {a} #{i}) other ciphertext {n}",
            [*flow[: 1 + k], chunk_request(a, i, body + data[-16:], nxt), *flow[2 + k :]],
            1 + k,
        )
        for k, (a, i, data, nxt) in enumerate(args)
        for n, body in enumerate(_other_ciphertexts(args, k))
    ]
    uid = world.cm_uids(cm_farm)[6]
    with timed() as elapsed:
        seen = _campaign(cm_farm, uid, artifacts.image, attempts, {"bad-chunk"})
    assert seen["bad-chunk"] == len(attempts) >= len(args) * 3
    report("genuine tags under other ciphertext", attempts=len(attempts), seconds=elapsed())
    retry_succeeds(world, cm_farm, uid)


def test_control_the_untampered_requests_provision_a_chip(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """The control of every campaign above: the same pre-encoded requests, untampered,
    provision a chip; so each refusal above was the tamper's doing."""
    uid = world.cm_uids(cm_farm)[5]
    with powered(cm_farm, uid, artifacts.image) as client:
        assert run(client, artifacts.flow()).accepted
    assert read(cm_farm, uid).bundle_id == artifacts.bundle.manifest.bundle_id
    assert artifacts.flow()[-1] == FINISH
