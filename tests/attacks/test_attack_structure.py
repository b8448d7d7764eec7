"""T5, T6: the CM rearranges what it sends: truncated, reordered, duplicated or dropped chunks and
assets, a bundle cut short, two bundles of the same OEM spliced together, an older bundle
replayed after a newer epoch.

Each rearrangement is tried twice where it applies: as sent (the chunks keep their labels and
links) and relabelled (the CM renumbers asset and chunk indexes to look in order and recomputes
every hash-chain link over what it sends, so only the manifest's CMAC-verified chain head stands
in its way). Manifest-level rearrangements keep the genuine CMAC tag, the CM having no K_AUTH.
The chip must refuse before installing anything, at or before the first tampered request.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from helpers import OemRun

from trustprov.crypto.digest import CHAIN_END
from trustprov.formats import cbor, cose
from trustprov.formats.limits import LIMITS

from .attack_helpers import (
    FINISH,
    Artifacts,
    Result,
    assert_chip_untouched,
    assert_same_holding,
    chained,
    chunk_request,
    powered,
    read,
    report,
    retry_succeeds,
    run,
    sample,
    timed,
)

Part = tuple[int, int, bytes]  # asset, index, sealed data
SEQUENCE = {"bad-sequence", "bad-chunk", "incomplete"}


def _judge(
    farm: Path,
    uid: bytes,
    image: bytes,
    attempts: Iterable[tuple[str, Sequence[bytes], int, set[str]]],
) -> Counter[str]:
    """Run every attempt on one chip; each must be refused with an allowed code, no later than
    the request index given (nothing after a tampered request may be accepted)."""
    seen: Counter[str] = Counter()
    wrong: list[tuple[str, Result]] = []
    with powered(farm, uid, image) as client:
        for what, requests, latest, codes in attempts:
            result = run(client, requests)
            seen[result.code] += 1
            if result.accepted or result.code not in codes or result.at > latest:
                wrong.append((what, result))
    assert not wrong, f"{len(wrong)} attempts not refused as expected: {wrong[:10]}"
    assert_chip_untouched(farm, uid)
    return seen


def _first_difference(parts: Sequence[Part], genuine: Sequence[Part]) -> int:
    """Index (in the chunk stream) of the first chunk that is not the genuine one."""
    for n, (p, g) in enumerate(zip(parts, genuine, strict=False)):
        if p != g:
            return n
    return min(len(parts), len(genuine))


def _as_sent(a: Artifacts, parts: Sequence[Part]) -> list[bytes]:
    """These chunks in this order, each with its own labels and the genuine link of its
    position (what a CM that rearranges but does not recompute sends)."""
    links = {
        (asset, index): link
        for asset in range(len(a.bundle.chunks))
        for index, link in enumerate(a.bundle.chain_links(asset))
    }
    return [chunk_request(p[0], p[1], p[2], links.get(p[:2], CHAIN_END)) for p in parts]


def _relabelled(a: Artifacts, data: Sequence[bytes]) -> list[Part]:
    """Sealed data in the CM's order under the genuine labels, position by position; chunks
    beyond the genuine count continue the last asset."""
    labels = [(asset, index) for asset, index, _ in a.parts()]
    while len(labels) < len(data):
        asset, index = labels[-1]
        labels.append((asset, index + 1))
    return [(asset, index, d) for (asset, index), d in zip(labels, data, strict=False)]


def _attempts(
    a: Artifacts, name: str, streams: Iterable[list[Part]]
) -> Iterable[tuple[str, Sequence[bytes], int, set[str]]]:
    """Both flavours of every rearranged stream: as sent and relabelled."""
    genuine = a.parts()
    begin = a.begin()
    for n, parts in enumerate(streams):
        if parts == genuine:
            continue
        latest = 1 + _first_difference(parts, genuine)
        yield f"{name} {n} as sent", [begin, *_as_sent(a, parts), FINISH], latest, SEQUENCE
        relabelled = _relabelled(a, [d for _, _, d in parts])
        latest = 1 + _first_difference(relabelled, genuine)
        yield f"{name} {n} relabelled", [begin, *chained(relabelled), FINISH], latest, SEQUENCE


def _stream_attack(
    world: Any, farm: Path, a: Artifacts, name: str, streams: Callable[[], Iterable[list[Part]]]
) -> Counter[str]:
    uid = world.cm_uids(farm)[0]
    with timed() as elapsed:
        seen = _judge(farm, uid, a.image, _attempts(a, name, streams()))
    report(name, attempts=sum(seen.values()), refused=dict(seen), seconds=elapsed())
    retry_succeeds(world, farm, uid)
    return seen


# -- chunks ----------------------------------------------------------------------------------------
def test_attack_truncated_or_extended_chunks_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """Each chunk cut to nothing, to one byte, to its tag, by its tag, by one byte, in half, and
    extended by one byte and by a tag's worth."""

    def streams() -> Iterable[list[Part]]:
        parts = artifacts.parts()
        for k, (asset, index, data) in enumerate(parts):
            n = len(data)
            for cut in sorted({0, 1, 16, n // 2, n - 16, n - 1} - {n}):
                yield [*parts[:k], (asset, index, data[:cut]), *parts[k + 1 :]]
            for extra in (b"\x00", data[-16:]):
                yield [*parts[:k], (asset, index, data + extra), *parts[k + 1 :]]

    seen = _stream_attack(world, cm_farm, artifacts, "truncated or extended chunks", streams)
    assert set(seen) == {"bad-chunk"}


def test_attack_reordered_chunks_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """Every order of the bundle's seven chunks (a sample in ``make test``), across assets too."""
    parts = artifacts.parts()
    orders = list(itertools.permutations(range(len(parts))))
    chosen = random.Random(1).sample(orders[1:], min(len(orders) - 1, sample(1000, len(orders))))

    def streams() -> Iterable[list[Part]]:
        for order in chosen:
            yield [parts[i] for i in order]

    seen = _stream_attack(world, cm_farm, artifacts, "reordered chunks", streams)
    assert seen["bad-sequence"] > 0
    assert seen["bad-chunk"] > 0


def test_attack_duplicated_chunks_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """Each chunk sent again at every position of the stream."""

    def streams() -> Iterable[list[Part]]:
        parts = artifacts.parts()
        for k, j in itertools.product(range(len(parts)), range(len(parts) + 1)):
            yield [*parts[:j], parts[k], *parts[j:]]

    _stream_attack(world, cm_farm, artifacts, "duplicated chunks", streams)


def test_attack_dropped_chunks_are_refused(world: Any, cm_farm: Path, artifacts: Artifacts) -> None:
    """Every non-empty set of chunks left out, the whole stream included."""

    def streams() -> Iterable[list[Part]]:
        parts = artifacts.parts()
        for r in range(1, len(parts) + 1):
            for dropped in itertools.combinations(range(len(parts)), r):
                yield [p for k, p in enumerate(parts) if k not in dropped]

    seen = _stream_attack(world, cm_farm, artifacts, "dropped chunks", streams)
    assert seen["incomplete"] > 0


def test_attack_bundle_cut_short_before_finish_is_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """cm.finish after every proper prefix of the chunk stream: nothing is installed."""
    stream = artifacts.stream()
    attempts = [
        (
            f"finish after {p} chunks",
            [artifacts.begin(), *stream[:p], FINISH],
            1 + p,
            {"incomplete"},
        )
        for p in range(len(stream))
    ]
    uid = world.cm_uids(cm_farm)[0]
    seen = _judge(cm_farm, uid, artifacts.image, attempts)
    assert seen == Counter({"incomplete": len(stream)})
    report("bundle cut short", attempts=len(stream))
    retry_succeeds(world, cm_farm, uid)


# -- assets ----------------------------------------------------------------------------------------
def _groups(a: Artifacts) -> list[list[Part]]:
    return [[(asset, i, d) for i, d in enumerate(cs)] for asset, cs in enumerate(a.bundle.chunks)]


def _manifest_with(a: Artifacts, assets: list[Any]) -> bytes:
    """The genuine manifest with its asset list replaced, under the genuine CMAC tag."""
    m = cose.decode(a.manifest, cose.TAG_MAC0, limit=LIMITS.manifest, what="manifest")
    payload = cbor.decode(m.body, limit=LIMITS.manifest, what="payload")
    payload["assets"] = assets
    body = cbor.encode(payload)
    return cose.CoseMessage(
        cose.TAG_MAC0, m.protected_bytes, m.protected, {}, body, m.auth
    ).to_bytes()


def _manifest_entries(a: Artifacts) -> list[Any]:
    m = cose.decode(a.manifest, cose.TAG_MAC0, limit=LIMITS.manifest, what="manifest")
    return list(cbor.decode(m.body, limit=LIMITS.manifest, what="payload")["assets"])


def _asset_attack(
    world: Any,
    farm: Path,
    a: Artifacts,
    name: str,
    arrangements: list[list[int]],
) -> Counter[str]:
    """Each arrangement of asset indexes, applied to the chunk stream (both flavours) and to the
    manifest's asset list (under the genuine tag)."""
    groups = _groups(a)
    entries = _manifest_entries(a)
    flow = a.flow()

    def attempts() -> Iterable[tuple[str, Sequence[bytes], int, set[str]]]:
        streams = ([p for i in order for p in groups[i]] for order in arrangements)
        yield from _attempts(a, name, streams)
        for order in arrangements:
            manifest = _manifest_with(a, [entries[i] for i in order])
            yield (
                f"{name} {order} in the manifest",
                [a.begin(manifest=manifest), *flow[1:]],
                0,
                {"bad-manifest"},
            )

    uid = world.cm_uids(farm)[1]
    seen = _judge(farm, uid, a.image, attempts())
    report(name, arrangements=len(arrangements), attempts=sum(seen.values()), refused=dict(seen))
    retry_succeeds(world, farm, uid)
    return seen


def test_attack_reordered_assets_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    n = len(artifacts.bundle.chunks)
    orders = [list(p) for p in itertools.permutations(range(n)) if list(p) != list(range(n))]
    seen = _asset_attack(world, cm_farm, artifacts, "reordered assets", orders)
    assert seen["bad-manifest"] == len(orders)


def test_attack_duplicated_assets_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    """Each asset twice, at every position; or replacing another asset."""
    n = len(artifacts.bundle.chunks)
    base = list(range(n))
    arrangements = [[*base[:j], k, *base[j:]] for k in range(n) for j in range(n + 1)]
    arrangements += [
        [k if i == j else i for i in base] for k in range(n) for j in range(n) if j != k
    ]
    seen = _asset_attack(world, cm_farm, artifacts, "duplicated assets", arrangements)
    assert seen["bad-manifest"] == len(arrangements)


def test_attack_dropped_assets_are_refused(world: Any, cm_farm: Path, artifacts: Artifacts) -> None:
    """Every non-empty set of assets left out (all of them included)."""
    n = len(artifacts.bundle.chunks)
    arrangements = [
        [i for i in range(n) if i not in dropped]
        for r in range(1, n + 1)
        for dropped in itertools.combinations(range(n), r)
    ]
    seen = _asset_attack(world, cm_farm, artifacts, "dropped assets", arrangements)
    assert seen["bad-manifest"] == len(arrangements)
    assert seen["incomplete"] > 0


# -- two bundles of the same OEM -------------------------------------------------------------------
def test_attack_spliced_assets_of_two_bundles_of_the_same_oem_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts, bundle_b: OemRun
) -> None:
    """Bundle B is the same OEM's FIG. 4 output (same K_MK) with another firmware, one more
    asset and epoch 2. Every mix of the two bundles' assets under either manifest, and every
    manifest mixing their entries, is refused; only each bundle whole is valid."""
    b = Artifacts.load(world.software, bundle_b.share, bundle_b.bundle)
    assert b.bundle.manifest.epoch == 2
    groups = {"A": _groups(artifacts), "B": _groups(b)}
    entries = {"A": _manifest_entries(artifacts), "B": _manifest_entries(b)}

    def mixes(
        host: str, other: str, host_art: Artifacts
    ) -> Iterable[tuple[str, Sequence[bytes], int, set[str]]]:
        n = len(groups[host])
        shared = min(n, len(groups[other]))
        flow = host_art.flow()
        for choice in itertools.product((host, other), repeat=shared):
            if other not in choice:
                continue
            sources = [*choice, *[host] * (n - shared)]
            data = [d for i, s in enumerate(sources) for _, _, d in groups[s][i]]
            mixed = [
                (i, k, d) for i, s in enumerate(sources) for k, (_, _, d) in enumerate(groups[s][i])
            ]
            first = 1 + sum(len(groups[host][i]) for i in range(sources.index(other)))
            yield (
                f"{host} manifest, {sources}",
                [host_art.begin(), *chained(mixed), FINISH],
                first,
                SEQUENCE,
            )
            relabelled = [(p[0], p[1], d) for p, d in zip(host_art.parts(), data, strict=False)]
            yield (
                f"{host} manifest, {sources} relabelled",
                [
                    host_art.begin(),
                    *chained(relabelled),
                    FINISH,
                ],
                first,
                SEQUENCE,
            )
            manifest = _manifest_with(host_art, [entries[s][i] for i, s in enumerate(sources)])
            yield (
                f"{host} manifest with entries {sources}",
                [
                    host_art.begin(manifest=manifest),
                    *flow[1:],
                ],
                0,
                {"bad-manifest"},
            )

    def cross_manifests() -> Iterable[tuple[str, Sequence[bytes], int, set[str]]]:
        ma = cose.decode(artifacts.manifest, cose.TAG_MAC0, limit=LIMITS.manifest, what="a")
        mb = cose.decode(b.manifest, cose.TAG_MAC0, limit=LIMITS.manifest, what="b")
        for what, body, tag in (
            ("A payload, B tag", ma.body, mb.auth),
            ("B payload, A tag", mb.body, ma.auth),
        ):
            forged = cose.CoseMessage(
                cose.TAG_MAC0, ma.protected_bytes, ma.protected, {}, body, tag
            )
            yield (
                what,
                [artifacts.begin(manifest=forged.to_bytes()), *artifacts.flow()[1:]],
                0,
                {"bad-manifest"},
            )
        # each bundle's chunk stream whole under the other's manifest
        yield "A manifest, B stream", [artifacts.begin(), *b.stream(), FINISH], 1, SEQUENCE
        yield "B manifest, A stream", [b.begin(), *artifacts.stream(), FINISH], 1, SEQUENCE

    def attempts() -> Iterable[tuple[str, Sequence[bytes], int, set[str]]]:
        yield from mixes("A", "B", artifacts)
        yield from mixes("B", "A", b)
        yield from cross_manifests()

    uid = world.cm_uids(cm_farm)[2]
    seen = _judge(cm_farm, uid, artifacts.image, attempts())
    report("spliced bundles", attempts=sum(seen.values()), refused=dict(seen))
    retry_succeeds(world, cm_farm, uid)


def test_attack_older_bundle_replayed_after_a_newer_epoch_is_refused(
    world: Any,
    cm_farm: Path,
    artifacts: Artifacts,
    bundle_b: OemRun,
    software_svn: dict[int, Path],
) -> None:
    b = Artifacts.load(world.software, bundle_b.share, bundle_b.bundle)
    first, second = world.cm_uids(cm_farm)[3:5]
    refusals = 0
    # chip 1: epoch 2 first; epoch 1 is then a replay, and so is epoch 2 again
    with powered(cm_farm, first, artifacts.image) as client:
        assert run(client, b.flow()).accepted
    held = read(cm_farm, first)
    assert held.epoch == 2
    # chip 2: epoch 1, the update to epoch 2, then both again
    with powered(cm_farm, second, artifacts.image) as client:
        assert run(client, artifacts.flow()).accepted
        assert run(client, b.flow()).accepted
    assert read(cm_farm, second).epoch == 2
    for uid in (first, second):
        before = read(cm_farm, uid)
        for image in (artifacts.image, software_svn[3].read_bytes()):  # newer software too
            with powered(cm_farm, uid, image) as client:
                for replay in (artifacts, b, artifacts):
                    result = run(client, replay.flow())
                    assert (result.at, result.code) == (0, "stale-epoch"), result
                    refusals += 1
        assert_same_holding(before, read(cm_farm, uid))
    report("older bundle replayed", refused=refusals)
