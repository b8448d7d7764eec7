"""A lot of chips in one SQLite file (the chip farm).

Layout: one row per chip; the immutable memory image once per family (every chip of a family
holds the same one); flash contents once per distinct blob, so a firmware image installed on a
million chips is stored once; and the installed state (slots, regions) once per distinct state,
which every chip provisioned with the same bundle shares, so a chip's own row is little more
than its identity. Every chip write is one transaction: a chip's persistent state moves from one
consistent state to the next or not at all, as flash with an atomic commit would. A chip's
lifecycle, security counter and provisioning counter are OTP: no write lowers them (`save`
refuses it; the rule is written once, `_OTP_GUARD`).

Reading this file is reading silicon: it holds every chip's immutable memory and key slots, and
stands in for the physical chips at the CM. See docs/threat-model.md.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from trustprov.chip.model import ChipState, Installed, Lifecycle
from trustprov.chip.staging import PIECE, StagedContent
from trustprov.crypto.digest import sha256
from trustprov.errors import ChipRefused, InputError
from trustprov.formats.immutable import ImmutableMemory

SCHEMA = """
CREATE TABLE IF NOT EXISTS farm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS families (family_id BLOB PRIMARY KEY, immutable BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (blob_id BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS installed_states (state_id BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chips (
    uid BLOB PRIMARY KEY,
    lot TEXT NOT NULL,
    family_id BLOB REFERENCES families(family_id),
    lifecycle INTEGER NOT NULL,
    security_counter INTEGER NOT NULL,
    identity_key BLOB,
    certificate BLOB,
    installed_id BLOB REFERENCES installed_states(state_id),
    prov_counter INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chips_by_lot ON chips (lot, uid);
"""
# 3: each key slot keeps its asset's manifest digest; 4: each chip's provisioning counter (OTP)
FARM_FORMAT = "trustprov-farm-4"
STATE_CACHE = 64  # decoded installed states kept per process (a lot shares a handful)
LOCK_WAIT = 60.0  # seconds a write waits for another process's
LOCK_PAUSE, LOCK_PAUSE_MAX = 20e-6, 5e-3  # its first pause, doubling up to the longest
#: chip rows a batch (manufacturing) keeps in memory before it writes them, each once, in one
#: statement: memory stays flat whatever the lot's size
WRITE_BEHIND = 512


_ACCESS_ERRORS = (
    "SQLITE_CANTOPEN",
    "SQLITE_READONLY",
    "SQLITE_PERM",
    "SQLITE_IOERR",
    "SQLITE_BUSY",
)


def _cannot_access(e: sqlite3.Error) -> bool:
    """An error of access (permissions, read-only media, locks), not of the file's contents."""
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith(_ACCESS_ERRORS)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)


def _read_only_uri(path: Path) -> str:
    """``mode=ro``, for a farm that cannot be written (read-only media); ``immutable`` too (SQLite
    could not make the WAL's shared-memory file there) unless a WAL holds writes not yet in the
    file, which immutable would not read."""
    wal = path.with_name(path.name + "-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro" + (
        "" if pending else "&immutable=1"
    )


#: The OTP rule, written once: a chip's lifecycle, security counter and provisioning counter only
#: advance. `_OTP_GUARD` is the rule in SQL (each stored value at most the new one, the new ones
#: given in `_otp_values` order); `_check_advances` is it for a state held in memory.
_OTP_GUARD = "lifecycle <= ? AND security_counter <= ? AND prov_counter <= ?"


def _otp_values(state: ChipState) -> tuple[int, int, int]:
    return int(state.lifecycle), state.security_counter, state.prov_counter


def _otp_refused() -> ChipRefused:
    return ChipRefused("the lifecycle and the counters only advance", code="lifecycle")


def _check_advances(old: ChipState, new: ChipState) -> None:
    if any(n < o for n, o in zip(_otp_values(new), _otp_values(old), strict=True)):
        raise _otp_refused()


class Farm:
    """The farm file. One instance per process; chips load from and commit to it.

    ``read_only`` (a reader: `chip show`, `inspect`): a farm that cannot be written (read-only
    media) is opened ``mode=ro``, so it can be read; one that can is opened as ever (a read-only
    connection to a WAL database would leave its -wal and -shm files behind). A reader writes
    nothing either way."""

    def __init__(self, path: Path, *, create: bool = False, read_only: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"{self.path} is a directory, not a chip farm")
        if not create and not self.path.is_file():
            raise InputError(f"no chip farm at {self.path}")
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        try:
            writable = not self.path.exists() or _writable(self.path)
            if not writable and not read_only:
                # a writer would meet it at its first write, deep in a command: say it here
                raise InputError(
                    f"cannot use chip farm {self.path}: it or its directory cannot be written "
                    "(read-only media?)"
                )
            if not writable:
                self._db = sqlite3.connect(
                    _read_only_uri(self.path), uri=True, timeout=60, isolation_level=None
                )
            else:
                self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as e:  # e.g. a directory that cannot be written
            raise InputError(f"cannot open chip farm {self.path}: {e}") from e
        try:
            if create and new_file:  # never turn another database into a farm
                self._db.executescript(SCHEMA)
                self._db.execute("INSERT INTO farm_meta VALUES ('format', ?)", (FARM_FORMAT,))
            row = self._db.execute("SELECT value FROM farm_meta WHERE key='format'").fetchone()
        except sqlite3.DatabaseError as e:
            self._db.close()
            if _cannot_access(e):  # could not read or write it: no verdict on what it is
                raise InputError(f"cannot use chip farm {self.path}: {e}") from e
            raise InputError(f"{self.path} is not a chip farm") from e
        if row is None or row[0] != FARM_FORMAT:
            self._db.close()
            raise InputError(f"{self.path} is not a chip farm of format {FARM_FORMAT}")
        try:  # only now, on a file known to be a farm, change its journal mode
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # from now on a write waits for another process's write in `_begin`, in steps of
            # tens of microseconds, not in SQLite's busy handler, which sleeps 1 ms at least
            # (a chip's write holds the lock some 50 us): readers never wait under WAL
            self._db.execute("PRAGMA busy_timeout=0")
        except sqlite3.OperationalError as e:  # read-only media: a farm, but not usable here
            self._db.close()
            raise InputError(f"cannot use chip farm {self.path}: {e}") from e
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
        self._begin()
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

    def _begin(self) -> None:
        """BEGIN IMMEDIATE: take the write lock, waiting up to `LOCK_WAIT` seconds for other
        processes of the farm (a station's workers) to let go of it."""
        deadline, pause = 0.0, LOCK_PAUSE
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if not getattr(e, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
                    raise
                now = time.monotonic()
                if not deadline:
                    deadline = now + LOCK_WAIT
                elif now > deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, LOCK_PAUSE_MAX)

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
                f"WHERE uid = ? AND {_OTP_GUARD} AND prov_counter = coalesce(?, prov_counter)",
                (
                    state.immutable.family_id if state.immutable else None,
                    int(state.lifecycle),
                    state.security_counter,
                    state.identity_key,
                    state.certificate,
                    state_id,
                    state.prov_counter,
                    state.uid,
                    *_otp_values(state),
                    seen_prov_counter,
                ),
            ).rowcount
            if updated != 1:
                if db.execute("SELECT 1 FROM chips WHERE uid = ?", (state.uid,)).fetchone():
                    raise _otp_refused()
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
        _check_advances(old, state)
        if seen_prov_counter is not None and seen_prov_counter != old.prov_counter:
            raise _otp_refused()
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
                *_otp_values(s),
            )
            for s in self._behind.values()
        ]
        self._behind.clear()
        if not rows:
            return
        updated = self._db.executemany(
            "UPDATE chips SET family_id = ?, lifecycle = ?, security_counter = ?, "  # noqa: S608 - the module's own SQL
            "identity_key = ?, certificate = ?, prov_counter = ? "
            f"WHERE uid = ? AND {_OTP_GUARD}",
            rows,
        ).rowcount
        if updated != len(rows):
            raise _otp_refused()

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
