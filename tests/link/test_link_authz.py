"""The inclusion proof in cm.begin: one request encoded per lot, the proof spliced in per chip."""

from __future__ import annotations

import dataclasses
from typing import Any

from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Authorization, Bundle
from trustprov.link import messages
from trustprov.link.client import PreparedBundle


def test_begin_for_is_the_canonical_request_with_the_chips_proof(world: Any) -> None:
    """`PreparedBundle.begin_for` gives the very bytes of encoding the whole request per chip."""
    bundle = Bundle.from_bytes(world.bundle.read_bytes())
    uids = world.cm_uids()
    s = AuthorizedSet.from_uids(uids[:5])
    manifest = dataclasses.replace(bundle.manifest, authorized=Authorization(s.root, len(s)))
    signed = dataclasses.replace(
        bundle.signed,
        manifest=manifest,
        message=dataclasses.replace(bundle.signed.message, body=manifest.to_payload()),
    )
    share = world.share.read_bytes()
    prepared = PreparedBundle.prepare(dataclasses.replace(bundle, signed=signed), share, s)
    for uid in uids[:5]:
        whole = {
            "enc-oem-share": share,
            "manifest": signed.to_bytes(),
            "proof": s.proof(uid).to_cbor(),
        }
        assert prepared.begin_for(uid) == messages.encode_request("cm.begin", whole)
        assert prepared.requests(uid)[1:] == [*prepared.chunks, prepared.finish]
    assert prepared.begin_for(uids[6]) == prepared.begin  # an outsider: no proof to give
    plain = PreparedBundle.prepare(bundle, share)
    assert plain.begin_for(uids[0]) == plain.begin  # a bundle for any chip: never a proof
