"""The embedded engine: one SQLite file, durable, zero set-up.

One write connection, used by whichever thread leads the current group commit (see
`_groupcommit`); readers use connections of their own from a small pool, so a long read never
blocks a writer (WAL). Several processes may open one file: SQLite's write lock serializes their
commits, and `BEGIN IMMEDIATE` takes it before the first read of a transaction, so two writers
never both pass a version check.

See docs/adr/0002-sqlite-durability.md for the durability settings.

A store opened read-only never writes: its connections open the file with `mode=ro` (or
`immutable=1` where SQLite could not otherwise read it, see `_files.read_only_uri`), and nothing
is created, set up or migrated. A store carried into a forked child gets fresh connections
there (see `_rebuild`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from eventvault.errors import (
    DatabaseLockedError,
    EventVaultError,
    ImportFileError,
    InvalidURLError,
    MigrationRequiredError,
    NotAnEventVaultDatabaseError,
    NotEmptyError,
    ReadOnlyStoreError,
    SchemaVersionError,
    StorageError,
    StorageFullError,
    StoreClosedError,
)
from eventvault.serialization import (
    DEFAULT_MAX_EVENT_BYTES,
    decode_rows,
    from_micros,
    now_micros,
    raw_rows,
    validate_stream_name,
)
from eventvault.store._append import (
    BatchPlan,
    PendingAppend,
    StoredRow,
    StreamHead,
    plan_batch,
    plan_on_remembered_heads,
)
from eventvault.store._fork import ForkGuard, keep_forever
from eventvault.store._groupcommit import GroupCommitter
from eventvault.store._removal import (
    ImportedRemovals,
    RemovalTarget,
    SQLRemovals,
    metadata_of,
)
from eventvault.store._removal import (
    statements as removal_statements,
)
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.notify import Notifier, shared_notifier
from eventvault.store.seam import (
    CORE_COMPONENT,
    Component,
    Dialect,
    SQLRow,
    Transaction,
    check_finished,
    run_work,
    with_schema,
)
from eventvault.store.sqlite._files import (
    CreatedFile,
    check_store_file,
    claim_file,
    describe_full,
    describe_read_only,
    folder_of,
    hold_reader_locks,
    read_only_cause,
    read_only_uri,
    wal_holds_frames,
)
from eventvault.store.sqlite._seam import (
    COMPONENT_MIGRATIONS_DDL,
    CORE_MIGRATIONS,
    SQLiteStatements,
    apply_component,
    component_version,
    component_versions,
)
from eventvault.types import (
    AppendResult,
    EventHash,
    PayloadEvent,
    RawEvent,
    RecordedEvent,
    StreamInfo,
    StreamMetadata,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteEventStore", "Synchronous"]

APPLICATION_ID: Final = 0x45564C54
"""`PRAGMA application_id` of an eventvault file ("EVLT")."""
SCHEMA_VERSION: Final = CORE_MIGRATIONS[-1].version
"""`PRAGMA user_version` of the storage schema this code writes: the newest version of the
store's own migrations (`migrations/NNNN/`). An older eventvault refuses a newer file."""
MAX_READERS: Final = 8

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]

_COLUMNS: Final = (
    "stream_name, stream_position, global_position, event_id, event_type, schema_version, "
    "data, metadata, recorded_at, hash"
)
_UNPLACED_COLUMNS: Final = (
    "stream_name, stream_position, event_id, event_type, schema_version, data, metadata, "
    "recorded_at, hash"
)
_ROW_MARKS: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UNPLACED_ROW_MARKS: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_INSERT: Final = 64
"""Rows per multi-row INSERT: one statement step (and one release of the GIL) per 64 events,
where `executemany` steps (and releases the GIL) once per event."""
_STREAM_HEAD: Final = (
    "SELECT stream_position, hash FROM events WHERE stream_name = ? "
    "ORDER BY stream_position DESC LIMIT 1"
)
_MAX_CACHED_HEADS: Final = 50_000
# Removals take a prefix of a stream: its reads start at its `removed_before`, one lookup in
# a table that holds a row only for streams with removals (the index range scan is kept).
_STREAM_START: Final = (
    "coalesce((SELECT removed_before FROM stream_metadata WHERE stream_name = ?1), 0)"
)
REMOVALS_SCHEMA: Final = 3
"""The storage schema that brought removals (`removed_by`, `stream_metadata`)."""


@dataclass(frozen=True, slots=True)
class _Reads:
    """The reads that depend on whether the file holds removals: every file of schema 3 on; a
    file of an older schema opened read-only (which migrates nothing) has none to leave out."""

    stream_forwards: str
    stream_backwards: str
    stream_payloads: str
    live: str
    removed_by: str
    listed: str
    removals: bool


def _reads(removals: bool) -> _Reads:
    start = _STREAM_START if removals else "0"
    return _Reads(
        stream_forwards=f"SELECT {_COLUMNS} FROM events WHERE stream_name = ?1 "
        f"AND stream_position >= max(?2, {start}) ORDER BY stream_position LIMIT ?3",
        stream_backwards=f"SELECT {_COLUMNS} FROM events WHERE stream_name = ?1 "
        f"AND stream_position <= ?2 AND stream_position >= {start} "
        "ORDER BY stream_position DESC LIMIT ?3",
        stream_payloads="SELECT stream_position, event_type, schema_version, data, recorded_at "
        f"FROM events WHERE stream_name = ?1 AND stream_position >= max(?2, {start}) "
        "ORDER BY stream_position LIMIT ?3",
        live="removed_by IS NULL" if removals else "1",
        removed_by="removed_by" if removals else "NULL",
        listed="coalesce((SELECT removed_before FROM stream_metadata "
        "WHERE stream_name = s.stream_name), 0)"
        if removals
        else "0",
        removals=removals,
    )


_READS: Final = {True: _reads(True), False: _reads(False)}
_MAX_POSITION: Final = 2**63 - 1
_IDS_PER_LOOKUP: Final = 500
"""Values per `IN (...)` list (event ids, event types): SQLite builds before 3.32 bind at most
999 variables per statement."""


def _translate(exc: sqlite3.Error, location: str) -> EventVaultError:
    """The one place where SQLite's errors become eventvault's.

    Args:
        exc: the error sqlite3 raised.
        location: the database file, for messages (and to tell a full disk from a full
            database).
    """
    message = str(exc)
    code = getattr(exc, "sqlite_errorcode", 0) or 0
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        return StorageFullError(location, describe_full(location, message))
    if primary == sqlite3.SQLITE_READONLY:
        return ReadOnlyStoreError(location, describe_read_only(location, code, message))
    if isinstance(exc, sqlite3.OperationalError) and "locked" in message:
        return DatabaseLockedError(
            f"{location!r} stayed locked by another connection past the busy timeout: {message}"
        )
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message
    ):
        return NotAnEventVaultDatabaseError(location, message)
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in message:
        return StoreClosedError(location)
    if primary == sqlite3.SQLITE_CANTOPEN and read_only_cause(location) is not None:
        return ReadOnlyStoreError(location, describe_read_only(location, code, message))
    if primary == sqlite3.SQLITE_CANTOPEN:
        return StorageError(
            f"SQLite cannot open {location!r} or the files beside it in {folder_of(location)!r} "
            f"({message}); check that the folder exists and that it and the file can be read "
            "and written"
        )
    return StorageError(f"SQLite error on {location!r}: {message}")


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction.

    SQLite may already have rolled the transaction back itself (on a full disk, an I/O error):
    a ROLLBACK then fails with "no transaction is active", and raising that would hide the
    error that matters.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


# SQLite answers these when a read-only connection cannot create the -shm file it needs to
# read a WAL database (a read-only folder or mount).
_CANNOT_SHARE: Final = frozenset(
    {sqlite3.SQLITE_READONLY_DIRECTORY, sqlite3.SQLITE_READONLY_CANTINIT}
)


@functools.cache
def _multi_insert(count: int, placed: bool) -> str:
    """The INSERT of `count` events in one statement; `placed`: with their global positions,
    else leaving them to SQLite."""
    if placed:
        return f"INSERT INTO events ({_COLUMNS}) VALUES " + ", ".join([_ROW_MARKS] * count)
    return f"INSERT INTO events ({_UNPLACED_COLUMNS}) VALUES " + ", ".join(
        [_UNPLACED_ROW_MARKS] * count
    )


def _insert_rows(conn: sqlite3.Connection, rows: Sequence[StoredRow], *, placed: bool) -> int:
    """Insert events with multi-row INSERTs; returns the rowid (global position) of the last.

    Args:
        conn: the write connection.
        rows: the events.
        placed: store the rows' global positions; False leaves them to SQLite, which gives
            the rows of one statement consecutive positions after the highest stored (the
            global positions in `rows` are then placeholders).
    """
    last = 0
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        params: list[object] = []
        if placed:
            for row in chunk:
                params.extend(row)
        else:
            for row in chunk:
                params.extend(row[:2])
                params.extend(row[3:])
        last = conn.execute(_multi_insert(len(chunk), placed), params).lastrowid or 0
    return last


class SQLiteEventStore(EventStore):
    """An event store in one SQLite database file.

    Args:
        path: the database file (created when missing), or ":memory:" for a private in-memory
            database that lives as long as the store.
        max_event_bytes: the limit on one event's encoded data plus metadata (default 1 MiB).
        synchronous: SQLite's `synchronous` setting; `FULL` (the default) makes every
            acknowledged append survive power loss, `NORMAL` only a process crash.
        busy_timeout: seconds to wait for another process's write lock before failing.
        url: the URL the store was opened with, for messages.
        read_only: open the file for reading only: never create it, set it up, migrate or
            change it (it may be in a read-only folder or on a read-only mount); refuse
            appends, imports and transactions with `ReadOnlyStoreError`.

    Raises:
        StoreNotFoundError: `read_only` and the file does not exist.
        NotAnEventVaultDatabaseError: the file is not a SQLite database, belongs to another
            application, is a folder, or (`read_only`) is empty or holds no store.
        SchemaVersionError: the file was written by a newer eventvault.
        ReadOnlyStoreError: the file must be set up (or its folder written) and cannot be.
        StorageFullError: setting up a new file filled the disk (the file is removed again).
        StorageError: the file cannot be opened: its folder does not exist, access is denied.
    """

    def __init__(
        self,
        path: str,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 30.0,
        url: str | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__(url or path, max_event_bytes=max_event_bytes, read_only=read_only)
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise InvalidURLError(
                path, f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}"
            )
        if not 0 <= busy_timeout < 86_400:
            raise InvalidURLError(
                path, f"busy_timeout must be 0 to 86400 seconds, not {busy_timeout!r}"
            )
        self.path = path
        self._in_memory = path == ":memory:"
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        # The URI every connection of a read-only store opens; None: the path, read-write.
        self._uri: str | None = None
        # Reentrant: a transaction's work runs on the writer's thread holding it, and on
        # ":memory:" a read inside that work reads through the writer too.
        self._conn_lock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Reads in flight, and whether new ones wait (while the process forks).
        self._readers_idle = threading.Condition(self._readers_lock)
        self._reads_in_flight = 0
        self._paused = False
        self._files_at_fork: tuple[tuple[int, int] | None, ...] = ()
        self._forked_in_transaction = False
        created: CreatedFile | None = None
        if not self._in_memory:
            if read_only:
                check_store_file(path, self.url)
            else:
                created = claim_file(path, self.url)
        try:
            if read_only and not self._in_memory:
                self._writer = self._open_read_only()
            else:
                self._writer = self._open()
        except BaseException:
            if created is not None:
                created.remove_if_empty()
            raise
        self._notifier = Notifier() if self._in_memory else shared_notifier(os.path.realpath(path))
        # Stream heads (version, last hash) this writer committed: the fast path plans
        # against them. Touched only under the connection lock.
        self._heads: dict[str, tuple[int, bytes]] = {}
        self._committer: GroupCommitter[_Request, object] = GroupCommitter(self._commit_batch)
        self._fork_guard = ForkGuard(
            before=self._pause, after_in_parent=self._resume, after_in_child=self._rebuild
        )

    # -- connections -------------------------------------------------------------------------

    def _new_connection(self) -> sqlite3.Connection:
        """A connection with the store's settings (raises SQLite's errors as they are)."""
        conn = sqlite3.connect(
            self.path if self._uri is None else self._uri,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._busy_timeout,
            uri=self._uri is not None,
        )
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if self.read_only and not self._in_memory:
                conn.execute("PRAGMA query_only = 1")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._new_connection()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _open(self) -> sqlite3.Connection:
        """The write connection, with the file checked (and set up when new)."""
        conn = self._connect()
        try:
            self._initialize(conn)
            if self.read_only:  # (a private database in memory is set up first, then closed)
                conn.execute("PRAGMA query_only = 1")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        """A connection that never writes the database: `query_only` always, and SQLite's
        `mode=ro` or `immutable=1` where the file system forbids writing.

        Where the folder and the file may be written and no -wal file holds a transaction, the
        connection opens the file as any reader does: SQLite creates the -wal and -shm files
        beside it and, closing last, removes them again, so reading leaves nothing behind.
        Elsewhere SQLite can read a WAL database read-only when its -shm file exists, or its
        folder is writable so that it can create it, or when the database is opened as
        immutable (https://www.sqlite.org/wal.html#readonly); immutable ignores the -wal file,
        so it is only used when the log holds no transaction.
        """
        if read_only_cause(self.path) is None and not wal_holds_frames(self.path):
            return self._open()
        self._uri = read_only_uri(self.path, immutable=False)
        try:
            conn = self._new_connection()
            try:
                # Reading the schema opens the -wal and -shm files, or fails to.
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0)
            if code not in _CANNOT_SHARE and code & 0xFF != sqlite3.SQLITE_CANTOPEN:
                raise _translate(exc, self.path) from exc
            if wal_holds_frames(self.path):
                raise StorageError(
                    f"cannot read the store {self.url!r}: its write-ahead log "
                    f"{self.path + '-wal'!r} holds committed events, and SQLite can only read it "
                    f"with an index file ({os.path.basename(self.path)}-shm) that it cannot "
                    f"create in {folder_of(self.path)!r}; copy the store's file and its -wal "
                    f"file to a writable folder and read the copy ({exc})"
                ) from exc
            self._uri = read_only_uri(self.path, immutable=True)
            conn = self._connect()
        try:
            self._initialize(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _initialize(self, conn: sqlite3.Connection) -> None:
        try:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # A read-only store sets nothing up and migrates nothing, except a private database
            # in memory, which nobody else could have set up.
            may_migrate = not self.read_only or self._in_memory
            if may_migrate and (
                application_id == 0
                or (application_id == APPLICATION_ID and version < SCHEMA_VERSION)
            ):
                self._migrate_core(conn)
                application_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            if application_id == APPLICATION_ID and not self._in_memory and not self.read_only:
                # Only a file known to be ours is switched to WAL (it stays so; cheap to repeat).
                conn.execute("PRAGMA journal_mode = WAL")
            if application_id == 0:
                self._refuse_foreign(conn)
                raise NotAnEventVaultDatabaseError(
                    self.path, "a SQLite database that holds no eventvault store"
                )
            if application_id != APPLICATION_ID:
                raise NotAnEventVaultDatabaseError(
                    self.path,
                    f"a SQLite database of another application (application_id "
                    f"{application_id:#x})",
                )
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(self.path, version, SCHEMA_VERSION)
            # A file of an older schema opened read-only is read as it is: it holds no removals
            # (a process that upgrades it meanwhile is seen once the store is opened again).
            self._reads = _READS[version >= REMOVALS_SCHEMA]
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _migrate_core(self, conn: sqlite3.Connection) -> None:
        """Create the store's tables in a new file, or upgrade an older file in place.

        Runs under `BEGIN IMMEDIATE`, SQLite's write lock, so processes that open one file at
        once serialize: the second finds the work done and applies nothing.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between our look and our lock: look again.
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if application_id == 0:
                self._refuse_foreign(conn)
                current = 0
            elif application_id != APPLICATION_ID or current >= SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                return
            pending = [m for m in CORE_MIGRATIONS if m.version > current]
            # The record table comes with version 2; a file upgraded from version 1 records
            # the versions it already had too.
            for migration in pending:
                for statement in migration.statements:
                    conn.execute(statement)
            conn.execute(COMPONENT_MIGRATIONS_DDL)
            conn.executemany(
                "INSERT OR IGNORE INTO component_migrations (component, version, applied_at) "
                "VALUES (?, ?, ?)",
                [(CORE_COMPONENT, m.version, now_micros()) for m in CORE_MIGRATIONS],
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
            self.core_migrations_applied = [m.version for m in pending]
        except BaseException:
            _rollback_quietly(conn)
            raise

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        """Raise when a database without eventvault's mark holds tables of its own."""
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        if tables:
            raise NotAnEventVaultDatabaseError(
                self.path, f"a SQLite database of another application (tables: {', '.join(tables)})"
            )

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to read with: the writer's under its lock for ":memory:", else a pooled
        reader, so a read never waits for a commit."""
        if self._in_memory:
            self._check_open()
            with self._conn_lock:
                yield self._writer
            return
        conn = self._take_reader()
        try:
            yield conn
        finally:
            self._return_reader(conn)

    def _take_reader(self) -> sqlite3.Connection:
        """A pooled reader, or a new one, counted as a read in flight until it is returned
        (a fork waits for none to be in flight: see `_pause`)."""
        if self._closed:
            self._check_open()
        with self._readers_lock:
            while self._paused:
                self._readers_idle.wait()
            self._reads_in_flight += 1
            conn = self._readers.pop() if self._readers else None
        if conn is not None:
            return conn
        try:
            conn = self._connect()
        except BaseException:
            self._return_reader(None)
            raise
        try:
            conn.execute("PRAGMA query_only = 1")
        except BaseException:
            conn.close()
            self._return_reader(None)
            raise
        return conn

    def _return_reader(self, conn: sqlite3.Connection | None) -> None:
        """End a read in flight and put its reader back in the pool (or close it)."""
        with self._readers_lock:
            self._reads_in_flight -= 1
            if self._paused and not self._reads_in_flight:
                self._readers_idle.notify_all()
            if conn is not None and len(self._readers) < MAX_READERS and not self._closed:
                self._readers.append(conn)
                conn = None
        if conn is not None:
            conn.close()

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        # The hot path of every read: a pooled reader taken and returned without a context
        # manager, whose machinery costs as much as the rest of a small read.
        try:
            if self._in_memory:
                with self._reading() as conn:
                    return conn.execute(sql, params).fetchall()
            conn = self._take_reader()
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                self._return_reader(conn)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    # -- what the engine is ------------------------------------------------------------------

    @property
    def embedded(self) -> bool:
        return True

    @property
    def storage_file(self) -> str | None:
        return None if self._in_memory else self.path

    def storage_size(self) -> int | None:
        """The bytes of the database file and its write-ahead log; None for ":memory:"."""
        if self._in_memory:
            return None
        size = 0
        for name in (self.path, f"{self.path}-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += os.path.getsize(name)
        return size

    # -- fork --------------------------------------------------------------------------------

    def _wal_files(self) -> tuple[tuple[int, int] | None, ...]:
        """The identity (device, inode) of the -wal and -shm files, None for one missing."""
        found: list[tuple[int, int] | None] = []
        for name in (f"{self.path}-wal", f"{self.path}-shm"):
            try:
                info = os.stat(name)
            except OSError:
                found.append(None)
            else:
                found.append((info.st_dev, info.st_ino))
        return tuple(found)

    def _pause(self) -> None:
        """Before a fork: let the commit and the reads in flight finish, hold new ones back.

        The child must not inherit a connection in the middle of a statement: SQLite's record
        of the locks that connection held (a write lock on the log) would stay in the child's
        copy for ever, and the child could never write.
        """
        # The writer's lock already this thread's: the fork comes from inside a transaction's
        # work on this store, and the child would inherit the writer in the middle of it.
        self._forked_in_transaction = bool(cast(Any, self._conn_lock)._is_owned())
        self._conn_lock.acquire()
        with self._readers_lock:
            self._paused = True
            while self._reads_in_flight:
                self._readers_idle.wait()
        if not self._in_memory:
            self._files_at_fork = self._wal_files()

    def _resume(self) -> None:
        with self._readers_lock:
            self._paused = False
            self._readers_idle.notify_all()
        self._conn_lock.release()

    def _rebuild(self) -> None:
        """In a forked child: fresh locks, writer, readers and group committer.

        The connections inherited from the parent are shared with it: they are never used or
        closed here, only kept (closing one would act on the parent's files and locks). A
        private ":memory:" database is the child's own copy, and its connection (idle at the
        fork) goes on serving it.
        """
        if self._refuses_fork(paused=self._paused, in_transaction=self._forked_in_transaction):
            return
        inherited = [*self._readers] if self._in_memory else [self._writer, *self._readers]
        keep_forever(*inherited)
        self._conn_lock = threading.RLock()
        self._readers = []
        self._readers_lock = threading.Lock()
        self._readers_idle = threading.Condition(self._readers_lock)
        self._reads_in_flight = 0
        self._paused = False
        self._heads = {}
        self._committer = GroupCommitter(self._commit_batch)
        self._forked()
        if self._in_memory:
            self._notifier = Notifier()
            return
        self._notifier = shared_notifier(os.path.realpath(self.path))
        try:
            hold_reader_locks(self.path)
            now = self._wal_files()
            pairs = zip(self._files_at_fork, now, strict=True)
            if any(then not in (None, found) for then, found in pairs):
                raise StorageError(
                    "its -wal and -shm files were removed or replaced just after the fork"
                )
            self._writer = self._connect()
        except (OSError, EventVaultError) as exc:
            self._refuse_after_fork(f"it could not be opened again in the child ({exc})")

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        return cast(list[AppendResult], self._committer.submit(appends))

    async def _append_async(self, appends: list[PendingAppend]) -> list[AppendResult]:
        return cast(list[AppendResult], await self._committer.submit_async(appends))

    def _commit_batch(self, requests: list[_Request]) -> list[object]:
        """Commit a batch of appends and transactions atomically; a failing one fails alone.

        A batch of appends only takes the fast path: one INSERT statement, which SQLite runs
        as a transaction of its own, against the stream heads this writer remembers. The
        careful path decides each request inside `BEGIN IMMEDIATE`, with heads read from the
        file, and runs each transaction's work there in a savepoint of its own.
        """
        with self._conn_lock:
            self._check_open()
            done = None
            if not any(isinstance(request, _Work) for request in requests):
                done = self._fast_write(cast(list[list[PendingAppend]], requests))
            if done is None:
                done = self._careful_write(requests)
            outcomes, heads = done
            if len(self._heads) + len(heads) > _MAX_CACHED_HEADS:
                self._heads.clear()
            for name, head in heads.items():
                self._heads[name] = (head.version, head.hash)
        if heads:
            self._notifier.notify()
        return outcomes

    def _fast_write(
        self, requests: list[list[PendingAppend]]
    ) -> tuple[list[object], dict[str, StreamHead]] | None:
        """Write a batch as one INSERT against remembered stream heads.

        Returns None, for the careful path, when a head is unknown, when an append would fail
        (a remembered head may be stale, so only the careful path refuses an append), when the
        batch needs more than one statement, or when the insert collides: with the
        stream-position index (another writer moved a remembered head on; versions only grow,
        so a stale head always collides) or with the event-id index (a retry).
        """
        plan = plan_on_remembered_heads(requests, self._heads, now_micros())
        if plan is None or len(plan.rows) > _ROWS_PER_INSERT:
            return None
        try:
            # At most _ROWS_PER_INSERT rows: one statement, which outside BEGIN is one
            # transaction, all its rows or none.
            last = _insert_rows(self._writer, plan.rows, placed=False)
        except sqlite3.IntegrityError:
            for name in plan.heads:
                self._heads.pop(name, None)
            return None
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        return list(plan.shifted(last - len(plan.rows))), plan.heads

    def _careful_write(
        self, requests: list[_Request]
    ) -> tuple[list[object], dict[str, StreamHead]]:
        """Decide and write a batch inside `BEGIN IMMEDIATE`, with heads and event ids read
        from the file under the write lock (a remembered head may be stale).

        Appends are decided together; a transaction's work runs at its place in the batch, in
        a savepoint, after the appends queued before it are written (so it sees them).
        """
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        outcomes: list[object] = [None] * len(requests)
        heads: dict[str, StreamHead] = {}
        waiting: list[int] = []

        def write_waiting() -> None:
            if not waiting:
                return
            plan = self._plan_locked(
                conn, [cast(list[PendingAppend], requests[i]) for i in waiting]
            )
            if plan.rows:
                _insert_rows(conn, plan.rows, placed=True)
            for index, outcome in zip(waiting, plan.outcomes, strict=True):
                outcomes[index] = outcome
            heads.update(plan.heads)
            waiting.clear()

        try:
            for index, request in enumerate(requests):
                if isinstance(request, _Work):
                    write_waiting()
                    outcomes[index] = self._run_work(conn, request, heads)
                else:
                    waiting.append(index)
            write_waiting()
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._heads.clear()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from exc
            raise
        return outcomes, heads

    def _run_work(
        self, conn: sqlite3.Connection, request: _Work, heads: dict[str, StreamHead]
    ) -> object:
        """Run a transaction's work in a savepoint of the batch's transaction.

        Returns:
            What the work returned, or the exception it raised (its savepoint rolled back,
            the rest of the batch unharmed).

        Raises:
            StorageError: SQLite rolled back the whole transaction (a full disk, an I/O
                error): the batch fails.
        """
        conn.execute("SAVEPOINT work")
        tx = _SQLiteTransaction(self, conn)
        try:
            result = run_work(id(self), request.work, tx)
            check_finished(tx)
        except BaseException as exc:
            if not conn.in_transaction:
                raise
            conn.execute("ROLLBACK TO work")
            conn.execute("RELEASE work")
            return exc
        conn.execute("RELEASE work")
        heads.update(tx.heads)
        return result

    def _plan_locked(
        self, conn: sqlite3.Connection, requests: Sequence[Sequence[PendingAppend]]
    ) -> BatchPlan:
        """Plan appends against the file, inside a transaction that holds the write lock."""
        names = {append.stream_name for request in requests for append in request}
        heads: dict[str, tuple[int, bytes]] = {}
        for name in names:
            row = conn.execute(_STREAM_HEAD, (name,)).fetchone()
            if row is not None:
                heads[name] = (row[0], row[1])
        given = [i for request in requests for append in request for i in append.given_ids]
        found = self._find_ids(conn, given) if given else {}
        head = conn.execute("SELECT max(global_position) FROM events").fetchone()[0]
        return plan_batch(requests, heads, found, (head or 0) + 1, now_micros())

    def _find_ids(
        self, conn: sqlite3.Connection, ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, int, int]]:
        """Where the given event ids are stored: one lookup per `_IDS_PER_LOOKUP` ids, so an
        append of any size stays under SQLite's limit on bound variables."""
        found: dict[uuid.UUID, tuple[str, int, int]] = {}
        for start in range(0, len(ids), _IDS_PER_LOOKUP):
            chunk = ids[start : start + _IDS_PER_LOOKUP]
            rows = conn.execute(
                "SELECT event_id, stream_name, stream_position, global_position FROM events "
                f"WHERE event_id IN ({', '.join('?' * len(chunk))})",
                [event_id.bytes for event_id in chunk],
            ).fetchall()
            found.update({uuid.UUID(bytes=row[0]): (row[1], row[2], row[3]) for row in rows})
        return found

    def _import(self, batches: Iterator[list[StoredRow]], removals: ImportedRemovals) -> None:
        with self._conn_lock:
            self._check_open()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    head = conn.execute("SELECT max(global_position) FROM events").fetchone()[0]
                    if head:
                        raise NotEmptyError(self.url, head)
                    for batch in batches:
                        try:
                            _insert_rows(conn, batch, placed=True)
                        except sqlite3.IntegrityError as exc:
                            raise ImportFileError(
                                f"an event id appears twice in the events imported ({exc})"
                            ) from exc
                    sql = removal_statements("sqlite")
                    conn.executemany(
                        sql.mark_imported, [(by, position) for position, by in removals.marks]
                    )
                    conn.executemany(sql.insert_metadata, list(removals.metadata_rows()))
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback_quietly(conn)
                    raise
                finally:
                    self._heads.clear()
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    # -- reading -----------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        if backwards:
            sql = self._reads.stream_backwards
            bound = _MAX_POSITION if start is None else start
        else:
            sql = self._reads.stream_forwards
            bound = start or 0
        rows = self._query(sql, (stream_name, bound, limit))
        return decode_rows(rows)

    def _read_stream_payload_page(
        self, stream_name: str, start: int, limit: int
    ) -> list[PayloadEvent]:
        rows = self._query(self._reads.stream_payloads, (stream_name, start, limit))
        return [PayloadEvent(*row) for row in rows]

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        if backwards:
            conditions = ["global_position < ?"]
            params: list[object] = [after if after > 0 else _MAX_POSITION]
        else:
            conditions = ["global_position > ?"]
            params = [after]
        if event_types is not None and len(event_types) <= _IDS_PER_LOOKUP:
            conditions.append(f"event_type IN ({', '.join('?' * len(event_types))})")
            params.extend(event_types)
        elif event_types is not None:
            # More types than SQLite may bind one variable each: one JSON array instead.
            conditions.append("event_type IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(event_types))
        if stream_prefix is not None:
            conditions.append("substr(stream_name, 1, ?) = ?")
            params.extend((len(stream_prefix), stream_prefix))
        conditions.append(self._reads.live)
        order = "DESC" if backwards else "ASC"
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(conditions)} "
            f"ORDER BY global_position {order} LIMIT ?"
        )
        params.append(limit)
        return decode_rows(self._query(sql, tuple(params)))

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        rows = self._query(
            f"SELECT {_COLUMNS}, {self._reads.removed_by} FROM events "
            "WHERE global_position > ? ORDER BY global_position LIMIT ?",
            (after, limit),
        )
        return raw_rows(rows, removed_at=10)

    def _get_event(
        self, event_id: uuid.UUID | None, stream: tuple[str, int] | None
    ) -> RawEvent | None:
        params: tuple[object, ...]
        if event_id is not None:
            where, params = "event_id = ?", (event_id.bytes,)
        else:
            assert stream is not None
            where, params = "stream_name = ? AND stream_position = ?", stream
        removed_by = self._reads.removed_by
        rows = self._query(f"SELECT {_COLUMNS}, {removed_by} FROM events WHERE {where}", params)
        return raw_rows(rows, removed_at=10)[0] if rows else None

    def _read_hash_page(self, after: int, limit: int) -> list[EventHash]:
        rows = self._query(
            "SELECT global_position, hash FROM events WHERE global_position > ? "
            "ORDER BY global_position LIMIT ?",
            (after, limit),
        )
        make = tuple.__new__
        return [make(EventHash, row) for row in rows]

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        rows = self._query(
            "SELECT s.stream_name, e.stream_position, e.global_position FROM streams AS s "
            "JOIN events AS e ON e.stream_name = s.stream_name AND e.stream_position = "
            "(SELECT max(stream_position) FROM events WHERE stream_name = s.stream_name) "
            f"WHERE s.stream_name > ? AND e.stream_position >= {self._reads.listed} "
            "ORDER BY s.stream_name LIMIT ?",
            ("" if after is None else after, limit),
        )
        return [StreamInfo(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def _stream_metadata(self, stream_name: str) -> StreamMetadata:
        if not self._reads.removals:
            return StreamMetadata()
        rows = self._query(removal_statements("sqlite").metadata, (stream_name,))
        return metadata_of(*rows[0]) if rows else StreamMetadata()

    def _retained_streams(self) -> list[str]:
        if not self._reads.removals:
            return []
        return [str(row[0]) for row in self._query(removal_statements("sqlite").retained, ())]

    def get_stream_version(self, stream_name: str) -> int | None:
        validate_stream_name(stream_name)
        rows = self._query(
            "SELECT max(stream_position) FROM events WHERE stream_name = ?", (stream_name,)
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def head_position(self) -> int:
        rows = self._query("SELECT max(global_position) FROM events", ())
        return int(rows[0][0] or 0)

    def stats(self) -> StoreStats:
        rows = self._query(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM streams), "
            "(SELECT max(global_position) FROM events), "
            "(SELECT recorded_at FROM events ORDER BY global_position ASC LIMIT 1), "
            "(SELECT recorded_at FROM events ORDER BY global_position DESC LIMIT 1)",
            (),
        )
        count, streams, head, first, last = rows[0]
        return StoreStats(
            event_count=int(count),
            stream_count=int(streams),
            head_position=int(head or 0),
            first_recorded_at=None if first is None else from_micros(int(first)),
            last_recorded_at=None if last is None else from_micros(int(last)),
        )

    # -- storage beside the events (the seam) ------------------------------------------------

    def _use(self, component: Component) -> None:
        if self.read_only and not self._in_memory:
            self._use_read_only(component)
            return
        # On the writer, under its lock and SQLite's: never a second write connection, and
        # processes that migrate one file at once serialize.
        with self._conn_lock:
            self._check_open()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    apply_component(conn, component, self.path)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback_quietly(conn)
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def _use_read_only(self, component: Component) -> None:
        """A read-only store migrates nothing: its component's tables must be up to date."""
        try:
            with self._reading() as conn:
                found = component_version(conn, component.name)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        if found > component.version:
            raise SchemaVersionError(
                f"{self.path} (component {component.name})", found, component.version
            )
        if found < component.version:
            raise MigrationRequiredError(self.url, component.name, found, component.version)

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    def _query_components(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        return self._query(with_schema(statement, "main"), tuple(params))

    def _component_versions(self) -> dict[str, int]:
        try:
            with self._reading() as conn:
                return component_versions(conn)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        return self._committer.submit(_Work(work))

    def integrity_check(self) -> list[str]:
        """Run SQLite's `PRAGMA integrity_check`.

        Returns:
            The problems found; `["ok"]` when the file is sound.
        """
        return [str(row[0]) for row in self._query("PRAGMA integrity_check", ())]

    def _close(self) -> None:
        with self._conn_lock:
            self._writer.close()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()


@dataclass(slots=True)
class _Work:
    """A transaction's work, queued for the writer like an append."""

    work: Callable[[Transaction], object]


_Request = list[PendingAppend] | _Work


class _SQLiteTransaction(SQLiteStatements):
    """A transaction of the SQLite engine: the writer's connection, inside a savepoint of the
    group commit's transaction; appends are decided against the file under the write lock."""

    def __init__(self, store: SQLiteEventStore, conn: sqlite3.Connection) -> None:
        super().__init__(
            conn, store.max_event_bytes, functools.partial(_translate, location=store.path)
        )
        self._store = store
        self.heads: dict[str, StreamHead] = {}

    def _stream_version(self, stream_name: str) -> int | None:
        try:
            row = self._conn.execute(_STREAM_HEAD, (stream_name,)).fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return None if row is None else int(row[0])

    def _removals(self) -> RemovalTarget:
        return SQLRemovals(self)

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        try:
            plan = self._store._plan_locked(self._conn, [appends])
            outcome = plan.outcomes[0]
            if isinstance(outcome, BaseException):
                raise outcome
            if plan.rows:
                _insert_rows(self._conn, plan.rows, placed=True)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        self.heads.update(plan.heads)
        return outcome
