"""The provisioning software's command interface ([0034]): the whole of it, and nothing else.

Every command is driven directly on booted firmware (`ProvisioningSoftware.handle`), so a bad
argument must come back as `ChipRefused` itself, not as any other exception that the port would
have to mask as "internal".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import Bench, assert_untouched, world_job

from trustprov.chip.model import Lifecycle
from trustprov.errors import ChipRefused
from trustprov.firmware.commands import ProvisioningSoftware
from trustprov.formats import cose
from trustprov.formats.sealed import H_VALUE, SealedValue
from trustprov.link import messages
from trustprov.roles.cm import Job

PARAMS = {"epoch": 1, "min-svn": 1, "aead": 3, "chunk-size": 16384}
COMMANDS = {
    "oem.keygen",
    "oem.regen",
    "seal.asset",
    "seal.chunk",
    "seal.generate",
    "seal.finish",
    "cm.begin",
    "cm.chunk",
    "cm.finish",
    "lock",
}


@dataclass
class Rig:
    bench: Bench
    job: Job
    image: bytes
    share: bytes
    manifest: bytes
    kept_input: bytes
    kept_rnd: bytes

    @property
    def uids(self) -> list[bytes]:
        return self.bench.uids()

    def booted(self, uid: bytes | None = None) -> ProvisioningSoftware:
        return self.bench.software(uid or self.uids[0], self.image)

    def sealing(self) -> ProvisioningSoftware:
        sw = self.booted()
        sw.handle("oem.keygen", {"oem-rnd-input": bytes(range(32)), "bundle": dict(PARAMS)})
        return sw

    def asset_open(self) -> ProvisioningSoftware:
        sw = self.sealing()
        sw.handle("seal.asset", {"name": "a", "kind": "firmware", "length": 1000, "region": "r"})
        return sw

    def asset_done(self) -> ProvisioningSoftware:
        sw = self.sealing()
        sw.handle("seal.generate", {"name": "g", "key-type": "ec-p256", "slot": 9})
        return sw

    def provisioning(self, uid: bytes | None = None) -> ProvisioningSoftware:
        sw = self.booted(uid)
        sw.handle("cm.begin", {"enc-oem-share": self.share, "manifest": self.manifest})
        return sw

    def chunk_args(self) -> list[dict[str, Any]]:
        return [messages.decode_request(r)[1] for r in self.job.prepared.chunks]

    def all_chunks(self, uid: bytes | None = None) -> ProvisioningSoftware:
        sw = self.provisioning(uid)
        for args in self.chunk_args():
            sw.handle("cm.chunk", args)
        return sw

    def provisioned(self) -> ProvisioningSoftware:
        uid = self.uids[-1]
        if self.bench.read(uid).lifecycle == Lifecycle.MANUFACTURED:
            assert self.bench.provision(uid, self.job).result == "provisioned"
        return self.booted(uid)


@pytest.fixture
def rig(world: Any, cm_farm: Path) -> Iterator[Rig]:
    job = world_job(world)
    with Bench(cm_farm) as bench:
        yield Rig(
            bench=bench,
            job=job,
            image=job.image,
            share=world.share.read_bytes(),
            manifest=messages.decode_request(job.prepared.begin)[1]["manifest"],
            kept_input=(world.oem_dir / "enc-oem-rnd-input.cose").read_bytes(),
            kept_rnd=(world.oem_dir / "enc-rnd-share.cose").read_bytes(),
        )


def _refused(sw: ProvisioningSoftware, op: str, args: Any) -> str:
    with pytest.raises(ChipRefused) as e:
        sw.handle(op, args)
    return e.value.code


# -- the interface -------------------------------------------------------------------------------
def test_the_command_set_is_exactly_the_documented_one(rig: Rig) -> None:
    assert set(rig.booted().commands) == COMMANDS


def test_unknown_command_is_refused(rig: Rig) -> None:
    for op in ("nope", "oem.export", "seal.key", "cm.read", "rom.read", "", "lock "):
        assert _refused(rig.booted(), op, {}) == "unknown-command"


# -- every command refuses bad arguments with ChipRefused, never another exception ---------------
_WRONG = [None, True, 1.5, [], "text", b"bytes", -1, 2**64, {}]
HUGE = 2**20000


def _wrong_values(valid: Any) -> Iterator[tuple[str, Any]]:
    for bad in _WRONG:
        same_type = type(bad) is type(valid)
        out_of_range = isinstance(valid, int) and bad in (-1, 2**64) and type(bad) is int
        if same_type and not out_of_range and not (isinstance(valid, dict) and bad == {}):
            continue
        yield repr(bad)[:12], bad


def _mutations(args: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for label, bad in (("None", None), ("list", [1]), ("bytes", b"x"), ("text", "x"), ("int", 1)):
        yield f"args={label}", bad
    yield "unknown field", {**args, "bogus": 1}
    for key, value in args.items():
        yield f"without {key}", {k: v for k, v in args.items() if k != key}
        for label, bad in _wrong_values(value):
            yield f"{key}={label}", {**args, key: bad}
        if isinstance(value, dict):
            for label, bad in _mutations(value):
                if not label.startswith("args="):
                    yield f"{key}.{label}", {**args, key: bad}


def _cases(rig: Rig) -> dict[str, tuple[Callable[[], ProvisioningSoftware], str, dict[str, Any]]]:
    return {
        "oem.keygen": (
            rig.booted,
            "oem.keygen",
            {"oem-rnd-input": bytes(range(32)), "bundle": dict(PARAMS)},
        ),
        "oem.regen": (
            rig.booted,
            "oem.regen",
            {
                "enc-oem-rnd-input": rig.kept_input,
                "enc-rnd-share": rig.kept_rnd,
                "bundle": dict(PARAMS),
            },
        ),
        "seal.asset (data)": (
            rig.sealing,
            "seal.asset",
            {"name": "a", "kind": "firmware", "length": 1000, "region": "r"},
        ),
        "seal.asset (key)": (
            rig.sealing,
            "seal.asset",
            {"name": "k", "kind": "key", "length": 32, "key-type": "aes-256", "slot": 3},
        ),
        "seal.chunk": (rig.asset_open, "seal.chunk", {"index": 0, "data": bytes(1000)}),
        "seal.generate": (
            rig.sealing,
            "seal.generate",
            {"name": "g", "key-type": "ec-p256", "slot": 9},
        ),
        "seal.finish": (rig.asset_done, "seal.finish", {}),
        "cm.begin": (
            rig.booted,
            "cm.begin",
            {"enc-oem-share": rig.share, "manifest": rig.manifest},
        ),
        "cm.chunk": (rig.provisioning, "cm.chunk", rig.chunk_args()[0]),
        "cm.finish": (rig.all_chunks, "cm.finish", {}),
        "lock": (rig.provisioned, "lock", {}),
    }


CASE_NAMES = [
    "oem.keygen",
    "oem.regen",
    "seal.asset (data)",
    "seal.asset (key)",
    "seal.chunk",
    "seal.generate",
    "seal.finish",
    "cm.begin",
    "cm.chunk",
    "cm.finish",
    "lock",
]


def test_the_cases_cover_every_command(rig: Rig) -> None:
    assert {op for _, op, _ in _cases(rig).values()} == COMMANDS
    assert sorted(_cases(rig)) == sorted(CASE_NAMES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_the_valid_call_of_each_case_is_accepted(rig: Rig, case: str) -> None:
    state, op, args = _cases(rig)[case]
    assert isinstance(state().handle(op, args), dict)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_every_command_refuses_bad_arguments_with_chip_refused(rig: Rig, case: str) -> None:
    state, op, args = _cases(rig)[case]
    state()  # the first boot advances the security counter: snapshot after it
    before = {uid: rig.bench.read(uid) for uid in rig.uids}
    accepted, other = [], []
    tried = 0
    for label, bad in _mutations(args):
        sw = state()
        tried += 1
        try:
            sw.handle(op, bad)
        except ChipRefused:
            pass
        except Exception as e:  # noqa: BLE001 - exactly what this test looks for
            other.append(f"{label}: {type(e).__name__}: {e}")
        else:
            accepted.append(label)
        # a refused command changes nothing persistent (lock and provisioning included)
        after = {uid: rig.bench.read(uid) for uid in rig.uids}
        changed = [uid.hex() for uid in rig.uids if after[uid] != before[uid]]
        assert not changed, f"{label}: chips changed {changed}"
    assert tried >= 6
    assert not other, f"{op}: bad arguments raised other exceptions: {other}"
    assert not accepted, f"{op}: bad arguments accepted: {accepted}"


def test_an_unknown_huge_integer_field_is_refused_with_chip_refused(rig: Rig) -> None:
    """A CBOR bignum key whose decimal form exceeds Python's 4300-digit limit: every command's
    argument check must refuse it like any unknown field, not fail turning it into text."""
    other = {}
    for case, (state, op, args) in _cases(rig).items():
        sw = state()
        try:
            sw.handle(op, {**args, HUGE: 1})
        except ChipRefused:
            continue
        except Exception as e:  # noqa: BLE001 - exactly what this test looks for
            other[case] = type(e).__name__
        else:
            other[case] = "accepted"
    assert not other, other


def test_an_unknown_huge_integer_field_inside_the_bundle_parameters_is_refused(rig: Rig) -> None:
    args = {"oem-rnd-input": bytes(32), "bundle": {**PARAMS, HUGE: 1}}
    assert _refused(rig.booted(), "oem.keygen", args) == "bad-request"


# -- bad values of the right type ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"oem-rnd-input": b""}, "bad-request"),
        ({"oem-rnd-input": bytes(15)}, "bad-request"),
        ({"oem-rnd-input": bytes(17)}, "bad-request"),
        ({"oem-rnd-input": bytes(31)}, "bad-request"),
        ({"oem-rnd-input": bytes(33)}, "bad-request"),
        ({"oem-rnd-input": bytes(64)}, "bad-request"),
        ({"bundle": {**PARAMS, "aead": 1}}, "bad-request"),
        ({"bundle": {**PARAMS, "aead": 0}}, "bad-request"),
        ({"bundle": {**PARAMS, "chunk-size": 0}}, "bad-request"),
        ({"bundle": {**PARAMS, "chunk-size": 255}}, "bad-request"),
        ({"bundle": {**PARAMS, "chunk-size": 65537}}, "bad-request"),
        ({"bundle": {**PARAMS, "aead": 31, "chunk-size": 65536}}, "bad-request"),
        ({"bundle": {**PARAMS, "epoch": 2**32}}, "bad-request"),
        ({"bundle": {**PARAMS, "min-svn": 2**32}}, "bad-request"),
    ],
)
def test_keygen_refuses_bad_values(rig: Rig, change: dict[str, Any], code: str) -> None:
    args = {"oem-rnd-input": bytes(32), "bundle": dict(PARAMS), **change}
    assert _refused(rig.booted(), "oem.keygen", args) == code


DATA = {"name": "a", "kind": "firmware", "length": 1000, "region": "r"}
KEY = {"name": "k", "kind": "key", "length": 32, "key-type": "aes-256", "slot": 3}


@pytest.mark.parametrize(
    "args",
    [
        {**DATA, "kind": "bogus"},
        {**DATA, "kind": "generate"},
        {**DATA, "kind": "Key"},
        {**DATA, "kind": ""},
    ],
    ids=["bogus", "generate", "Key", "empty"],
)
def test_seal_asset_refuses_an_unknown_kind(rig: Rig, args: dict[str, Any]) -> None:
    """Only key, certificate, firmware and config are sealed kinds (protocol.md 6.1)."""
    assert _refused(rig.sealing(), "seal.asset", args) == "bad-request"


@pytest.mark.parametrize(
    "args",
    [
        {**DATA, "name": ""},
        {**DATA, "name": "x" * 65},
        {**DATA, "name": "a\nb"},
        {**DATA, "region": ""},
        {**DATA, "region": "r" * 65},
        {**DATA, "length": 0},
        {**DATA, "length": 2**40 + 1},
        {**KEY, "key-type": "rsa-2048"},
        {**KEY, "length": 16},
        {**KEY, "key-type": "ec-p384"},  # 48 bytes, not 32
        {**KEY, "slot": 256},
        {**KEY, "key-type": "raw", "length": 20},
    ],
)
def test_seal_asset_refuses_bad_values(rig: Rig, args: dict[str, Any]) -> None:
    assert _refused(rig.sealing(), "seal.asset", args) == "bad-request"


def test_seal_asset_refuses_a_name_used_twice(rig: Rig) -> None:
    sw = rig.sealing()
    sw.handle("seal.generate", {"name": "a", "key-type": "ec-p256", "slot": 9})
    assert _refused(sw, "seal.asset", DATA) == "bad-request"


@pytest.mark.parametrize(
    "args",
    [
        {"name": "g", "key-type": "raw", "slot": 9},
        {"name": "g", "key-type": "rsa-2048", "slot": 9},
        {"name": "g", "key-type": "aes-128", "slot": 9},
        {"name": "g", "key-type": "ec-p256", "slot": 256},
        {"name": "", "key-type": "ec-p256", "slot": 9},
    ],
)
def test_seal_generate_refuses_bad_values(rig: Rig, args: dict[str, Any]) -> None:
    assert _refused(rig.sealing(), "seal.generate", args) == "bad-request"


def test_seal_chunks_come_last_to_first_with_their_exact_length(rig: Rig) -> None:
    sw = rig.sealing()
    sw.handle("seal.asset", {"name": "a", "kind": "firmware", "length": 20000, "region": "r"})
    assert _refused(sw, "seal.chunk", {"index": 0, "data": bytes(16384)}) == "bad-sequence"
    sw = rig.sealing()
    sw.handle("seal.asset", {"name": "a", "kind": "firmware", "length": 20000, "region": "r"})
    assert _refused(sw, "seal.chunk", {"index": 1, "data": bytes(3615)}) == "bad-request"
    sw = rig.sealing()
    sw.handle("seal.asset", {"name": "a", "kind": "firmware", "length": 20000, "region": "r"})
    sw.handle("seal.chunk", {"index": 1, "data": bytes(3616)})
    sw.handle("seal.chunk", {"index": 0, "data": bytes(16384)})
    assert _refused(sw, "seal.chunk", {"index": 0, "data": bytes(16384)}) == "bad-sequence"


def test_seal_finish_refuses_an_incomplete_or_inconsistent_bundle(rig: Rig) -> None:
    assert _refused(rig.sealing(), "seal.finish", {}) == "bad-sequence"  # nothing sealed
    assert _refused(rig.asset_open(), "seal.finish", {}) == "bad-sequence"  # asset open
    sw = rig.sealing()  # two keys for one slot
    sw.handle("seal.generate", {"name": "g1", "key-type": "ec-p256", "slot": 9})
    sw.handle("seal.generate", {"name": "g2", "key-type": "ec-p256", "slot": 9})
    assert _refused(sw, "seal.finish", {}) == "bad-request"


# -- sessions ------------------------------------------------------------------------------------
SEAL_CALLS = [
    ("seal.asset", DATA),
    ("seal.chunk", {"index": 0, "data": bytes(1000)}),
    ("seal.generate", {"name": "g", "key-type": "ec-p256", "slot": 9}),
    ("seal.finish", {}),
]


@pytest.mark.parametrize(("op", "args"), SEAL_CALLS, ids=[op for op, _ in SEAL_CALLS])
def test_seal_commands_without_a_sealing_session_are_refused(
    rig: Rig, op: str, args: dict[str, Any]
) -> None:
    assert _refused(rig.booted(), op, args) == "bad-sequence"  # nothing opened
    sw = rig.asset_done()
    sw.handle("seal.finish", {})
    assert _refused(sw, op, args) == "bad-sequence"  # the session ended with the manifest
    assert _refused(rig.provisioning(), op, args) == "bad-sequence"  # a CM session is no sealing


def test_a_failure_ends_the_sealing_session(rig: Rig) -> None:
    sw = rig.asset_open()
    assert _refused(sw, "seal.chunk", {"index": 0, "data": bytes(999)}) == "bad-request"
    assert _refused(sw, "seal.chunk", {"index": 0, "data": bytes(1000)}) == "bad-sequence"
    assert _refused(sw, "seal.finish", {}) == "bad-sequence"


def test_a_failure_ends_the_provisioning_session_and_installs_nothing(rig: Rig) -> None:
    uid = rig.uids[0]
    chunks = rig.chunk_args()
    sw = rig.provisioning(uid)
    for args in chunks[:3]:
        sw.handle("cm.chunk", args)
    bad = {**chunks[3], "data": bytes(len(chunks[3]["data"]))}
    assert _refused(sw, "cm.chunk", bad) == "bad-chunk"
    assert _refused(sw, "cm.chunk", chunks[3]) == "bad-sequence"
    assert _refused(sw, "cm.finish", {}) == "bad-sequence"
    assert_untouched(rig.bench.read(uid))
    # the same running software takes the good bundle from the start
    sw.handle("cm.begin", {"enc-oem-share": rig.share, "manifest": rig.manifest})
    for args in chunks:
        sw.handle("cm.chunk", args)
    sw.handle("cm.finish", {})
    assert rig.bench.read(uid).lifecycle == Lifecycle.PROVISIONED


def test_one_session_at_a_time(rig: Rig) -> None:
    begin = {"enc-oem-share": rig.share, "manifest": rig.manifest}
    keygen = {"oem-rnd-input": bytes(32), "bundle": dict(PARAMS)}
    assert _refused(rig.provisioning(), "cm.begin", begin) == "bad-sequence"
    assert _refused(rig.provisioning(), "oem.keygen", keygen) == "bad-sequence"
    assert _refused(rig.sealing(), "cm.begin", begin) == "bad-sequence"
    assert _refused(rig.sealing(), "oem.keygen", keygen) == "bad-sequence"


@pytest.mark.parametrize("cut", [0, 2, 5])
def test_cm_chunks_must_come_in_manifest_order(rig: Rig, cut: int) -> None:
    chunks = rig.chunk_args()
    sw = rig.provisioning()
    for args in chunks[:cut]:
        sw.handle("cm.chunk", args)
    skipped = chunks[cut + 1]
    assert _refused(sw, "cm.chunk", skipped) == "bad-sequence"
    sw = rig.provisioning()
    for args in chunks[:cut]:
        sw.handle("cm.chunk", args)
    assert _refused(sw, "cm.finish", {}) == "incomplete"
    assert_untouched(rig.bench.read(rig.uids[0]))


def test_cm_chunk_after_the_last_is_refused(rig: Rig) -> None:
    sw = rig.all_chunks()
    assert _refused(sw, "cm.chunk", rig.chunk_args()[-1]) == "bad-sequence"
    assert_untouched(rig.bench.read(rig.uids[0]))


# -- property 2: ENC(OEM_SHARE) consumes, never produces -----------------------------------------
def _relabel(sealed: bytes, kind: str) -> bytes:
    """The same ciphertext with its protected header claiming another kind."""
    m = SealedValue.from_bytes(sealed).message
    header = {**m.protected, H_VALUE: kind}
    return cose.CoseMessage(
        m.tag, cose.encode_protected(header), header, m.unprotected, m.body
    ).to_bytes()


def test_the_cm_cannot_open_a_sealing_session_with_enc_oem_share(rig: Rig) -> None:
    share = rig.share
    attempts = {
        "share as both": (share, share),
        "share as enc-rnd-share": (rig.kept_input, share),
        "share as enc-oem-rnd-input": (share, rig.kept_rnd),
        "relabeled share as both": (
            _relabel(share, "oem-rnd-input"),
            _relabel(share, "rnd-share"),
        ),
        "relabeled share as enc-rnd-share": (rig.kept_input, _relabel(share, "rnd-share")),
        "relabeled share as enc-oem-rnd-input": (_relabel(share, "oem-rnd-input"), rig.kept_rnd),
    }
    for label, (enc_input, enc_rnd) in attempts.items():
        sw = rig.booted()
        args = {"enc-oem-rnd-input": enc_input, "enc-rnd-share": enc_rnd, "bundle": dict(PARAMS)}
        assert _refused(sw, "oem.regen", args) == "bad-sealed-value", label
        for op, seal_args in SEAL_CALLS:  # and still no sealing session
            assert _refused(sw, op, seal_args) == "bad-sequence", (label, op)
    # while the OEM's kept pair does open one (the rig is sound)
    sw = rig.booted()
    sw.handle(
        "oem.regen",
        {"enc-oem-rnd-input": rig.kept_input, "enc-rnd-share": rig.kept_rnd, "bundle": PARAMS},
    )
    sw.handle(*SEAL_CALLS[2])


def test_the_kept_values_are_not_interchangeable(rig: Rig) -> None:
    swapped = {
        "enc-oem-rnd-input": rig.kept_rnd,
        "enc-rnd-share": rig.kept_input,
        "bundle": dict(PARAMS),
    }
    assert _refused(rig.booted(), "oem.regen", swapped) == "bad-sealed-value"
    relabeled = {"enc-oem-share": _relabel(rig.kept_rnd, "oem-share"), "manifest": rig.manifest}
    assert _refused(rig.booted(), "cm.begin", relabeled) == "bad-share"


def test_a_provisioning_session_never_seals(rig: Rig) -> None:
    sw = rig.provisioning()
    for op, args in SEAL_CALLS:
        assert _refused(sw, op, args) == "bad-sequence"


# -- lifecycle -----------------------------------------------------------------------------------
def test_lock_only_from_provisioned(rig: Rig) -> None:
    uid = rig.uids[0]
    assert _refused(rig.booted(uid), "lock", {}) == "lifecycle"
    assert rig.bench.read(uid).lifecycle == Lifecycle.MANUFACTURED
    assert rig.bench.provision(uid, rig.job).result == "provisioned"
    assert rig.booted(uid).handle("lock", {}) == {"lifecycle": "LOCKED"}
    assert rig.bench.read(uid).lifecycle == Lifecycle.LOCKED
    assert _refused(rig.booted(uid), "lock", {}) == "lifecycle"
    assert rig.bench.read(uid).lifecycle == Lifecycle.LOCKED


def test_a_locked_chip_refuses_cm_begin(rig: Rig) -> None:
    uid = rig.uids[0]
    assert rig.bench.provision(uid, rig.job).result == "provisioned"
    rig.booted(uid).handle("lock", {})
    before = rig.bench.read(uid)
    begin = {"enc-oem-share": rig.share, "manifest": rig.manifest}
    assert _refused(rig.booted(uid), "cm.begin", begin) == "lifecycle"
    assert rig.bench.read(uid) == before
    assert rig.bench.client(uid).status()["lifecycle"] == "LOCKED"


class _CountingTrng:
    """The system TRNG, counting the bytes drawn."""

    def __init__(self) -> None:
        self.drawn = 0

    def random(self, n: int) -> bytes:
        self.drawn += n
        return os.urandom(n)


# a value no command accepts where a uint or a bstr is due: its check must come after the session's
_BAD = "not a value"
ORDER_CASES = [
    ("sealing", "oem.keygen", {"oem-rnd-input": _BAD, "bundle": _BAD}),
    ("sealing", "oem.regen", {"enc-oem-rnd-input": _BAD, "enc-rnd-share": _BAD, "bundle": _BAD}),
    ("sealing", "cm.begin", {"enc-oem-share": _BAD, "manifest": _BAD}),
    ("sealing", "lock", {}),
    ("booted", "seal.asset", {"name": 1, "kind": 1, "length": _BAD}),
    ("booted", "seal.chunk", {"index": _BAD, "data": _BAD}),
    ("booted", "seal.generate", {"name": 1, "key-type": 1, "slot": _BAD}),
    ("booted", "cm.chunk", {"asset": _BAD, "index": _BAD, "data": _BAD, "next": _BAD}),
]


@pytest.mark.parametrize(("state", "op", "args"), ORDER_CASES, ids=[c[1] for c in ORDER_CASES])
def test_the_session_state_is_checked_before_the_argument_values(
    rig: Rig, state: str, op: str, args: dict[str, Any]
) -> None:
    """protocol.md 8.3: names, then session state, then values; a refusal draws no TRNG byte."""
    trng = _CountingTrng()
    sw = rig.bench.software(rig.uids[0], rig.image, trng=trng)
    if state == "sealing":
        sw.handle("oem.keygen", {"oem-rnd-input": bytes(32), "bundle": dict(PARAMS)})
    drawn = trng.drawn
    assert _refused(sw, op, args) == "bad-sequence"
    assert trng.drawn == drawn
