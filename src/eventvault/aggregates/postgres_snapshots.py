"""Snapshots in the `snapshots` table of a PostgreSQL store's own schema.

Imported only for a `PostgresEventStore`, so the domain layer needs psycopg only when the
PostgreSQL engine is in use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from eventvault.aggregates.snapshots import Snapshot, snapshot_from_row
from eventvault.serialization import to_micros
from eventvault.store.postgres import PostgresEventStore
from eventvault.store.postgres._config import quote_schema

__all__ = ["PostgresSnapshotStore"]

_MAX_INT: Final = 2**63 - 1


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
        self._store._execute(
            self._save,
            (
                snapshot.stream_name,
                snapshot.version,
                snapshot.schema_version,
                snapshot.state,
                to_micros(snapshot.recorded_at),
                to_micros(snapshot.taken_at),
            ),
        )

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
            self._latest,
            (
                stream_name,
                schema_version,
                _MAX_INT if max_version is None else max_version,
                _MAX_INT if as_of is None else to_micros(as_of),
            ),
        )
        return snapshot_from_row(rows[0]) if rows else None

    def delete(self, stream_name: str) -> int:
        """Delete every snapshot of a stream; returns how many were deleted."""
        return self._store._execute(self._delete, (stream_name,))

    def close(self) -> None:
        """Nothing to release: the event store owns the connections."""
