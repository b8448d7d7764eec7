"""The whole suite, in the order it runs (docs/protocol.md, "Conformance").

Link and decoder cases first (no software needed), then manufacturing and boot, then the flow:
refusals before the one install they could spoil, the installs (the vector bundle, then an
update), and `lock`, which cannot be undone, last.
"""

from __future__ import annotations

from trustprov.conformance import (
    attest_cases,
    boot_cases,
    deflate_cases,
    flow_cases,
    link_cases,
    rom_cases,
    rule_cases,
    update_cases,
    wire_cases,
)
from trustprov.conformance.suite import Case

_INSTALL = {c.name: c for c in flow_cases.CASES_INSTALL}

CASES: list[Case] = [
    *link_cases.CASES,
    *wire_cases.CASES,
    *rom_cases.CASES,
    *boot_cases.CASES,
    *rom_cases.LATE_CASES,
    *link_cases.LATE_CASES,
    *wire_cases.LATE_CASES,
    *attest_cases.CASES_BEFORE_INSTALL,
    *flow_cases.CASES_BEFORE_INSTALL,
    *rule_cases.CASES,
    *deflate_cases.CASES,
    *update_cases.CASES_BEFORE_INSTALL,
    _INSTALL["fig3.provision"],
    *attest_cases.CASES_INSTALL,  # what the chip holds is the vector bundle, just installed
    _INSTALL["refusal.stale-epoch"],
    *update_cases.CASES_AFTER_INSTALL,
    *deflate_cases.CASES_AFTER_INSTALL,
    *(
        c
        for c in flow_cases.CASES_INSTALL
        if c.name not in ("fig3.provision", "refusal.stale-epoch")
    ),
]
