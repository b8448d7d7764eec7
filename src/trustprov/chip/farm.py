"""A lot of chips in one SQLite file (the chip farm).

Layout: one row per chip; the immutable memory image once per family (every chip of a family
holds the same one); flash contents once per distinct blob, so a firmware image installed on a
million chips is stored once; and the installed state (slots, regions) once per distinct state,
which every chip provisioned with the same bundle shares, so a chip's own row is little more
than its identity. Every chip write is one transaction: a chip's persistent state moves from one
consistent state to the next or not at all, as flash with an atomic commit would. A chip's
lifecycle, security counter and provisioning counter are OTP: no write lowers them (`save`
refuses it; the rule is written once, in chip/otp.py). The file itself, its schema, how it is
opened and its write lock, is chip/farm_file.py; this module keeps the chips in it and its caches.

Reading this file is reading silicon: it holds every chip's immutable memory and key slots, and
stands in for the physical chips at the CM. See docs/threat-model.md.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from trustprov.chip.farm_file import begin_immediate, open_farm_file
from trustprov.chip.model import ChipState, Installed, Lifecycle
from trustprov.chip.otp import OTP_GUARD, check_advances, otp_refused, otp_values
from trustprov.chip.staging import PIECE, StagedContent
from trustprov.crypto.digest import sha256
from trustprov.errors import InputError
from trustprov.formats.immutable import ImmutableMemory

STATE_CACHE = 64  # decoded installed states kept per process (a lot shares a handful)
#: chip rows a batch (manufacturing) keeps in memory before it writes them, each once, in one
#: statement: memory stays flat whatever the lot's size
WRITE_BEHIND = 512


class Farm:
    """The farm file. One instance per process; chips load from and commit to it.

    ``read_only`` (a reader: `chip show`, `inspect`): a farm that cannot be written (read-only
    media) is opened ``mode=ro``, so it can be read; one that can is opened as ever (a read-only
    connection to a WAL database would leave its -wal and -shm files behind). A reader writes
    nothing either way."""

    def __init__(self, path: Path, *, create: bool = False, read_only: bool = False) -> None:
        self.path = Path(path)
        self._db = open_farm_file(self.path, create=create, read_only=read_only)
        self._lock = threading.RLock()
        self._in_batch = False
        self._families: dict[bytes, ImmutableMemory] = {}
        self._known_blobs: set[bytes] = set()
        self._states: dict[bytes, bytes] = {}  # state id -> encoded installed state
        self._pending_families: dict[bytes, ImmutableMemory] = {}
        self._pending_blobs: set[bytes] = set()
        self._pending_states: dict[bytes, bytes] = {}
        #: in a batch, the latest state of chips added in it, not yet written (`_flush_behind`)
        self._behind: dict[bytes, ChipState] = {}
        #: test-only fault injection: called before each commit; raising there is a power cut
        #: at that persistent write (the transaction never lands)
        self.before_commit: Callable[[], None] | None = None

    def close(self) -> None:
        self._db.close()

    # -- transactions -----------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many chip writes in one transaction (manufacturing). Nested writes join it."""
        with self._lock, self._transaction():
            self._in_batch = True
            try:
                yield
                self._flush_behind()  # inside the transaction: it commits with the rest
            finally:
                self._in_batch = False
                self._behind.clear()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._in_batch:
                yield self._db
                return
            with self._transaction():
                yield self._db

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT; the caches learn what it wrote only once COMMIT has returned."""
        self._pending_families.clear()
        self._pending_blobs.clear()
        self._pending_states.clear()
        begin_immediate(self._db)
        try:
            yield
            if self.before_commit is not None:
                self.before_commit()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._families.update(self._pending_families)
        self._known_blobs.update(self._pending_blobs)
        for state_id, data in self._pending_states.items():
            self._remember_state(state_id, data)

    # -- chips ------------------------------------------------------------------------------
    def add_blank(self, uid: bytes, lot: str) -> ChipState:
        state = ChipState(uid=uid, lot=lot)
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO chips (uid, lot, lifecycle, security_counter) VALUES (?, ?, ?, 0)",
                    (uid, lot, int(Lifecycle.BLANK)),
                )
            except sqlite3.IntegrityError as e:
                raise InputError(f"chip {uid.hex()} already exists in the farm") from e
        if self._in_batch:  # its next writes wait in memory until the batch writes them
            if len(self._behind) >= WRITE_BEHIND:
                self._flush_behind()
            self._behind[uid] = state
        return state

    def load(self, uid: bytes) -> ChipState:
        behind = self._behind.get(uid)
        if behind is not None:
            return dataclasses.replace(behind)
        row = self._db.execute(
            "SELECT lot, family_id, lifecycle, security_counter, identity_key, certificate, "
            "installed_id, prov_counter FROM chips WHERE uid = ?",
            (uid,),
        ).fetchone()
        if row is None:
            raise InputError(f"no chip {uid.hex()} in {self.path}")
        lot, family_id, lifecycle, counter, identity_key, certificate, installed_id, prov = row
        return ChipState(
            uid=uid,
            lot=lot,
            lifecycle=Lifecycle(lifecycle),
            security_counter=counter,
            immutable=self._family(family_id) if family_id is not None else None,
            identity_key=identity_key,
            certificate=certificate,
            installed=self._installed(installed_id) if installed_id is not None else None,
            prov_counter=prov,
        )

    def _installed(self, state_id: bytes) -> Installed:
        data = self._states.get(state_id)
        if data is None:
            row = self._db.execute(
                "SELECT data FROM installed_states WHERE state_id = ?", (state_id,)
            ).fetchone()
            if row is None:
                raise InputError("installed state missing from the farm")
            data = bytes(row[0])
            self._remember_state(state_id, data)
        return Installed.from_bytes(data)  # a fresh object per chip: nothing shared to mutate

    def _remember_state(self, state_id: bytes, data: bytes) -> None:
        if len(self._states) >= STATE_CACHE:
            self._states.pop(next(iter(self._states)))
        self._states[state_id] = data

    def _family(self, family_id: bytes) -> ImmutableMemory:
        if family_id not in self._families:
            row = self._db.execute(
                "SELECT immutable FROM families WHERE family_id = ?", (family_id,)
            ).fetchone()
            self._families[family_id] = ImmutableMemory.from_bytes(row[0])
        return self._families[family_id]

    def save(
        self,
        state: ChipState,
        blobs: Mapping[bytes, bytes | StagedContent] | None = None,
        *,
        installed_bytes: bytes | None = None,
        seen_prov_counter: int | None = None,
    ) -> None:
        """Write one chip's whole persistent state (and new flash blobs) atomically.
        ``installed_bytes``: ``state.installed.to_bytes()`` when the caller already has it.
        ``seen_prov_counter``: the provisioning counter of the state the writer started from;
        the write lands only if the chip still holds it (compare-and-swap), so two chip objects
        of one chip can never both install on the same view and sign the same counter."""
        if state.uid in self._behind:
            if self._save_behind(state, blobs, seen_prov_counter):
                return
            self._flush_behind()  # the stored rows are the whole truth again for what follows
        installed = state_id = None
        if state.installed is not None:  # encoded before the write lock is taken
            installed = installed_bytes or state.installed.to_bytes()
            state_id = sha256(installed)
        with self._write() as db:
            if state.immutable is not None:
                fam = state.immutable.family_id
                if fam not in self._families and fam not in self._pending_families:
                    image = state.immutable.to_bytes()
                    db.execute("INSERT OR IGNORE INTO families VALUES (?, ?)", (fam, image))
                    stored = db.execute(
                        "SELECT immutable FROM families WHERE family_id = ?", (fam,)
                    ).fetchone()[0]
                    if stored != image:
                        raise InputError("this farm holds another immutable image for the family")
                    self._pending_families[fam] = state.immutable
            self._insert_blobs(db, blobs or {})
            if (
                installed is not None
                and state_id is not None
                and state_id not in self._states
                and state_id not in self._pending_states
            ):
                db.execute(
                    "INSERT OR IGNORE INTO installed_states VALUES (?, ?)", (state_id, installed)
                )
                self._pending_states[state_id] = installed
            # OTP only advances: a write that would lower the stored lifecycle, security counter
            # or provisioning counter (a chip object holding a stale view) changes no row
            updated = db.execute(
                "UPDATE chips SET family_id = ?, lifecycle = ?, security_counter = ?, "  # noqa: S608 - the module's own SQL
                "identity_key = ?, certificate = ?, installed_id = ?, prov_counter = ? "
                f"WHERE uid = ? AND {OTP_GUARD} AND prov_counter = coalesce(?, prov_counter)",
                (
                    state.immutable.family_id if state.immutable else None,
                    int(state.lifecycle),
                    state.security_counter,
                    state.identity_key,
                    state.certificate,
                    state_id,
                    state.prov_counter,
                    state.uid,
                    *otp_values(state),
                    seen_prov_counter,
                ),
            ).rowcount
            if updated != 1:
                if db.execute("SELECT 1 FROM chips WHERE uid = ?", (state.uid,)).fetchone():
                    raise otp_refused()
                raise InputError(f"no chip {state.uid.hex()} in {self.path}")

    def _insert_blobs(
        self, db: sqlite3.Connection, blobs: Mapping[bytes, bytes | StagedContent]
    ) -> None:
        """The flash contents the farm does not hold yet; part of the caller's transaction."""
        for blob_id, data in blobs.items():
            if blob_id not in self._known_blobs and blob_id not in self._pending_blobs:
                if isinstance(data, StagedContent):
                    self._insert_staged(db, data)
                else:
                    db.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?)", (blob_id, data))
                self._pending_blobs.add(blob_id)

    def _insert_staged(self, db: sqlite3.Connection, staged: StagedContent) -> None:
        """A staged content into the blob store, a piece at a time (SQLite's incremental blob
        I/O): the host never holds the content whole. Part of the caller's transaction."""
        if staged.held:
            return  # the farm held it when it was staged, and blobs are never removed
        cur = db.execute(
            "INSERT OR IGNORE INTO blobs VALUES (?, zeroblob(?))",
            (staged.content_id, staged.length),
        )
        if cur.rowcount != 1 or cur.lastrowid is None:  # another writer stored it meanwhile
            return
        with db.blobopen("blobs", "data", cur.lastrowid) as out:
            for piece in staged.pieces():
                out.write(piece)

    def holds_blob(self, blob_id: bytes) -> bool:
        """Whether the farm holds the content ``blob_id`` (committed: it stays)."""
        if blob_id in self._known_blobs:
            return True
        if self._db.execute("SELECT 1 FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone():
            self._known_blobs.add(blob_id)
            return True
        return False

    def blob_digest(self, blob_id: bytes) -> bytes:
        """SHA-256 of a blob, read a piece at a time."""
        row = self._db.execute("SELECT rowid FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone()
        if row is None:
            raise InputError("flash blob missing from the farm")
        h = hashes.Hash(hashes.SHA256())
        with self._db.blobopen("blobs", "data", row[0], readonly=True) as blob:
            while piece := blob.read(PIECE):
                h.update(piece)
        return h.finalize()

    def _save_behind(
        self,
        state: ChipState,
        blobs: Mapping[bytes, bytes | StagedContent] | None,
        seen_prov_counter: int | None,
    ) -> bool:
        """A manufacturing write of a chip added in this batch, kept in memory: True if kept,
        False for a write that also stores something else (a new family, blobs, an installed
        state), which takes the ordinary path. The same OTP rule as the UPDATE's."""
        fam = state.immutable.family_id if state.immutable is not None else None
        if (
            blobs
            or state.installed is not None
            or (fam is not None and fam not in self._families and fam not in self._pending_families)
        ):
            return False
        old = self._behind[state.uid]
        check_advances(old, state)
        if seen_prov_counter is not None and seen_prov_counter != old.prov_counter:
            raise otp_refused()
        self._behind[state.uid] = state
        return True

    def _flush_behind(self) -> None:
        """Write the chips kept by `_save_behind`, one UPDATE each in one statement, under the
        same OTP rule as `save` against what is stored."""
        rows = [
            (
                s.immutable.family_id if s.immutable else None,
                int(s.lifecycle),
                s.security_counter,
                s.identity_key,
                s.certificate,
                s.prov_counter,
                s.uid,
                *otp_values(s),
            )
            for s in self._behind.values()
        ]
        self._behind.clear()
        if not rows:
            return
        updated = self._db.executemany(
            "UPDATE chips SET family_id = ?, lifecycle = ?, security_counter = ?, "  # noqa: S608 - the module's own SQL
            "identity_key = ?, certificate = ?, prov_counter = ? "
            f"WHERE uid = ? AND {OTP_GUARD}",
            rows,
        ).rowcount
        if updated != len(rows):
            raise otp_refused()

    def blob(self, blob_id: bytes) -> bytes:
        row = self._db.execute("SELECT data FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone()
        if row is None:
            raise InputError("flash blob missing from the farm")
        return bytes(row[0])

    # -- inventory (what is physically in the trays) ----------------------------------------
    def lots(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT lot FROM chips ORDER BY lot")]

    def uids(self, lot: str | None = None) -> list[bytes]:
        if lot is None:
            rows = self._db.execute("SELECT uid FROM chips ORDER BY uid")
        else:
            rows = self._db.execute("SELECT uid FROM chips WHERE lot = ? ORDER BY uid", (lot,))
        return [bytes(r[0]) for r in rows]
