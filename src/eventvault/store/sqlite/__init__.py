"""The embedded SQLite engine."""

from eventvault.store.sqlite.store import APPLICATION_ID, SCHEMA_VERSION, SQLiteEventStore

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteEventStore"]
