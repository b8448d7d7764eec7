"""The whole suite, in the order it runs (docs/protocol.md, "Conformance")."""

from __future__ import annotations

from trustprov.conformance import attest_cases, boot_cases, flow_cases, link_cases
from trustprov.conformance.suite import Case

CASES: list[Case] = [
    *link_cases.CASES,
    *boot_cases.CASES,
    *link_cases.LATE_CASES,
    *attest_cases.CASES_BEFORE_INSTALL,
    *flow_cases.CASES_BEFORE_INSTALL,
    *flow_cases.CASES_INSTALL[:1],  # fig3.provision
    *attest_cases.CASES_INSTALL,
    *flow_cases.CASES_INSTALL[1:],
]
