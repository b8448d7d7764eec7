"""Faults a board puts on its wires: the CM owns the wire, and tests prove the link survives it.

Grammar of ``--faults SPEC`` (docs/protocol.md, "Chip board: faults")::

    SPEC     = ITEM *("," ITEM)
    ITEM     = NAME "=" PROB [":" DURATION]  /  "seed=" INT
    NAME     = "drop" / "corrupt" / "dup" / "delay" / "reorder" / "cut" / "powercut" / "misplace"
             / "lie"
    PROB     = a decimal number in [0, 1]
    DURATION = INT ("ms" / "s")              (delay only; default 20ms)

A *unit* is what one side put on the wire at once: the bytes the host wrote in one write (one
frame, or the frames of a window sent together) or the bytes a chip answered to one input. Each
unit, in each direction, is independently dropped, corrupted (one bit flipped), duplicated,
delayed by DURATION, held back behind the next unit (reorder), or cut (its first half sent, then
the connection closed: a cable pulled mid-frame). ``powercut`` is per chip placed in a socket: it
arms a power cycle after a random number of input bytes, so it lands mid-message, mid-chunk.
``misplace`` is per insertion too: the board puts another chip of the farm in the socket than
the one asked for (an operator's slip the station must catch). ``lie`` is per insertion: the
board rewrites the chip's answers to ``rom.status`` to say it is the chip asked for (a dishonest
board or programmer, which with ``misplace`` hides the swap from any unsigned answer: only what
the chip signs exposes it). ``seed`` makes a run repeatable.

Invariant: the spec is parsed completely before a board starts; any error is one `InputError`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields

from trustprov.errors import InputError

MAX_SPEC = 512
DEFAULT_DELAY = 0.020
POWERCUT_MAX_BYTES = 32_768  # a power cut lands within the first this many bytes of a session
_DURATION = re.compile(r"([0-9]{1,6})(ms|s)")
_PROB = re.compile(r"(0|1|0?\.[0-9]{1,9}|1\.0{1,9}|0\.0{0,9})")


@dataclass(frozen=True)
class Faults:
    drop: float = 0.0
    corrupt: float = 0.0
    dup: float = 0.0
    delay: float = 0.0
    delay_s: float = DEFAULT_DELAY
    reorder: float = 0.0
    cut: float = 0.0
    powercut: float = 0.0
    misplace: float = 0.0
    lie: float = 0.0
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        if not spec:
            return cls()
        if len(spec) > MAX_SPEC:
            raise InputError(f"--faults: at most {MAX_SPEC} characters")
        names = {f.name for f in fields(cls)} - {"delay_s", "seed"}
        values: dict[str, float] = {}
        seed: int | None = None
        for item in spec.split(","):
            name, sep, value = item.strip().partition("=")
            if not sep or name in values or (name == "seed" and seed is not None):
                raise InputError(f"--faults: {item!r} is not NAME=VALUE (or is repeated)")
            if name == "seed":
                if not value.isdigit() or len(value) > 18:
                    raise InputError("--faults: seed must be a non-negative integer")
                seed = int(value)
                continue
            if name not in names:
                raise InputError(f"--faults: unknown fault {name!r} (one of {sorted(names)})")
            prob, colon, duration = value.partition(":")
            if not _PROB.fullmatch(prob):
                raise InputError(f"--faults: {name} needs a probability in [0, 1], not {prob!r}")
            values[name] = float(prob)
            if colon:
                m = _DURATION.fullmatch(duration)
                if name != "delay" or m is None:
                    raise InputError(f"--faults: {item!r}: only delay takes a duration (20ms, 1s)")
                values["delay_s"] = int(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        return cls(
            drop=values.get("drop", 0.0),
            corrupt=values.get("corrupt", 0.0),
            dup=values.get("dup", 0.0),
            delay=values.get("delay", 0.0),
            delay_s=values.get("delay_s", DEFAULT_DELAY),
            reorder=values.get("reorder", 0.0),
            cut=values.get("cut", 0.0),
            powercut=values.get("powercut", 0.0),
            misplace=values.get("misplace", 0.0),
            lie=values.get("lie", 0.0),
            seed=seed,
        )

    @property
    def any_frame_fault(self) -> bool:
        return any((self.drop, self.corrupt, self.dup, self.delay, self.reorder, self.cut))


@dataclass(frozen=True)
class Verdict:
    """What happens to one unit on the wire."""

    drop: bool = False
    corrupt_bit: int | None = None  # index of the bit flipped
    dup: bool = False
    delay: float = 0.0
    reorder: bool = False
    cut: bool = False


CLEAN = Verdict()


class FaultDice:
    """The random draws of one board; one instance per board, used by its one loop thread."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)  # noqa: S311 - fault injection, not security

    def unit(self, length: int) -> Verdict:
        f, r = self.faults, self._rng
        if not f.any_frame_fault or length == 0:
            return CLEAN
        if r.random() < f.cut:
            return Verdict(cut=True)
        if r.random() < f.drop:
            return Verdict(drop=True)
        return Verdict(
            corrupt_bit=r.randrange(length * 8) if r.random() < f.corrupt else None,
            dup=r.random() < f.dup,
            delay=f.delay_s if r.random() < f.delay else 0.0,
            reorder=r.random() < f.reorder,
        )

    def powercut_after(self) -> int | None:
        """Bytes of input after which a newly placed chip loses power, or None."""
        if self.faults.powercut and self._rng.random() < self.faults.powercut:
            return self._rng.randrange(1, POWERCUT_MAX_BYTES)
        return None

    def misplace(self) -> bool:
        return bool(self.faults.misplace) and self._rng.random() < self.faults.misplace

    def lie(self) -> bool:
        return bool(self.faults.lie) and self._rng.random() < self.faults.lie


def apply_corruption(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)
