"""`roles.oem.reconcile`: the classes of a receipt, the receipts file readers, the worker pool.

The receipts here are made with keys the ICM certified for the test (`icm.issue_certificate`):
what a chip would sign, with claims a chip would never sign, to reach every class."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustprov.crypto.digest import sha256
from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, public_key_der
from trustprov.errors import FormatError, InputError
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Bundle
from trustprov.formats.installed import expected_installed_digest
from trustprov.formats.receipt import ReceiptClaims, make_receipt
from trustprov.roles import icm
from trustprov.roles.oem import receipts_file, reconcile

DOMAIN = bytes(16)


@pytest.fixture(scope="module")
def ref(world: Any) -> Any:
    bundle = Bundle.from_bytes(world.bundle.read_bytes())
    ca = world.icm.ca_cert.public_bytes(serialization.Encoding.DER)
    return reconcile.reference(ca, bundle)


def _claims(ref: Any, uid: bytes, **change: Any) -> ReceiptClaims:
    m = ref.expected.manifest
    claims = ReceiptClaims(
        uid=uid,
        lot="LOT-A",
        bundle_id=m.bundle_id,
        manifest_digest=ref.expected.manifest_digest,
        installed_digest=expected_installed_digest(m, DOMAIN),
        domain_id=DOMAIN,
        epoch=m.epoch,
        software_name="sw",
        software_version="1",
        security_version=m.min_security_version,
        lifecycle=2,
        counter=1,
    )
    return dataclasses.replace(claims, **change)


def _receipt(world: Any, claims: ReceiptClaims) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = icm.issue_certificate(world.icm, claims.uid, public_key_der(key))
    der = cert.public_bytes(serialization.Encoding.DER)
    return make_receipt(claims, der, lambda m: SIGNATURE_ALGORITHMS["ES256"].sign(key, m))


def _uid(n: int) -> bytes:
    return n.to_bytes(16, "big")


@pytest.mark.parametrize(
    ("change", "cls"),
    [
        ({}, "valid"),
        ({"lifecycle": 3}, "valid"),  # locked after provisioning: still the bundle
        ({"installed_digest": sha256(b"more")}, "wrong-state"),
        ({"lifecycle": 1}, "wrong-state"),
        ({"epoch": 7}, "wrong-state"),
        ({"bundle_id": bytes(16)}, "wrong-bundle"),
        ({"manifest_digest": bytes(32)}, "wrong-bundle"),
        ({"counter": 0}, "wrong-state"),  # no install signs a counter of 0
    ],
)
def test_each_class(world: Any, ref: Any, change: dict[str, Any], cls: str) -> None:
    data = _receipt(world, _claims(ref, _uid(1), **change))
    r = reconcile.reconcile([data], ref, AuthorizedSet.from_uids([_uid(1)]), jobs=1)
    assert r.counts[cls] == 1
    assert r.ok == (cls == "valid")


def test_below_the_minimum_security_version_is_wrong_state(world: Any, ref: Any) -> None:
    if ref.expected.min_svn == 0:
        pytest.skip("the world's bundle has no minimum security version to go below")
    data = _receipt(world, _claims(ref, _uid(1), security_version=ref.expected.min_svn - 1))
    assert reconcile.reconcile([data], ref, None, jobs=1).counts["wrong-state"] == 1


def test_a_receipt_of_another_lot_is_wrong_lot(world: Any, ref: Any) -> None:
    """Item 7: the chip's signed lot must be the lot the ICM's manifest gives for its UID."""
    lots = {_uid(1): "LOT-A", _uid(2): "LOT-A"}
    moved = _receipt(world, _claims(ref, _uid(1), lot="LOT-B"))
    unlisted = _receipt(world, _claims(ref, _uid(3)))
    right = _receipt(world, _claims(ref, _uid(2)))
    r = reconcile.reconcile([moved, unlisted, right], ref, None, jobs=1, lots=lots)
    assert (r.counts["wrong-lot"], r.counts["valid"]) == (2, 1)
    assert sorted(r.by_class["wrong-lot"]) == [_uid(1), _uid(3)]
    assert not r.ok
    # without the lots, the lot is not checked: the same receipts are valid
    assert reconcile.reconcile([moved], ref, None, jobs=1).counts["valid"] == 1


def test_unauthorized_is_counted_before_wrong_lot(world: Any, ref: Any) -> None:
    moved = _receipt(world, _claims(ref, _uid(1), lot="LOT-B"))
    r = reconcile.reconcile(
        [moved], ref, AuthorizedSet.from_uids([_uid(2)]), jobs=1, lots={_uid(1): "LOT-A"}
    )
    assert (r.counts["unauthorized"], r.counts["wrong-lot"]) == (1, 0)


def test_without_auth_nothing_is_unauthorized_or_missing(world: Any, ref: Any) -> None:
    r = reconcile.reconcile([_receipt(world, _claims(ref, _uid(5)))], ref, None, jobs=1)
    assert r.counts["valid"] == 1
    assert r.authorized is None
    assert r.missing == []
    assert r.to_json()["counts"]["missing"] is None


def test_pool_and_files_agree(
    world: Any, ref: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes, a CBOR sequence read in blocks that cut receipts, and JSON lines,
    all give the same verdicts as one process over the list."""
    receipts = [_receipt(world, _claims(ref, _uid(i))) for i in range(30)]
    receipts.append(receipts[4])
    auth = AuthorizedSet.from_uids([_uid(i) for i in range(1, 33)])
    want = reconcile.reconcile(receipts, ref, auth, jobs=1)
    seq = tmp_path / "r.cbor"
    seq.write_bytes(b"".join(receipts))
    jl = tmp_path / "r.jsonl"
    jl.write_text(
        "".join(json.dumps({"receipt": base64.b64encode(r).decode()}) + "\n" for r in receipts)
    )
    with monkeypatch.context() as m:
        m.setattr(receipts_file, "READ_BLOCK", 1000)  # smaller than a receipt: each is cut
        assert list(reconcile.read_receipts(seq)) == receipts
    for source in (list(reconcile.read_receipts(seq)), list(reconcile.read_receipts(jl))):
        got = reconcile.reconcile(source, ref, auth, jobs=2)
        assert got.counts == want.counts
        assert got.missing == want.missing
    assert want.counts["valid"] == 29
    assert want.counts["unauthorized"] == 1  # UID 0 was not ordered
    assert want.counts["duplicate"] == 1
    assert sorted(want.missing) == [_uid(30), _uid(31), _uid(32)]


@pytest.mark.parametrize(
    "content",
    [b"\xd2\x84\x43", b"\xff" * 10, b'{"receipt": "not base64"}\n', b'{"uid": "00"}\n'],
)
def test_a_damaged_receipts_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "r"
    path.write_bytes(content)
    with pytest.raises(FormatError, match="receipts"):
        list(reconcile.read_receipts(path))


def test_missing_receipts_file(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(reconcile.read_receipts(tmp_path / "none"))
