"""trustprov.formats.authz: the authorized set, its Merkle tree (RFC 9162) and proofs."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustprov.crypto.digest import sha256
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.authz import (
    AuthorizedSet,
    InclusionProof,
    leaf_hash,
    node_hash,
    verify_inclusion,
)

uid_lists = st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=40, unique=True)


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, written as the RFC defines it (recursively), to check the
    level-by-level build against."""
    if len(d) == 1:
        return sha256(b"\x00", d[0])
    k = 1
    while 2 * k < len(d):
        k *= 2
    return sha256(b"\x01", mth(d[:k]), mth(d[k:]))


def uids(n: int) -> list[bytes]:
    return [i.to_bytes(16, "big") for i in range(n)]


def test_domain_separation() -> None:
    u = bytes(16)
    assert leaf_hash(u) == sha256(b"\x00" + u)
    assert node_hash(u + u, u + u) == sha256(b"\x01" + u * 4)
    assert leaf_hash(u + u) != node_hash(u, u)


@pytest.mark.parametrize("n", [*range(1, 18), 31, 32, 33, 100])
def test_root_is_rfc9162_tree_head(n: int) -> None:
    s = AuthorizedSet.from_uids(reversed(uids(n)))
    assert s.root == mth(uids(n))
    assert s.uids == uids(n)
    for u in uids(n):
        assert u in s
        verify_inclusion(s.root, u, s.proof(u))


@settings(max_examples=60, deadline=None)
@given(uid_lists)
def test_round_trip(values: list[bytes]) -> None:
    s = AuthorizedSet.from_uids(values, family_id=b"F" * 8)
    back = AuthorizedSet.from_bytes(s.to_bytes())
    assert back.root == s.root == mth(sorted(values))
    assert back.uids == sorted(values)
    assert back.family_id == b"F" * 8
    assert back.to_bytes() == s.to_bytes()
    assert pickle.loads(pickle.dumps(s)).root == s.root  # noqa: S301 - our own object


@settings(max_examples=60, deadline=None)
@given(uid_lists, st.data())
def test_proof_round_trip_and_binding(values: list[bytes], data: st.DataObject) -> None:
    s = AuthorizedSet.from_uids(values)
    u = data.draw(st.sampled_from(values))
    p = s.proof(u)
    assert InclusionProof.from_bytes(p.to_bytes()) == p
    verify_inclusion(s.root, u, p)
    others = [v for v in values if v != u]
    if others:  # a proof for another chip shows nothing about this one
        with pytest.raises(VerificationError):
            verify_inclusion(s.root, u, s.proof(data.draw(st.sampled_from(others))))


def test_size_bound() -> None:
    s = AuthorizedSet.from_uids(uids(1_000))
    assert max(len(s.proof(u).path) for u in s.uids) == 10
    assert len(cbor.encode([s.root, len(s)])) <= 64


def test_outsider_truncated_extended_and_empty_refused() -> None:
    s = AuthorizedSet.from_uids(uids(9))
    p = s.proof(uids(9)[4])
    outsider = (999).to_bytes(16, "big")
    assert outsider not in s
    with pytest.raises(FormatError):
        s.proof(outsider)
    bad = [
        (outsider, p),
        (uids(9)[4], InclusionProof(p.index, p.size, p.path[:-1])),
        (uids(9)[4], InclusionProof(p.index, p.size, (*p.path, p.path[0]))),
        (uids(9)[4], InclusionProof(p.index ^ 1, p.size, p.path)),
        (uids(9)[4], InclusionProof(0, 0, ())),
        (uids(9)[4], InclusionProof(9, 9, p.path)),
    ]
    for u, proof in bad:
        with pytest.raises(VerificationError) as e:
            verify_inclusion(s.root, u, proof)
        assert e.value.code == "unauthorized"
    with pytest.raises(VerificationError):  # the size, when the verifier knows it
        verify_inclusion(s.root, uids(9)[4], InclusionProof(4, 10, p.path), size=9)
    verify_inclusion(s.root, uids(9)[4], p, size=9)
    with pytest.raises(FormatError):
        AuthorizedSet.from_uids([])
    with pytest.raises(VerificationError):  # the empty tree's head (RFC 9162) holds no chip
        verify_inclusion(sha256(), uids(1)[0], InclusionProof(0, 0, ()))


def test_parser_refusals() -> None:
    s = AuthorizedSet.from_uids(uids(3))
    good = cbor.decode(s.to_bytes(), limit=1 << 20, what="t")
    blob = good[4]
    for v in [
        [*good[:4], blob[:-1]],  # not whole UIDs
        [*good[:4], blob[16:32] + blob[:16] + blob[32:]],  # not ascending
        [*good[:4], blob[:16] + blob[:16] + blob[32:]],  # a UID twice
        [*good[:4], b""],  # empty
        ["other", *good[1:]],
        [good[0], 2, *good[2:]],
        [*good[:2], b"short", *good[3:]],
        good[:4],
    ]:
        with pytest.raises(FormatError):
            AuthorizedSet.from_bytes(cbor.encode(v))
    with pytest.raises(VerificationError):  # a root that is not its UIDs'
        AuthorizedSet.from_bytes(cbor.encode([*good[:3], bytes(32), blob]))
    with pytest.raises(FormatError):
        InclusionProof.from_bytes(cbor.encode([0, 1, [bytes(32)] * 65]))
    with pytest.raises(FormatError):
        InclusionProof.from_bytes(cbor.encode([0, 1, [bytes(31)]]))
    with pytest.raises(FormatError):
        InclusionProof.from_bytes(cbor.encode([-1, 1, []]))
