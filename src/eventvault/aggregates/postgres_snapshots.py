"""Snapshots in the `snapshots` table of a PostgreSQL store's own schema.

Imported only for a `PostgresEventStore`, so the domain layer needs psycopg only when the
PostgreSQL engine is in use.
"""

from __future__ import annotations

from datetime import datetime

from eventvault.aggregates.snapshots import (
    Snapshot,
    latest_params,
    snapshot_from_row,
    snapshot_row,
)
from eventvault.store.postgres import PostgresEventStore
from eventvault.store.postgres._config import quote_schema

__all__ = ["PostgresSnapshotStore"]


class PostgresSnapshotStore:
    """Snapshots beside a PostgreSQL store's events, through the store's connection pool.

    The table comes with the store's schema (migrations); closing this store closes nothing
    but itself, the event store owns the pool.

    Args:
        event_store: the open PostgreSQL event store whose schema holds the snapshots.
    """

    def __init__(self, event_store: PostgresEventStore) -> None:
        self._store = event_store
        table = f"{quote_schema(event_store.schema)}.snapshots"
        self._save = (
            f"INSERT INTO {table} (stream_name, version, schema_version, state, recorded_at, "
            "taken_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT ON CONSTRAINT snapshots_pk "
            "DO UPDATE SET schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, "
            "recorded_at = EXCLUDED.recorded_at, taken_at = EXCLUDED.taken_at"
        )
        self._latest = (
            f"SELECT stream_name, version, schema_version, state, recorded_at, taken_at "
            f"FROM {table} WHERE stream_name = %s AND schema_version = %s AND version <= %s "
            "AND recorded_at <= %s ORDER BY version DESC LIMIT 1"
        )
        self._delete = f"DELETE FROM {table} WHERE stream_name = %s"

    def save(self, snapshot: Snapshot) -> None:
        """Store a snapshot, replacing one of the same stream and version.

        Raises:
            StorageError: the write failed.
        """
        self._store._execute(self._save, snapshot_row(snapshot))

    def latest(
        self,
        stream_name: str,
        *,
        schema_version: int,
        max_version: int | None = None,
        as_of: datetime | None = None,
    ) -> Snapshot | None:
        """The newest snapshot of a stream that fits the bounds (see `SnapshotStore.latest`)."""
        rows = self._store._fetch(
            self._latest, latest_params(stream_name, schema_version, max_version, as_of)
        )
        return snapshot_from_row(rows[0]) if rows else None

    def delete(self, stream_name: str) -> int:
        """Delete every snapshot of a stream; returns how many were deleted."""
        return self._store._execute(self._delete, (stream_name,))

    def close(self) -> None:
        """Nothing to release: the event store owns the connections."""
