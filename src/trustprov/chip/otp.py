"""The OTP rule of a chip in the farm, written once: a chip's lifecycle, security counter and
provisioning counter only advance, as one-time-programmable fuses do.

Invariants:
- `OTP_GUARD` is the rule in SQL (each stored value at most the new one, the new ones given in
  `otp_values` order); `check_advances` is the same rule for a state held in memory. A write
  that breaks it is refused with `ChipRefused` code "lifecycle" (`otp_refused`), never applied.
"""

from __future__ import annotations

from trustprov.chip.model import ChipState
from trustprov.errors import ChipRefused

OTP_GUARD = "lifecycle <= ? AND security_counter <= ? AND prov_counter <= ?"


def otp_values(state: ChipState) -> tuple[int, int, int]:
    return int(state.lifecycle), state.security_counter, state.prov_counter


def otp_refused() -> ChipRefused:
    return ChipRefused("the lifecycle and the counters only advance", code="lifecycle")


def check_advances(old: ChipState, new: ChipState) -> None:
    if any(n < o for n, o in zip(otp_values(new), otp_values(old), strict=True)):
        raise otp_refused()
