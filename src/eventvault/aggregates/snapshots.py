"""Snapshots: an aggregate's state at a version, stored apart from its events.

A snapshot is derived data: deleting every snapshot loses nothing, loads merely replay more
events. Each records the aggregate class's `snapshot_version`; a load asks only for snapshots of
the current one, so changing the shape of the state (and bumping the version) ignores the old.

`SnapshotStore` is the protocol. `StoreSnapshotStore` keeps snapshots in a `snapshots` table of
the event store's own database, through the store's seam (a component with its migrations, its
writes in the store's transactions), on every engine; `MemorySnapshotStore` keeps them in a
dict beside any store; `snapshot_store_for` gives the store's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from eventvault.errors import StorageError
from eventvault.serialization import from_micros, to_micros
from eventvault.store.base import EventStore
from eventvault.store.seam import (
    Component,
    Dialect,
    Transaction,
    load_migrations,
    register_component,
)

__all__ = [
    "SNAPSHOTS",
    "MemorySnapshotStore",
    "Snapshot",
    "SnapshotStore",
    "StoreSnapshotStore",
    "snapshot_store_for",
]

SNAPSHOTS: Final = register_component(
    Component(
        "snapshots",
        load_migrations("eventvault.aggregates", "migrations"),
        # Every snapshot of a stream holds state derived from its first events: a removal of
        # any of them deletes them all, so that a snapshot never brings back what was removed
        # and a load replays what is left (DESIGN.md section 10).
        on_stream_removal={
            "sqlite": ("DELETE FROM snapshots WHERE stream_name = ?",),
            "postgresql": ("DELETE FROM {schema}.snapshots WHERE stream_name = %s",),
        },
    )
)
"""The snapshot tables: `eventvault migrate` creates them, `StoreSnapshotStore` uses them."""


class Snapshot(msgspec.Struct, frozen=True):
    """An aggregate's state after the event at `version` of its stream.

    Attributes:
        stream_name: the aggregate's stream.
        version: the stream position of the last event the state includes.
        schema_version: the aggregate class's `snapshot_version` when it was taken.
        state: the encoded state (msgpack of the aggregate's `state_type`).
        recorded_at: when the last event the state includes was recorded.
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
            as_of: only snapshots whose last event was recorded at or before this time.

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
    """Snapshots in a dict, beside any event store: for tests. They last as long as the
    object."""

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


_COLUMNS: Final = "stream_name, version, schema_version, state, recorded_at, taken_at"
_MAX_INT: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class _Statements:
    save: str
    latest: str
    delete: str
    table_exists: str


_STATEMENTS: Final[dict[Dialect, _Statements]] = {
    "sqlite": _Statements(
        save=f"INSERT OR REPLACE INTO snapshots ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        latest=(
            f"SELECT {_COLUMNS} FROM snapshots WHERE stream_name = ? AND schema_version = ? "
            "AND version <= ? AND recorded_at <= ? ORDER BY version DESC LIMIT 1"
        ),
        delete="DELETE FROM snapshots WHERE stream_name = ?",
        table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'",
    ),
    "postgresql": _Statements(
        save=(
            f"INSERT INTO {{schema}}.snapshots ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT ON CONSTRAINT snapshots_pk DO UPDATE SET "
            "schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, "
            "recorded_at = EXCLUDED.recorded_at, taken_at = EXCLUDED.taken_at"
        ),
        latest=(
            f"SELECT {_COLUMNS} FROM {{schema}}.snapshots WHERE stream_name = %s AND "
            "schema_version = %s AND version <= %s AND recorded_at <= %s "
            "ORDER BY version DESC LIMIT 1"
        ),
        delete="DELETE FROM {schema}.snapshots WHERE stream_name = %s",
        table_exists="SELECT 1 WHERE to_regclass('{schema}.snapshots') IS NOT NULL",
    ),
}


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


class StoreSnapshotStore:
    """Snapshots in the `snapshots` table of an event store's own database, on any engine.

    The table is the `SNAPSHOTS` component: created or upgraded when this store is made
    (where the event store may migrate; on PostgreSQL without `?auto_migrate=true`, by
    `eventvault migrate`). Saves run in the event store's transactions (on SQLite, through its
    one writer); loads read what is committed (on SQLite, on a reader connection). Closing it
    releases nothing: the event store owns the connections.

    Args:
        event_store: the open event store whose database keeps the snapshots.

    Raises:
        MigrationRequiredError: the table is missing or old and the store may not migrate.
        StorageError: the table cannot be created.
    """

    def __init__(self, event_store: EventStore) -> None:
        event_store.use(SNAPSHOTS)
        self._store = event_store
        self._sql = _STATEMENTS[event_store.dialect]

    def save(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing one of the same stream and version.

        Raises:
            StorageError: the write failed.
        """
        row = snapshot_row(snapshot)
        self._write(lambda tx: tx.execute(self._sql.save, row))

    def _write(self, write: Callable[[Transaction], int]) -> int:
        """Run a write in the store's transaction; a table dropped behind the store is made
        again and the write run once more.

        Snapshots are derived data, so someone may drop the table to clear them; every write
        failing from then on would only cost load speed, silently.
        """
        try:
            return self._store.run_transaction(write)
        except StorageError:
            if self._table_exists():
                raise

        def recreate_and_write(tx: Transaction) -> int:
            for migration in SNAPSHOTS.migrations[tx.dialect]:
                for statement in migration.statements:
                    tx.execute(statement)
            return write(tx)

        return self._store.run_transaction(recreate_and_write)

    def _table_exists(self) -> bool:
        return bool(self._store.query(self._sql.table_exists))

    def latest(
        self,
        stream_name: str,
        *,
        schema_version: int,
        max_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Snapshot | None:
        """The newest snapshot of a stream that fits the bounds (see `SnapshotStore.latest`)."""
        rows = self._store.query(
            self._sql.latest, latest_params(stream_name, schema_version, max_version, as_of)
        )
        return snapshot_from_row(rows[0]) if rows else None

    def delete(self, stream_name: str) -> int:
        """Delete every snapshot of a stream; returns how many were deleted."""

        return self._write(lambda tx: tx.execute(self._sql.delete, (stream_name,)))

    def close(self) -> None:
        """Nothing to release: the event store owns the connections."""


def snapshot_store_for(event_store: EventStore) -> SnapshotStore:
    """The snapshot store that keeps snapshots beside an event store's events.

    Args:
        event_store: an open event store, of any engine.

    Returns:
        A `StoreSnapshotStore` on it. The caller closes it (which releases nothing).

    Raises:
        MigrationRequiredError: the snapshot table is missing or old and the store may not
            migrate (run `eventvault migrate URL`).
        StorageError: the table cannot be created.
    """
    return StoreSnapshotStore(event_store)
