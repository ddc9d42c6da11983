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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal

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
    GENESIS_HASH,
    decode_rows,
    from_micros,
    now_micros,
    raw_rows,
    validate_stream_name,
)
from eventvault.store._append import (
    PendingAppend,
    PendingRow,
    StoredRow,
    chain,
    resolve_existing_ids,
    version_matches,
    wrong_version,
)
from eventvault.store._groupcommit import GroupCommitter
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.notify import Notifier, shared_notifier
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
SCHEMA_VERSION: Final = 1
"""`PRAGMA user_version` of the storage schema this code writes."""
SCHEMA_FILES: Final = (
    "events.sql",
    "events_stream_uq.sql",
    "events_event_id_uq.sql",
    "streams.sql",
    "events_new_stream.sql",
)
MAX_READERS: Final = 8

Synchronous = Literal["FULL", "NORMAL", "EXTRA"]

_COLUMNS: Final = (
    "stream_name, stream_position, global_position, event_id, event_type, schema_version, "
    "data, metadata, recorded_at, hash"
)
_INSERT: Final = f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


@dataclass(slots=True)
class _Plan:
    """An append that passed its checks: the stream's version and hash it extends."""

    append: PendingAppend
    version: int | None
    previous: bytes


class _Slot:
    """The result of an append whose global position is known once its rows are inserted."""

    __slots__ = ("global_position", "stream_position")

    def __init__(self, stream_position: int) -> None:
        self.stream_position = stream_position
        self.global_position = 0

    def result(self) -> AppendResult:
        return AppendResult(self.stream_position, self.global_position)


class _Batch:
    """The rows of one group commit, inserted together with multi-row INSERTs.

    Global positions are left to SQLite: the rowid of an `INTEGER PRIMARY KEY` table is the
    highest so far plus one, and the inserting connection holds the write lock, so positions
    follow commit order, and the rows of one statement get consecutive positions.
    """

    def __init__(self, conn: sqlite3.Connection, recorded_at: int) -> None:
        self.conn = conn
        self.recorded_at = recorded_at
        self.heads: dict[str, tuple[int, bytes, int]] = {}
        self.rows: list[PendingRow] = []
        self._slots: list[tuple[_Slot, int, str]] = []

    def add(self, plan: _Plan | AppendResult) -> AppendResult | _Slot:
        """Queue a checked append's rows; a retried append keeps its original result."""
        if isinstance(plan, AppendResult):
            return plan
        append = plan.append
        rows = chain(append, plan.version, plan.previous, None, self.recorded_at)
        self.rows.extend(rows)
        last = rows[-1]
        slot = _Slot(last[1])
        self._slots.append((slot, len(self.rows) - 1, append.stream_name))
        self.heads[append.stream_name] = (last[1], last[9], 0)
        return slot

    def flush(self) -> None:
        """Insert the queued rows and give their appends their global positions."""
        if self.rows:
            self.placed(_insert_rows(self.conn, self.rows))

    def placed(self, last: int) -> None:
        """Give the queued appends their global positions, the last row's being `last`."""
        first = last - len(self.rows) + 1
        for slot, index, name in self._slots:
            slot.global_position = first + index
            version, last_hash, _ = self.heads[name]
            if version == slot.stream_position:
                self.heads[name] = (version, last_hash, slot.global_position)
        self.rows = []
        self._slots = []


@functools.cache
def _multi_insert(count: int) -> str:
    """The INSERT of `count` events in one statement."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * count)
    return f"INSERT INTO events ({_COLUMNS}) VALUES {values}"


def _insert_rows(conn: sqlite3.Connection, rows: Sequence[Sequence[object]]) -> int:
    """Insert events with multi-row INSERTs; returns the rowid (global position) of the last."""
    last = 0
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        if len(chunk) == 1:
            last = conn.execute(_INSERT, chunk[0]).lastrowid or 0
        else:
            params = [value for row in chunk for value in row]
            last = conn.execute(_multi_insert(len(chunk)), params).lastrowid or 0
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
        self._conn_lock = threading.Lock()
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
        self._committer: GroupCommitter[list[PendingAppend], list[AppendResult]] = GroupCommitter(
            self._commit_batch
        )

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
            if application_id == 0:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._create_schema(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if application_id == APPLICATION_ID and not self._in_memory:
                # Only a file known to be ours is switched to WAL (it stays so; cheap to repeat).
                conn.execute("PRAGMA journal_mode = WAL")
            if application_id != APPLICATION_ID:
                raise NotAnEventVaultDatabaseError(
                    self.path,
                    f"a SQLite database of another application (application_id "
                    f"{application_id:#x})",
                )
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(self.path, version, SCHEMA_VERSION)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        # Another process may have created it between our check and our lock: look again.
        if conn.execute("PRAGMA application_id").fetchone()[0] != 0:
            return
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        if tables:
            raise NotAnEventVaultDatabaseError(
                self.path, f"a SQLite database of another application (tables: {', '.join(tables)})"
            )
        schema = resources.files("eventvault.store.sqlite") / "schema"
        for name in SCHEMA_FILES:
            conn.execute((schema / name).read_text(encoding="utf-8"))
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
        return self._committer.submit(appends)

    def _commit_batch(
        self, requests: list[list[PendingAppend]]
    ) -> list[list[AppendResult] | BaseException]:
        """Commit a batch of appends atomically; a failing append fails alone.

        The fast path writes the whole batch as one INSERT statement, which SQLite runs as a
        transaction of its own, against the stream heads this writer remembers; the careful
        path reads the heads and event ids inside `BEGIN IMMEDIATE` and decides each append.
        """
        with self._conn_lock:
            self._check_open()
            fast = self._fast_write(requests)
            outcomes, batch = fast if fast is not None else self._careful_write(requests)
            if len(self._heads) + len(batch.heads) > _MAX_CACHED_HEADS:
                self._heads.clear()
            for name, (version, last_hash, _) in batch.heads.items():
                self._heads[name] = (version, last_hash)
        if batch.heads:
            self._notifier.notify()
        return [
            outcome
            if isinstance(outcome, BaseException)
            else [item.result() if isinstance(item, _Slot) else item for item in outcome]
            for outcome in outcomes
        ]

    def _fast_write(
        self, requests: list[list[PendingAppend]]
    ) -> tuple[list[list[AppendResult | _Slot] | BaseException], _Batch] | None:
        """Write a batch as one INSERT against remembered stream heads.

        Returns None, for the careful path, when a head is unknown, when an append would fail
        (a remembered head may be stale, so only the careful path refuses an append), when the
        batch needs more than one statement, or when the insert collides: with the
        stream-position index (another writer moved a remembered head on; versions only grow,
        so a stale head always collides) or with the event-id index (a retry).
        """
        batch = _Batch(self._writer, now_micros())
        outcomes: list[list[AppendResult | _Slot] | BaseException] = []
        for request in requests:
            plans: list[_Plan | AppendResult] = []
            for append in request:
                name = append.stream_name
                head = batch.heads.get(name)
                if head is not None:
                    version: int | None = head[0]
                    previous = head[1]
                else:
                    cached = self._heads.get(name)
                    if cached is None and append.expected_version is not StreamState.NO_STREAM:
                        return None
                    version, previous = (None, GENESIS_HASH) if cached is None else cached
                if not version_matches(append.expected_version, version):
                    return None
                plans.append(_Plan(append, version, previous))
            outcomes.append([batch.add(plan) for plan in plans])
            if len(batch.rows) > _ROWS_PER_INSERT:
                return None
        try:
            # At most _ROWS_PER_INSERT rows: one statement, which outside BEGIN is one
            # transaction, all its rows or none.
            last = _insert_rows(self._writer, batch.rows)
        except sqlite3.IntegrityError:
            for name in batch.heads:
                self._heads.pop(name, None)
            return None
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        batch.placed(last)
        return outcomes, batch

    def _careful_write(
        self, requests: list[list[PendingAppend]]
    ) -> tuple[list[list[AppendResult | _Slot] | BaseException], _Batch]:
        """Decide and write a batch inside `BEGIN IMMEDIATE`, with heads read from the file.

        Each request is checked (versions, stored ids) before any of its events is queued for
        writing, so a request that fails has written nothing and the others commit without
        savepoints.
        """
        outcomes: list[list[AppendResult | _Slot] | BaseException] = []
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        batch = _Batch(conn, now_micros())
        try:
            for request in requests:
                try:
                    plans = [self._plan(batch, append) for append in request]
                except EventVaultError as exc:
                    outcomes.append(exc)
                    continue
                outcomes.append([batch.add(plan) for plan in plans])
            batch.flush()
            conn.execute("COMMIT" if batch.heads else "ROLLBACK")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._heads.clear()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from exc
            raise
        return outcomes, batch

    def _plan(self, batch: _Batch, append: PendingAppend) -> _Plan | AppendResult:
        """Check one append against the stream's head; reads only.

        Returns:
            The append with the stream's version and last hash, ready to write, or the
            original result of an append this one retries.

        Raises:
            WrongExpectedVersionError, DuplicateEventIdError: the append must fail.
        """
        name = append.stream_name
        head = batch.heads.get(name)
        if head is not None:
            version: int | None = head[0]
            previous = head[1]
        else:
            # Read under the write lock, never from memory: a remembered head may be stale.
            row = batch.conn.execute(_STREAM_HEAD, (name,)).fetchone()
            version, previous = (None, GENESIS_HASH) if row is None else (row[0], row[1])
        given = append.given_ids
        found: dict[uuid.UUID, tuple[str, int, int]] = {}
        if given:
            batch.flush()  # so that ids queued earlier in this batch are found too
            found = self._find_ids(batch.conn, given)
        if not version_matches(append.expected_version, version):
            retry = resolve_existing_ids(append, found)
            if retry is None:
                raise wrong_version(append, version)
            return retry
        if found:
            retry = resolve_existing_ids(append, found)
            if retry is not None:
                return retry
        return _Plan(append, version, previous)

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
                            _insert_rows(conn, batch)
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
