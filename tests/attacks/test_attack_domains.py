"""T7, T10: other OEM domains and other chip families.

OEM B is a second FIG. 2 on a chip of the same family: its own OEM_SHARE, K_MK and DOMAIN_ID.
The CM as its own OEM ([0034]) is the same on a chip it kept. The rule is one OEM domain per chip
(code ``domain-mismatch``): a domain's assets install only with its own ENC(OEM_SHARE), and never
beside another domain's on one chip. Another family (a second ICM) has other immutable shares:
its artifacts and its software are refused by this family's chips, and the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from helpers import Family, OemRun, assert_holds_world_assets, copy_farm

from trustprov.formats import cose
from trustprov.formats.limits import LIMITS
from trustprov.formats.sealed import H_FAMILY

from .attack_helpers import (
    FINISH,
    Artifacts,
    Result,
    assert_chip_untouched,
    assert_same_holding,
    boot_request,
    chained,
    powered,
    read,
    relabelled,
    report,
    retry_succeeds,
    run,
)


def _attempt(farm: Path, uid: bytes, image: bytes, requests: Sequence[bytes]) -> Result:
    with powered(farm, uid, image) as client:  # a fresh power-on for every attempt
        return run(client, requests)


def _mixed_stream(host: Artifacts, guest: Artifacts, asset: int) -> list[bytes]:
    """The host's chunk stream with the guest's chunks of ``asset`` relabelled into it (links
    recomputed by the CM)."""
    parts = host.parts()
    guest_parts = [p for p in guest.parts() if p[0] == asset]
    host_parts = [p for p in parts if p[0] == asset]
    at = parts.index(host_parts[0])
    mixed = [*parts[:at], *guest_parts, *parts[at + len(host_parts) :]]
    return chained(mixed)


def test_attack_cross_oem_shares_bundles_and_chunks_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts, oem_b: OemRun
) -> None:
    b = Artifacts.load(world.software, oem_b.share, oem_b.bundle)
    image = artifacts.image
    fresh, with_a, with_b = world.cm_uids(cm_farm)[:3]
    refused: dict[str, Result] = {}
    # OEM A's bundle with OEM B's ENC(OEM_SHARE), and the reverse: the CMAC fails
    refused["A bundle, B share"] = _attempt(
        cm_farm, fresh, image, [artifacts.begin(share=b.share), *artifacts.flow()[1:]]
    )
    refused["B bundle, A share"] = _attempt(
        cm_farm, fresh, image, [b.begin(share=artifacts.share), *b.flow()[1:]]
    )
    # either OEM's chunks spliced into the other's session
    for asset in range(len(artifacts.bundle.chunks)):
        refused[f"A session, B asset {asset}"] = _attempt(
            cm_farm, fresh, image, [artifacts.begin(), *_mixed_stream(artifacts, b, asset), FINISH]
        )
        refused[f"B session, A asset {asset}"] = _attempt(
            cm_farm, fresh, image, [b.begin(), *_mixed_stream(b, artifacts, asset), FINISH]
        )
    assert_chip_untouched(cm_farm, fresh)
    # one OEM domain per chip: each OEM's genuine bundle on a chip holding the other's
    assert _attempt(cm_farm, with_a, image, artifacts.flow()).accepted
    assert _attempt(cm_farm, with_b, image, b.flow()).accepted
    a_holding, b_holding = read(cm_farm, with_a), read(cm_farm, with_b)
    assert a_holding.domain_id != b_holding.domain_id
    refused["B on a chip holding A"] = _attempt(cm_farm, with_a, image, b.flow())
    refused["A on a chip holding B"] = _attempt(cm_farm, with_b, image, artifacts.flow())
    expected = {
        "A bundle, B share": (0, "bad-manifest"),
        "B bundle, A share": (0, "bad-manifest"),
        "B on a chip holding A": (0, "domain-mismatch"),
        "A on a chip holding B": (0, "domain-mismatch"),
    }
    wrong = {}
    for what, result in refused.items():
        want = expected.get(what)
        if (want is not None and (result.at, result.code) != want) or (
            want is None and result.code != "bad-chunk"
        ):
            wrong[what] = result
    assert not wrong, wrong
    assert_same_holding(a_holding, read(cm_farm, with_a))
    assert_same_holding(b_holding, read(cm_farm, with_b))
    assert_holds_world_assets(read(cm_farm, with_a), world.public_keys)
    report("cross-OEM", attempts=len(refused))
    retry_succeeds(world, cm_farm, fresh)


def test_attack_cm_as_its_own_oem_cannot_mix_its_assets_with_the_oems(
    world: Any, cm_farm: Path, artifacts: Artifacts, cm_own: OemRun
) -> None:
    """[0034]: the CM's own FIG. 2 gives it its own OEM_SHARE. Its assets install only with its
    own share, never under the OEM's share, never on a chip holding the OEM's assets (even at a
    higher epoch), and the OEM's never on a chip holding the CM's."""
    cm = Artifacts.load(world.software, cm_own.share, cm_own.bundle)
    assert cm.bundle.manifest.epoch > artifacts.bundle.manifest.epoch
    image = artifacts.image
    fresh, oem_chip, cm_chip = world.cm_uids(cm_farm)[:3]
    results: dict[str, tuple[Result, tuple[int, str]]] = {}

    def attempt(what: str, uid: bytes, requests: Sequence[bytes], want: tuple[int, str]) -> None:
        results[what] = (_attempt(cm_farm, uid, image, requests), want)

    attempt(
        "CM bundle, OEM share",
        fresh,
        [cm.begin(share=artifacts.share), *cm.flow()[1:]],
        (0, "bad-manifest"),
    )
    attempt(
        "OEM bundle, CM share",
        fresh,
        [artifacts.begin(share=cm.share), *artifacts.flow()[1:]],
        (0, "bad-manifest"),
    )
    for asset in range(len(artifacts.bundle.chunks)):
        first = 1 + sum(len(c) for c in artifacts.bundle.chunks[:asset])
        attempt(
            f"OEM session, CM asset {asset}",
            fresh,
            [artifacts.begin(), *_mixed_stream(artifacts, cm, asset), FINISH],
            (first, "bad-chunk"),
        )
        attempt(
            f"CM session, OEM asset {asset}",
            fresh,
            [cm.begin(), *_mixed_stream(cm, artifacts, asset), FINISH],
            (first, "bad-chunk"),
        )
    assert_chip_untouched(cm_farm, fresh)
    assert _attempt(cm_farm, oem_chip, image, artifacts.flow()).accepted
    assert _attempt(cm_farm, cm_chip, image, cm.flow()).accepted  # its own chip, its own share
    oem_holding, cm_holding = read(cm_farm, oem_chip), read(cm_farm, cm_chip)
    assert oem_holding.domain_id != cm_holding.domain_id
    assert cm_holding.epoch == cm.bundle.manifest.epoch
    attempt("CM bundle on the OEM's chip", oem_chip, cm.flow(), (0, "domain-mismatch"))
    attempt("OEM bundle on the CM's chip", cm_chip, artifacts.flow(), (0, "domain-mismatch"))
    wrong = {w: r for w, (r, want) in results.items() if (r.at, r.code) != want}
    assert not wrong, wrong
    assert_same_holding(oem_holding, read(cm_farm, oem_chip))
    assert_same_holding(cm_holding, read(cm_farm, cm_chip))
    assert_holds_world_assets(read(cm_farm, oem_chip), world.public_keys)
    report("CM as its own OEM", attempts=len(results))
    retry_succeeds(world, cm_farm, fresh)


def test_attack_another_familys_software_share_and_bundle_are_refused(
    world: Any, cm_farm: Path, artifacts: Artifacts, other_family: Family, tmp_path: Path
) -> None:
    """A second ICM's family: its software does not boot here, its ENC(OEM_SHARE) and bundle are
    refused as another family's, relabelling their family id does not help, and this family's
    software and artifacts fail the same way on its chips."""
    theirs = Artifacts.load(other_family.software, other_family.oem.share, other_family.oem.bundle)
    ours_fam, their_fam = world.icm.family_id, other_family.icm.family_id
    uid = world.cm_uids(cm_farm)[0]
    their_uid = other_family.uid
    results: dict[str, tuple[Result, set[tuple[int, str]]]] = {}

    def attempt(
        what: str,
        farm: Path,
        chip: bytes,
        image: bytes,
        requests: Sequence[bytes],
        *want: tuple[int, str],
    ) -> None:
        with powered(farm, chip) as client:
            boot = run(client, [boot_request(image)])
            result = boot if not boot.accepted else run(client, requests)
        results[what] = (result, set(want))

    m = cose.decode(theirs.manifest, cose.TAG_MAC0, limit=LIMITS.manifest, what="manifest")
    header = {**m.protected, "tp-family": ours_fam}
    their_manifest_as_ours = cose.CoseMessage(
        cose.TAG_MAC0, cose.encode_protected(header), header, {}, m.body, m.auth
    ).to_bytes()
    our_farm = cm_farm
    their_farm = copy_farm(other_family.farm, tmp_path / "theirs.farm")
    attempt(
        "their share and bundle, our software",
        our_farm,
        uid,
        artifacts.image,
        theirs.flow(),
        (0, "wrong-family"),
    )
    attempt("their software on our chip", our_farm, uid, theirs.image, [], (0, "bad-signature"))
    attempt(
        "their share relabelled as ours",
        our_farm,
        uid,
        artifacts.image,
        [theirs.begin(share=relabelled(theirs.share, **{H_FAMILY: ours_fam})), *theirs.flow()[1:]],
        (0, "bad-share"),
    )
    attempt(
        "their manifest relabelled as ours, our share",
        our_farm,
        uid,
        artifacts.image,
        [artifacts.begin(manifest=their_manifest_as_ours), *theirs.flow()[1:]],
        (0, "bad-manifest"),
    )
    attempt(
        "our share, their manifest",
        our_farm,
        uid,
        artifacts.image,
        [artifacts.begin(manifest=theirs.manifest), *theirs.flow()[1:]],
        (0, "bad-manifest"),
    )
    attempt(
        "our software on their chip",
        their_farm,
        their_uid,
        artifacts.image,
        [],
        (0, "bad-signature"),
    )
    attempt(
        "our share and bundle on their chip",
        their_farm,
        their_uid,
        theirs.image,
        artifacts.flow(),
        (0, "wrong-family"),
    )
    attempt(
        "our share relabelled as theirs on their chip",
        their_farm,
        their_uid,
        theirs.image,
        [
            artifacts.begin(share=relabelled(artifacts.share, **{H_FAMILY: their_fam})),
            *artifacts.flow()[1:],
        ],
        (0, "bad-share"),
    )
    wrong = {w: r for w, (r, want) in results.items() if (r.at, r.code) not in want}
    assert not wrong, wrong
    assert_chip_untouched(our_farm, uid)
    assert_chip_untouched(their_farm, their_uid)
    report("another family", attempts=len(results))
    retry_succeeds(world, cm_farm, uid)
    with powered(their_farm, their_uid, theirs.image) as client:  # their control
        assert run(client, theirs.flow()).accepted
