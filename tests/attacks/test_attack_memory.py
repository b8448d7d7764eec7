"""T16b: the CM sends link messages built to cost memory and work, not to be understood: 4 MiB
of empty maps, of empty arrays or of tiny integers (each byte a Python object of ~64 bytes once
decoded), nesting as deep as the bytes allow, a string header claiming 2**63 bytes. The chip
must refuse each as malformed, having spent a few MiB at most, and stay untouched and
retryable; the host tools must refuse the same bytes as a chip's answer (a hostile wire or
board) just as cheaply. Memory is measured with tracemalloc: the peak of what Python allocated
while the message crossed the link and was refused."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trustprov.errors import ChipRefused, TransportError
from trustprov.formats.limits import LIMITS, MiB
from trustprov.link.client import ChipClient

from .attack_helpers import Artifacts, assert_chip_untouched, powered, report, retry_succeeds

BOUND = 16 * MiB  # what refusing one message may cost, beyond the message itself
N = LIMITS.link_message - 128  # room for the envelope below


def _cm_chunk(data: bytes) -> bytes:
    """A cm.chunk request whose "data" is ``data``, encoded as is (not re-encoded)."""
    return b"\xa2bop" + b"hcm.chunk" + b"dargs" + b"\xa2ddata" + data + b"dnext" + b"\x40"


def _flood(item: bytes) -> bytes:
    """N small items, in arrays of 23 inside one array: no single count gives it away."""
    groups = N // 24
    return b"\x9a" + groups.to_bytes(4, "big") + (b"\x97" + item * 23) * groups


def _answer(data: bytes) -> bytes:
    return b"\xa1bok" + b"\xa1fstatus" + data


HOSTILE: dict[str, bytes] = {
    "empty maps": _flood(b"\xa0"),
    "empty arrays": _flood(b"\x80"),
    "tiny ints": _flood(b"\x00"),
    "empty maps under one count": b"\x9a" + N.to_bytes(4, "big") + b"\xa0" * N,
    "deep nesting": b"\x81" * N + b"\x00",
    "a bstr of 2**63 bytes": b"\x5b" + (2**63).to_bytes(8, "big") + b"\x00" * 64,
}


def _peak(action: Callable[[], Any]) -> tuple[BaseException, int]:
    tracemalloc.start()
    try:
        try:
            action()
        except (ChipRefused, TransportError) as e:
            return e, tracemalloc.get_traced_memory()[1]
        pytest.fail("the hostile message was accepted")
    finally:
        tracemalloc.stop()


class _HostileWire:
    """A link whose chip (or wire) answers every request with the same bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def exchange(self, request: bytes) -> bytes:  # noqa: ARG002 - the same answer to any request
        return self.answer


def test_attack_link_messages_built_to_exhaust_memory_are_refused_cheaply(
    world: Any, cm_farm: Path, artifacts: Artifacts
) -> None:
    uid = world.cm_uids(cm_farm)[0]
    costs: dict[str, str] = {}
    with powered(cm_farm, uid, artifacts.image) as client:
        for name, inner in HOSTILE.items():
            request = _cm_chunk(inner)
            assert len(request) <= LIMITS.link_message, name
            error, peak = _peak(lambda r=request: client.send(r))  # type: ignore[misc]
            assert peak < BOUND, f"chip: {name}: {peak / MiB:.0f} MiB to refuse"
            assert isinstance(error, ChipRefused), name
            assert error.code == "malformed", (name, error.code, error.message)
            costs[f"chip {name}"] = f"{peak // 1024}KiB"
            # the host reading the same bytes as a chip's answer
            host = ChipClient(_HostileWire(_answer(inner)))
            error, peak = _peak(host.status)
            assert isinstance(error, TransportError), name
            assert peak < BOUND, f"host: {name}: {peak / MiB:.0f} MiB to refuse"
            costs[f"host {name}"] = f"{peak // 1024}KiB"
        client.status()  # the session survives: the chip still answers
    report("memory-exhausting link messages", **costs)
    assert_chip_untouched(cm_farm, uid)
    retry_succeeds(world, cm_farm, uid)
