"""Access tokens: what a chip board's handler requires of a connection beyond loopback
(docs/protocol.md 13.1). A token is a shared secret of 16 to 128 printable ASCII characters, no
space; it is read from a file or the environment, never from a command line (which any local
user reads in ``ps``), compared in constant time, and never shown in a log, an error or a repr.
"""

from __future__ import annotations

import hmac

from trustprov.errors import InputError

TOKEN_MIN = 16
TOKEN_MAX = 128
BOARD_TOKEN_ENV = "TRUSTPROV_BOARD_TOKEN"  # noqa: S105 - the variable's name, not a token
LOOPBACK = frozenset({"127.0.0.1", "::1"})


def needs_token(host: str) -> bool:
    """Whether a server bound to ``host`` must have a token: any address but the loopback's,
    exactly (the bind address the operator chose, not who can route to it)."""
    return host not in LOOPBACK


def check_token(token: str, what: str = "a board token") -> str:
    """``token`` if it has the shape of one; `InputError` (which never quotes it) else."""
    if not TOKEN_MIN <= len(token) <= TOKEN_MAX or not all(33 <= ord(c) < 127 for c in token):
        raise InputError(
            f"{what} must be {TOKEN_MIN} to {TOKEN_MAX} printable ASCII characters, no space"
        )
    return token


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the expected one."""
    return hmac.compare_digest(given.encode(), expected.encode())
