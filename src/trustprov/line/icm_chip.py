"""One chip of the ICM's line over the wire, taken from what it reports and from its records'
row to ``made`` (docs/protocol.md 13.6): burned, its identity made on chip, certified, and its
attestation checked. line/icm_line.py runs the lot's chips through it.

Invariants (each chip is driven by what it reports first, `rom.status` and `rom.identity`, and by
its row in the records store, `line.records.icm_chips`, so a run that died anywhere resumes):
- a chip of another family, of another fab lot than ``lot`` (the lot its receipts will
  carry), or burned with this family but not by this lot (no ``started`` row), is recorded
  ``skipped`` and sent nothing more: it is never burned twice;
- ``started`` is committed before ``rom.burn``; the certificate is committed before it is sent;
  a chip whose key is not the one its row certifies is skipped (``identity-mismatch``), never
  certified again: no UID gets two certificates;
- a chip is ``made`` only once it holds its certificate and has signed a fresh challenge
  (`rom.attest`) under the certified key, naming its UID;
- a transport error (a dropped, corrupted or cut frame, a power cut) is retried from the chip's
  status, up to ``attempts`` times, then the chip is ``failed``; a board that refuses the
  line's token ends the run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustprov.errors import (
    ChipRefused,
    FormatError,
    TransportError,
    TrustprovError,
    VerificationError,
)
from trustprov.formats.attestation import CHALLENGE_LEN, Attestation
from trustprov.line.records.icm_chips import IcmRecords
from trustprov.line.wire_socket import LinkOpener
from trustprov.link import messages
from trustprov.link.client import ChipClient
from trustprov.link.handler import BoardClient
from trustprov.roles.icm import Icm
from trustprov.roles.icm.certs import certify, lot_template
from trustprov.roles.icm.family import utc_now


@dataclass(frozen=True)
class ChipAt:
    """Where one chip is reached: a board's socket (``board``, ``socket``) or a bare port."""

    address: str
    uid: bytes | None = None
    board: str | None = None
    socket: int | None = None


class _Skip(Exception):  # an outcome, not an error
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class IcmLine:
    def __init__(
        self,
        icm: Icm,
        lot: str,
        records: IcmRecords,
        *,
        open_link: LinkOpener,
        board_token: str | None,
        on_chip: Callable[[bytes, str], None] | None,
        attempts: int,
    ) -> None:
        self.icm = icm
        self.lot = lot
        self.records = records
        self._open_link = open_link
        self._token = board_token
        self._on_chip = on_chip
        self._attempts = attempts
        self._template = lot_template(icm, utc_now())
        self._burn = messages.encode_request("rom.burn", {"image": icm.immutable.to_bytes()})

    # -- one chip, with retries ----------------------------------------------------------------
    def chip(self, at: ChipAt) -> tuple[bytes | None, str, str | None]:
        """(uid, "made" / "made-before" / "skipped" / "failed", reason)."""
        last: TrustprovError | None = None
        uid = at.uid
        for _ in range(self._attempts):
            try:
                with self._seated(at) as chip:
                    uid = self._make(chip, at.uid)
                    return uid, "made", None
            except _Skip as s:
                if s.reason == "made-before":
                    return uid, "made-before", None
                if uid is not None:
                    self.records.note(uid, self.lot, "skipped", s.reason, detail=s.detail)
                return uid, "skipped", s.reason
            except ChipRefused as e:  # a refusal of the chip's own, at a step not foreseen
                if uid is not None:
                    self.records.note(uid, self.lot, "skipped", e.code, detail=e.message)
                return uid, "skipped", e.code
            except TransportError as e:
                if e.code == "unauthorized":
                    raise
                last = e  # the chip's status tells where to take it up again
        code = last.code if last is not None else "transport"
        if uid is not None:
            self.records.note(uid, self.lot, "failed", code, detail=str(last))
        return uid, "failed", code

    @contextlib.contextmanager
    def _seated(self, at: ChipAt) -> Any:
        board = None
        if at.board is not None and at.socket is not None and at.uid is not None:
            board = BoardClient(at.board, token=self._token)
            board.insert(at.socket, at.uid, replace=True)  # a reseat is a power cycle
        try:
            link = self._open_link(at.address)
            try:
                yield ChipClient(link)
            finally:
                with contextlib.suppress(Exception):
                    link.close()
        finally:
            if board is not None:
                with contextlib.suppress(TransportError):
                    board.remove(at.socket)  # type: ignore[arg-type]  # checked above
                board.close()

    # -- the steps, each taken up from what the chip and the records say -------------------------
    def _identify(self, chip: ChipClient, expected: bytes | None) -> tuple[bytes, bytes | None]:
        """The chip's UID and family from its status, if it is a chip of this lot's making."""
        status = chip.status()
        uid, family = status.get("uid"), status.get("family")
        if not isinstance(uid, bytes) or len(uid) != 16:
            raise TransportError("the chip's status has no UID")
        if expected is not None and uid != expected:
            raise TransportError(f"the board seated chip {uid.hex()}", code="misplaced")
        if family is not None and family != self.icm.family_id:
            raise _Skip("other-family", f"chip {uid.hex()} is of family {family.hex()}")
        if status.get("lot") != self.lot:  # the fab's lot is for life, and in every receipt
            raise _Skip("fab-lot", f"chip {uid.hex()} is of the fab's lot {status.get('lot')!r}")
        return uid, family

    def _make(self, chip: ChipClient, expected: bytes | None) -> bytes:
        uid, family = self._identify(chip, expected)
        row = self.records.get(uid)
        ours = row is not None and row.lot == self.lot and row.state in ("started", "made")
        if row is not None and row.state in ("started", "made") and row.lot != self.lot:
            raise _Skip("other-lot", f"chip {uid.hex()} is of the ICM's lot {row.lot}")
        if family is not None and row is not None and ours and row.state == "made":
            raise _Skip("made-before", f"chip {uid.hex()} was made by this lot before")
        if family is None:
            if row is not None and row.state == "made":
                raise _Skip("inconsistent", f"chip {uid.hex()} was made but reports blank")
            if not ours:
                self.records.start(uid, self.lot, self.icm.family_id)
            try:
                chip.send(self._burn)
            except ChipRefused as e:  # its first answer was lost: it is burned now
                if e.code != "immutable-written":
                    raise _Skip(e.code, e.message) from e
        elif not ours:
            raise _Skip("already-burned", f"chip {uid.hex()} was burned, not by lot {self.lot}")
        der = self._certified(chip, uid)
        self._check_attestation(chip, uid, der)
        seq = self.records.made(uid, self.lot)
        if self._on_chip is not None:
            self._on_chip(uid, f"#{seq}")
        return uid

    def _certified(self, chip: ChipClient, uid: bytes) -> bytes:
        """The chip's certificate, issued once and stored on the chip (invariant 3)."""
        identity = chip.call("rom.identity")
        on_chip = identity.get("certificate")
        row = self.records.get(uid)
        assert row is not None  # noqa: S101 - started above
        if isinstance(on_chip, bytes):
            if row.certificate != on_chip:
                raise _Skip("foreign-certificate", f"chip {uid.hex()} holds another certificate")
            return on_chip
        public = identity.get("public-key")
        if not isinstance(public, bytes):
            try:
                public = chip.make_identity()
            except ChipRefused as e:
                if e.code != "identity-exists":
                    raise _Skip(e.code, e.message) from e
                if row.public_key is None:  # a chip that cannot say its key, answer lost
                    raise _Skip(
                        "identity-lost", f"chip {uid.hex()} made its key; it cannot say which"
                    ) from e
                public = row.public_key
        if row.certificate is not None:
            if row.public_key != public:
                raise _Skip(
                    "identity-mismatch",
                    f"chip {uid.hex()} holds another key than the one certified for it",
                )
            der = row.certificate
        else:
            try:
                cert = certify(self.icm, self._template, uid, public)
            except FormatError as e:
                raise _Skip("bad-identity", e.message) from e
            der = cert.public_bytes(serialization.Encoding.DER)
            self.records.certify(uid, public, der)
        try:
            chip.store_certificate(der)
        except ChipRefused as e:
            if e.code != "lifecycle" or chip.certificate() != der:  # stored; its answer lost
                raise _Skip(e.code, e.message) from e
        return der

    def _check_attestation(self, chip: ChipClient, uid: bytes, der: bytes) -> None:
        challenge = os.urandom(CHALLENGE_LEN)
        key = x509.load_der_x509_certificate(der).public_key()
        try:
            token = Attestation.from_bytes(chip.attest(challenge))
            token.verify(key, challenge)  # type: ignore[arg-type]  # P-256, checked by certify
        except (FormatError, VerificationError, ChipRefused) as e:
            raise _Skip("bad-attestation", f"chip {uid.hex()}: {e}") from e
        if token.claims.uid != uid:
            raise _Skip("misplaced", f"the chip seated as {uid.hex()} signs as another")
