"""The embedded engine: one SQLite file, durable, zero set-up.

One write connection, used by whichever thread leads the current group commit (see
`_groupcommit`); readers use connections of their own from a small pool, so a long read never
blocks a writer (WAL). Several processes may open one file: SQLite's write lock serializes their
commits, and `BEGIN IMMEDIATE` takes it before the first read of a transaction, so two writers
never both pass a version check.

See docs/adr/0002-sqlite-durability.md for the durability settings.
"""

from __future__ import annotations

import contextlib
import functools
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
    NotAnEventVaultDatabaseError,
    NotEmptyError,
    SchemaVersionError,
    StorageError,
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
)
from eventvault.store._groupcommit import GroupCommitter
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
from eventvault.store.sqlite._seam import (
    COMPONENT_MIGRATIONS_DDL,
    CORE_MIGRATIONS,
    SQLiteStatements,
    apply_component,
    component_versions,
)
from eventvault.types import (
    AppendResult,
    PayloadEvent,
    RawEvent,
    RecordedEvent,
    StreamInfo,
    StreamState,
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
_READ_STREAM_FORWARDS: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_name = ? AND stream_position >= ? "
    "ORDER BY stream_position LIMIT ?"
)
_READ_STREAM_BACKWARDS: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_name = ? AND stream_position <= ? "
    "ORDER BY stream_position DESC LIMIT ?"
)
_READ_STREAM_PAYLOADS: Final = (
    "SELECT stream_position, event_type, schema_version, data, recorded_at FROM events "
    "WHERE stream_name = ? AND stream_position >= ? ORDER BY stream_position LIMIT ?"
)
_MAX_POSITION: Final = 2**63 - 1


def _translate(exc: sqlite3.Error, location: str) -> EventVaultError:
    """The one place where SQLite's errors become eventvault's."""
    message = str(exc)
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
    return StorageError(f"SQLite error on {location!r}: {message}")


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

    Raises:
        NotAnEventVaultDatabaseError: the file is not a SQLite database, or belongs to another
            application.
        SchemaVersionError: the file was written by a newer eventvault.
        StorageError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 30.0,
        url: str | None = None,
    ) -> None:
        super().__init__(url or path, max_event_bytes=max_event_bytes)
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
        # Reentrant: a transaction's work runs on the writer's thread holding it, and on
        # ":memory:" a read inside that work reads through the writer too.
        self._conn_lock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        if not self._in_memory and os.path.isdir(path):
            raise NotAnEventVaultDatabaseError(path, "it is a directory")
        self._writer = self._connect()
        try:
            self._initialize(self._writer)
        except BaseException:
            self._writer.close()
            raise
        self._notifier = Notifier() if self._in_memory else shared_notifier(os.path.realpath(path))
        # Stream heads (version, last hash) this writer committed: the fast path plans
        # against them. Touched only under the connection lock.
        self._heads: dict[str, tuple[int, bytes]] = {}
        self._committer: GroupCommitter[_Request, object] = GroupCommitter(self._commit_batch)

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout,
            )
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        try:
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc, self.path) from exc
        return conn

    def _initialize(self, conn: sqlite3.Connection) -> None:
        try:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if application_id == 0 or (
                application_id == APPLICATION_ID and version < SCHEMA_VERSION
            ):
                self._migrate_core(conn)
                application_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            if application_id == APPLICATION_ID and not self._in_memory:
                # Only a file known to be ours is switched to WAL (it stays so; cheap to repeat).
                conn.execute("PRAGMA journal_mode = WAL")
            if application_id != APPLICATION_ID:
                raise NotAnEventVaultDatabaseError(
                    self.path,
                    f"a SQLite database of another application (application_id "
                    f"{application_id:#x})",
                )
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(self.path, version, SCHEMA_VERSION)
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
                tables = [
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                ]
                if tables:
                    raise NotAnEventVaultDatabaseError(
                        self.path,
                        f"a SQLite database of another application (tables: {', '.join(tables)})",
                    )
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
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to read with: the writer's under its lock for ":memory:", else a pooled
        reader, so a read never waits for a commit."""
        self._check_open()
        if self._in_memory:
            with self._conn_lock:
                yield self._writer
            return
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
        try:
            yield conn
        finally:
            with self._readers_lock:
                if len(self._readers) < MAX_READERS and not self._closed:
                    self._readers.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._reading() as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        return cast(list[AppendResult], self._committer.submit(appends))

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
        heads: dict[str, tuple[int, bytes]] = {}
        for request in requests:
            for append in request:
                name = append.stream_name
                if name in heads:
                    continue
                cached = self._heads.get(name)
                if cached is not None:
                    heads[name] = cached
                elif append.expected_version is not StreamState.NO_STREAM:
                    return None
        # Global positions 1, 2, ... stand for offsets from the one SQLite gives the first row.
        plan = plan_batch(requests, heads, {}, 1, now_micros())
        if not plan.rows or plan.failed or len(plan.rows) > _ROWS_PER_INSERT:
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
        marks = ", ".join("?" * len(ids))
        rows = conn.execute(
            "SELECT event_id, stream_name, stream_position, global_position FROM events "
            f"WHERE event_id IN ({marks})",
            [event_id.bytes for event_id in ids],
        ).fetchall()
        return {uuid.UUID(bytes=row[0]): (row[1], row[2], row[3]) for row in rows}

    def _import(self, batches: Iterator[list[StoredRow]]) -> None:
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
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
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
            sql = _READ_STREAM_BACKWARDS
            bound = _MAX_POSITION if start is None else start
        else:
            sql = _READ_STREAM_FORWARDS
            bound = start or 0
        rows = self._query(sql, (stream_name, bound, limit))
        return decode_rows(rows)

    def _read_stream_payload_page(
        self, stream_name: str, start: int, limit: int
    ) -> list[PayloadEvent]:
        rows = self._query(_READ_STREAM_PAYLOADS, (stream_name, start, limit))
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
        if event_types is not None:
            conditions.append(f"event_type IN ({', '.join('?' * len(event_types))})")
            params.extend(event_types)
        if stream_prefix is not None:
            conditions.append("substr(stream_name, 1, ?) = ?")
            params.extend((len(stream_prefix), stream_prefix))
        order = "DESC" if backwards else "ASC"
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(conditions)} "
            f"ORDER BY global_position {order} LIMIT ?"
        )
        params.append(limit)
        return decode_rows(self._query(sql, tuple(params)))

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE global_position > ? "
            "ORDER BY global_position LIMIT ?",
            (after, limit),
        )
        return raw_rows(rows)

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        rows = self._query(
            "SELECT s.stream_name, e.stream_position, e.global_position FROM streams AS s "
            "JOIN events AS e ON e.stream_name = s.stream_name AND e.stream_position = "
            "(SELECT max(stream_position) FROM events WHERE stream_name = s.stream_name) "
            "WHERE s.stream_name > ? ORDER BY s.stream_name LIMIT ?",
            ("" if after is None else after, limit),
        )
        return [StreamInfo(str(r[0]), int(r[1]), int(r[2])) for r in rows]

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
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

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
