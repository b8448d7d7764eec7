"""T40-T45: receipts and reconciliation. A CM that reports chips it did not provision, reports
one chip twice, passes another lot's or another bundle's receipts off as this order's, replays
an older receipt of a chip, or invents a receipt, is caught by the OEM's reconciliation, which
names each for what it is; and the counts add up to the receipts received.

Each receipt here is a chip's own, made by FIG. 3 on a chip of the world's family; the forged
ones are what a CM can make without a chip's identity key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import Bench, OemRun, farm_rows, regen, world_job

from trustprov.chip.device import Hardware
from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, public_key_der
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Bundle
from trustprov.formats.receipt import Receipt, make_receipt
from trustprov.roles import icm
from trustprov.roles.oem import reconcile
from trustprov.roles.oem.reconcile import Reconciliation

from .attack_helpers import manufacture_lot, rogue_ca


@pytest.fixture(scope="module")
def update(world: Any, tmp_path_factory: pytest.TempPathFactory) -> OemRun:
    """The OEM's update bundle (epoch 2) of the world's domain."""
    return regen(world, tmp_path_factory.mktemp("receipt-update"), "update", epoch=2)


@pytest.fixture(scope="module")
def lot(world: Any, update: OemRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The world's lot provisioned with its bundle (one receipt a chip), its first chip then
    updated, and a chip of another lot provisioned with the same bundle."""
    root = tmp_path_factory.mktemp("receipts")
    farm = world.fresh_cm_farm(root)
    with Bench(farm) as bench:
        uids = bench.uids(world.cm_lot)
        first = {u: bench.provision(u, world_job(world)).receipt for u in uids}
        again = bench.provision(uids[0], world_job(world))  # holds it: settled by status
        updated = bench.provision(uids[0], update.job(world.software)).receipt
    other_farm, other_uids = manufacture_lot(world, root, "LOT-B", 1)
    with Bench(other_farm) as bench:
        cross = bench.provision(other_uids[0], world_job(world)).receipt
    return {
        "farm": farm,
        "uids": uids,
        "first": first,
        "again": again,
        "updated": updated,
        "cross": cross,
    }


def _column(farm: Path, column: str, uid: bytes) -> Any:
    """One column of one chip's farm row (the test-only view of its OTP and key store)."""
    rows = farm_rows(farm, f"SELECT {column}, uid FROM chips")  # noqa: S608 - a test's own constant column name
    return next(value for value, u in rows if bytes(u) == uid)


def _ca_der(world: Any) -> bytes:
    return world.icm.ca_cert.public_bytes(serialization.Encoding.DER)


def _reconcile(
    world: Any, bundle: Path, receipts: list[bytes], uids: list[bytes]
) -> Reconciliation:
    ref = reconcile.reference(_ca_der(world), Bundle.from_bytes(bundle.read_bytes()))
    r = reconcile.reconcile(receipts, ref, AuthorizedSet.from_uids(uids), jobs=1)
    assert sum(r.counts.values()) == r.receipts == len(receipts), "the counts do not add up"
    return r


def _only(r: Reconciliation, **expected: int) -> None:
    want = {k.replace("_", "-"): v for k, v in expected.items()}
    assert r.counts == dict.fromkeys(reconcile.CLASSES, 0) | want


def test_attack_every_chip_returns_a_valid_receipt(world: Any, lot: dict[str, Any]) -> None:
    receipts = list(lot["first"].values())
    assert all(isinstance(x, bytes) for x in receipts)
    r = _reconcile(world, world.bundle, receipts, lot["uids"])
    _only(r, valid=len(receipts))
    assert r.ok
    assert r.missing == []


def test_attack_unreported_chips_are_missing(world: Any, lot: dict[str, Any]) -> None:
    """A CM that keeps chips back (or their receipts) leaves them missing, each named."""
    r = _reconcile(world, world.bundle, list(lot["first"].values())[2:], lot["uids"])
    _only(r, valid=len(lot["uids"]) - 2)
    assert sorted(r.missing) == sorted(lot["uids"][:2])
    assert r.ok  # missing is reported, not an error of the receipts


def test_attack_duplicated_receipt(world: Any, lot: dict[str, Any]) -> None:
    """One chip reported twice (to pass for two chips) is a duplicate, not a second valid chip."""
    receipts = list(lot["first"].values())
    r = _reconcile(world, world.bundle, [*receipts, receipts[3]], lot["uids"])
    _only(r, valid=len(receipts), duplicate=1)
    assert r.by_class["duplicate"] == [lot["uids"][3]]
    assert not r.ok


def test_attack_cross_lot_receipt_is_unauthorized(world: Any, lot: dict[str, Any]) -> None:
    """A chip of another lot, provisioned with the OEM's bundle (overproduction), signs a genuine
    receipt: its UID is not among the chips ordered."""
    receipts = [*lot["first"].values(), lot["cross"]]
    r = _reconcile(world, world.bundle, receipts, lot["uids"])
    _only(r, valid=len(lot["uids"]), unauthorized=1)
    assert r.by_class["unauthorized"] == [Receipt.from_bytes(lot["cross"]).claims.uid]
    assert not r.ok


def test_attack_wrong_bundle_receipt(world: Any, lot: dict[str, Any], update: OemRun) -> None:
    """A chip that installed another bundle is not a chip provisioned with this one."""
    r = _reconcile(world, update.bundle, list(lot["first"].values())[1:], lot["uids"])
    _only(r, wrong_bundle=len(lot["uids"]) - 1)
    assert not r.ok


def test_attack_replayed_receipt_and_the_counter_rises(
    world: Any, lot: dict[str, Any], update: OemRun
) -> None:
    """After an update the chip's new receipt carries a higher counter; the old one offered
    beside it is a replay, and the new one is the chip's."""
    old, new = lot["first"][lot["uids"][0]], lot["updated"]
    c_old, c_new = Receipt.from_bytes(old).claims, Receipt.from_bytes(new).claims
    assert c_new.counter == c_old.counter + 1
    assert _column(lot["farm"], "prov_counter", lot["uids"][0]) == 2
    r = _reconcile(world, update.bundle, [old, new], lot["uids"])
    _only(r, valid=1, replayed=1)
    assert r.by_class["replayed"] == [lot["uids"][0]]
    r = _reconcile(world, update.bundle, [new, old], lot["uids"])  # either order
    _only(r, valid=1, replayed=1)


def test_attack_settled_chip_signs_no_new_receipt(lot: dict[str, Any]) -> None:
    """A chip that already holds the bundle installs nothing again, so it has no new receipt:
    the CM cannot mint a second one by provisioning it twice."""
    assert lot["again"].result == "already-provisioned"
    assert lot["again"].receipt is None


def _forge(claims: Any, cert: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    return make_receipt(claims, cert, lambda m: SIGNATURE_ALGORITHMS["ES256"].sign(key, m))


def test_attack_forged_receipts(world: Any, lot: dict[str, Any]) -> None:
    """What a CM can make without a chip's identity key: a chip's receipt with an altered claim,
    a receipt signed by its own key under the chip's certificate, one under a certificate of its
    own CA, one whose certificate names another chip, and bytes that are not a receipt."""
    uids = lot["uids"]
    genuine = Receipt.from_bytes(lot["first"][uids[1]])
    more = dataclasses.replace(genuine.claims, counter=genuine.claims.counter + 5)
    altered = make_receipt(more, genuine.certificate, lambda _: genuine.message.auth)
    own = ec.generate_private_key(ec.SECP256R1())
    resigned = _forge(genuine.claims, genuine.certificate, own)
    rogue_key, rogue_name = rogue_ca()
    rogue_cert = (
        x509.CertificateBuilder()
        .issuer_name(rogue_name)
        .subject_name(x509.load_der_x509_certificate(genuine.certificate).subject)
        .public_key(own.public_key())
        .serial_number(1)
        .not_valid_before(x509.load_der_x509_certificate(genuine.certificate).not_valid_before_utc)
        .not_valid_after(x509.load_der_x509_certificate(genuine.certificate).not_valid_after_utc)
        .sign(rogue_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    rogue = _forge(genuine.claims, rogue_cert, own)
    # a key the ICM did certify, for a chip that is not this one
    other_cert = icm.issue_certificate(world.icm, bytes(16), public_key_der(own))
    other = _forge(genuine.claims, other_cert.public_bytes(serialization.Encoding.DER), own)
    garbage = b"\xd2\x84" + bytes(40)
    forged = [altered, resigned, rogue, other, garbage]
    r = _reconcile(world, world.bundle, forged, uids)
    _only(r, forged=len(forged))
    assert r.missing == uids  # no forgery counts for a chip
    assert not r.ok


def test_attack_identity_key_never_leaves_the_chip(lot: dict[str, Any]) -> None:
    """The firmware can sign with the identity key and nothing more: no Hardware attribute
    returns it, and no receipt carries it."""
    assert [n for n in dir(Hardware) if "identity" in n] == ["identity_sign"]
    for uid, receipt in lot["first"].items():
        assert bytes(_column(lot["farm"], "identity_key", uid)) not in receipt


DEVICE_KEY = """
[[asset]]
name = "cloud-key"
kind = "device-key"
key-type = "ec-p256"
slot = 12
"""


def test_attack_device_keys_differ_and_never_leave(world: Any, tmp_path: Path) -> None:
    """Each chip makes its own device key at install: two chips of one bundle hold different
    keys, each the one its receipt names, and the private half is in no byte a chip sent."""
    device = regen(world, tmp_path, "device", epoch=2, extra=DEVICE_KEY)
    farm = world.fresh_cm_farm(tmp_path)
    with Bench(farm) as bench:
        uids = bench.uids(world.cm_lot)[:2]
        receipts, sent = [], []
        for uid in uids:
            receipts.append(bench.provision(uid, device.job(world.software)).receipt)
            sent += [answer for _, answer in bench.log]
        slots = [bench.read(uid).slots[12].value for uid in uids]
    keys = [Receipt.from_bytes(r).claims.device_keys for r in receipts]
    assert [[(k.slot, k.name) for k in ks] for ks in keys] == [[(12, "cloud-key")]] * 2
    assert keys[0][0].public_key != keys[1][0].public_key, "two chips made the same device key"
    for scalar, ks in zip(slots, keys, strict=True):
        made = ec.derive_private_key(int.from_bytes(scalar), ec.SECP256R1())
        assert public_key_der(made) == ks[0].public_key
        assert not any(scalar in answer for answer in sent), "a device key left the chip"
    r = _reconcile(world, device.bundle, receipts, uids)
    _only(r, valid=2)
    assert {u: v[1][0][2] for u, v in r.valid.items()} == {
        u: k[0].public_key.hex() for u, k in zip(uids, keys, strict=True)
    }
