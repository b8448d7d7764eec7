"""One error hierarchy, split by cause.

Every error the project raises on purpose derives from `TrustprovError`. Each carries a short
machine-readable ``code`` (recorded per chip by the production line) and a one-line message for a
person. Invariant: no message, code or repr ever contains secret bytes; messages are built from
fixed text, names, sizes and public identifiers only.
"""

from __future__ import annotations


class TrustprovError(Exception):
    """Base of every deliberate trustprov error."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code

    def diagnostics(self) -> str:
        """The one line a person reads."""
        return self.message


class ArtifactError(TrustprovError):
    """An artifact received from a peer is malformed, of the wrong kind, or fails to verify."""

    code = "bad-artifact"


class FormatError(ArtifactError):
    """Bytes that do not parse as the expected artifact (malformed, oversized, wrong kind)."""

    code = "malformed"


class VerificationError(ArtifactError):
    """A signature, MAC or AEAD tag does not verify, or a binding does not match."""

    code = "verification-failed"


class InputError(TrustprovError):
    """Bad input from the user: a missing file, an invalid asset list, a wrong option."""

    code = "bad-input"


class ChipRefused(TrustprovError):
    """A chip refused a command. ``code`` says why (e.g. ``bad-signature``, ``lifecycle``)."""

    code = "refused"


class TransportError(TrustprovError):
    """The link to a chip failed or carried a malformed message."""

    code = "transport"
