"""Snapshots: an aggregate's state at a version, stored apart from its events.

A snapshot is derived data: deleting every snapshot loses nothing, loads merely replay more
events. Each records the aggregate class's `snapshot_version`; a load asks only for snapshots of
the current one, so changing the shape of the state (and bumping the version) ignores the old.

`SnapshotStore` is the protocol; `MemorySnapshotStore` keeps snapshots in a dict and works beside
any engine, `SQLiteSnapshotStore` keeps them in a `snapshots` table of the event store's own
file, `PostgresSnapshotStore` (in `postgres_snapshots`) in the store's PostgreSQL schema, and
`snapshot_store_for` picks one for an event store.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from datetime import datetime
from importlib import resources
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from eventvault.aggregates.errors import SnapshotStoreUnavailableError
from eventvault.errors import NotAnEventVaultDatabaseError, StorageError, StoreClosedError
from eventvault.serialization import from_micros, to_micros
from eventvault.store.base import EventStore
from eventvault.store.memory import MemoryEventStore
from eventvault.store.sqlite.store import APPLICATION_ID, SQLiteEventStore

__all__ = [
    "MemorySnapshotStore",
    "SQLiteSnapshotStore",
    "Snapshot",
    "SnapshotStore",
    "snapshot_store_for",
]


class Snapshot(msgspec.Struct, frozen=True):
    """An aggregate's state after the event at `version` of its stream.

    Attributes:
        stream_name: the aggregate's stream.
        version: the stream position of the last event the state includes.
        schema_version: the aggregate class's `snapshot_version` when it was taken.
        state: the encoded state (msgpack of the aggregate's `state_type`, datetimes as
            RFC 3339 text so that they keep their UTC offset).
        recorded_at: the latest `recorded_at` among the events the state includes (clocks may
            go back, so it need not be the last event's).
        taken_at: when the snapshot was taken.
    """

    stream_name: str
    version: int
    schema_version: int
    state: bytes
    recorded_at: datetime
    taken_at: datetime


@runtime_checkable
class SnapshotStore(Protocol):
    """Where snapshots are kept. Implementations must be safe to call from several threads."""

    def save(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing one of the same stream and version.

        Raises:
            StorageError: the snapshot could not be stored.
        """
        ...

    def latest(
        self,
        stream_name: str,
        *,
        schema_version: int,
        max_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Snapshot | None:
        """The newest snapshot of a stream that fits the bounds.

        Args:
            stream_name: the stream.
            schema_version: only snapshots taken with this `snapshot_version`.
            max_version: only snapshots at or below this version; None for any.
            as_of: only snapshots whose `recorded_at` is at or before this time, that is,
                all of whose events were recorded by then.

        Returns:
            The snapshot with the highest version that fits, or None.
        """
        ...

    def delete(self, stream_name: str) -> int:
        """Delete every snapshot of a stream.

        Returns:
            How many were deleted.
        """
        ...

    def close(self) -> None:
        """Release connections; closing twice is harmless."""
        ...


class MemorySnapshotStore:
    """Snapshots in a dict, for tests and for engines whose file another connection cannot
    share (SQLite `:memory:`). They last as long as the object."""

    def __init__(self) -> None:
        self._snapshots: dict[str, dict[int, Snapshot]] = {}
        self._lock = threading.Lock()

    def save(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing one of the same stream and version."""
        with self._lock:
            self._snapshots.setdefault(snapshot.stream_name, {})[snapshot.version] = snapshot

    def latest(
        self,
        stream_name: str,
        *,
        schema_version: int,
        max_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Snapshot | None:
        """The newest snapshot of a stream that fits the bounds (see `SnapshotStore.latest`)."""
        with self._lock:
            candidates = list(self._snapshots.get(stream_name, {}).values())
        best: Snapshot | None = None
        for snapshot in candidates:
            if (
                snapshot.schema_version == schema_version
                and (max_version is None or snapshot.version <= max_version)
                and (as_of is None or snapshot.recorded_at <= as_of)
                and (best is None or snapshot.version > best.version)
            ):
                best = snapshot
        return best

    def delete(self, stream_name: str) -> int:
        """Delete every snapshot of a stream; returns how many were deleted."""
        with self._lock:
            return len(self._snapshots.pop(stream_name, {}))

    def close(self) -> None:
        """Forget every snapshot."""
        with self._lock:
            self._snapshots = {}


_INSERT: Final = (
    "INSERT OR REPLACE INTO snapshots "
    "(stream_name, version, schema_version, state, recorded_at, taken_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_LATEST: Final = (
    "SELECT stream_name, version, schema_version, state, recorded_at, taken_at FROM snapshots "
    "WHERE stream_name = ? AND schema_version = ? AND version <= ? AND recorded_at <= ? "
    "ORDER BY version DESC LIMIT 1"
)
_DELETE: Final = "DELETE FROM snapshots WHERE stream_name = ?"
_DDL: Final = (
    resources.files("eventvault.aggregates")
    .joinpath("schema", "snapshots.sql")
    .read_text(encoding="utf-8")
)
_MAX_INT: Final = 2**63 - 1


def snapshot_row(snapshot: Snapshot) -> tuple[str, int, int, bytes, int, int]:
    """A snapshot as a row of a `snapshots` table (times in microseconds since the epoch)."""
    return (
        snapshot.stream_name,
        snapshot.version,
        snapshot.schema_version,
        snapshot.state,
        to_micros(snapshot.recorded_at),
        to_micros(snapshot.taken_at),
    )


def latest_params(
    stream_name: str, schema_version: int, max_version: int | None, as_of: datetime | None
) -> tuple[str, int, int, int]:
    """The parameters of the query for the newest snapshot within the bounds (None: no bound)."""
    return (
        stream_name,
        schema_version,
        _MAX_INT if max_version is None else max_version,
        _MAX_INT if as_of is None else to_micros(as_of),
    )


def snapshot_from_row(row: tuple[Any, ...]) -> Snapshot:
    """A `Snapshot` from a row of a `snapshots` table (times in microseconds since the epoch)."""
    name, version, schema, state, recorded_at, taken_at = row
    return Snapshot(
        str(name),
        int(version),
        int(schema),
        bytes(state),
        from_micros(int(recorded_at)),
        from_micros(int(taken_at)),
    )


class SQLiteSnapshotStore:
    """Snapshots in a `snapshots` table of an eventvault SQLite file, on a connection of its own.

    The table is created when missing. Writes use `synchronous = NORMAL`: a snapshot lost to a
    power cut costs a longer replay, never data.

    Args:
        path: the file of a `SQLiteEventStore` (its `path`).
        busy_timeout: seconds to wait for another connection's write lock.

    Raises:
        NotAnEventVaultDatabaseError: the file is not an eventvault store (or is `:memory:`).
        StorageError: the file cannot be opened or the table created.
    """

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        if path == ":memory:" or not path:
            raise NotAnEventVaultDatabaseError(
                path, "a private in-memory database cannot be shared; use MemorySnapshotStore"
            )
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        try:
            # mode=rw: never create a file; the event store must have made it.
            self._conn = sqlite3.connect(
                f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            application_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            if application_id != APPLICATION_ID:
                raise NotAnEventVaultDatabaseError(
                    path, f"application_id is {application_id:#x}, not an eventvault store"
                )
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute(_DDL)
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc) from exc
            raise

    def _translate(self, exc: sqlite3.Error) -> StorageError:
        """The one place where SQLite's errors become eventvault's."""
        message = str(exc)
        if "not a database" in message or "malformed" in message:
            return NotAnEventVaultDatabaseError(self.path, message)
        return StorageError(f"snapshots in {self.path!r}: {message}")

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._closed:
                raise StoreClosedError(self.path)
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        with self._lock:
            if self._closed:
                raise StoreClosedError(self.path)
            try:
                try:
                    return self._conn.execute(sql, params).rowcount
                except sqlite3.OperationalError as exc:
                    if "no such table" not in str(exc):
                        raise
                # Snapshots are derived data, so someone may drop the table to clear them;
                # make it again rather than fail every write from then on.
                self._conn.execute(_DDL)
                return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def save(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing one of the same stream and version.

        Raises:
            StorageError: the write failed (for instance, the file stayed locked).
        """
        self._write(_INSERT, snapshot_row(snapshot))

    def latest(
        self,
        stream_name: str,
        *,
        schema_version: int,
        max_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Snapshot | None:
        """The newest snapshot of a stream that fits the bounds (see `SnapshotStore.latest`)."""
        rows = self._query(_LATEST, latest_params(stream_name, schema_version, max_version, as_of))
        return snapshot_from_row(rows[0]) if rows else None

    def delete(self, stream_name: str) -> int:
        """Delete every snapshot of a stream; returns how many were deleted."""
        return self._write(_DELETE, (stream_name,))

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def snapshot_store_for(event_store: EventStore) -> SnapshotStore:
    """A snapshot store that keeps snapshots beside an event store's events.

    Args:
        event_store: an open event store.

    Returns:
        `SQLiteSnapshotStore` on the same file for a SQLite file; `PostgresSnapshotStore` in
        the same schema for PostgreSQL; `MemorySnapshotStore` for the in-memory engine and for
        SQLite `:memory:` (whose database no other connection can open). The caller closes it.

    Raises:
        SnapshotStoreUnavailableError: no snapshot store is known for the engine.
        NotAnEventVaultDatabaseError, StorageError: the SQLite file cannot take the table.
    """
    if isinstance(event_store, SQLiteEventStore):
        if event_store.path == ":memory:":
            return MemorySnapshotStore()
        return SQLiteSnapshotStore(event_store.path)
    if isinstance(event_store, MemoryEventStore):
        return MemorySnapshotStore()
    engine = type(event_store)
    if engine.__module__.startswith("eventvault.store.postgres"):
        # Imported here: psycopg is needed only when the PostgreSQL engine is in use.
        from eventvault.aggregates.postgres_snapshots import PostgresSnapshotStore
        from eventvault.store.postgres import PostgresEventStore

        if isinstance(event_store, PostgresEventStore):
            return PostgresSnapshotStore(event_store)
    raise SnapshotStoreUnavailableError(f"{engine.__module__}.{engine.__qualname__}")
