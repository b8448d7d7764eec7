"""`trustprov chip conformance`, the command a chip maker runs, passes the whole suite on the
virtual chip in every signature suite of protocol.md 5.1 over every kind of port (a
pseudo-terminal, a TCP socket, a board's socket seated through its handler): each pair a fresh
chip on a board of its own (`run_matrix.py`, also `make conformance-matrix`)."""

from __future__ import annotations

import pytest

from trustprov.crypto.keys import SUITES

from .run_matrix import TRANSPORTS, run


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("suite", list(SUITES))
def test_the_whole_suite_passes_in_every_signature_suite_over_every_port(
    suite: str, transport: str
) -> None:
    ok, said = run(suite, transport)
    assert ok, f"{suite} over {transport}: {said}"
