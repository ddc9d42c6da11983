"""The PostgreSQL engine (needs the `postgres` extra: psycopg 3 and psycopg_pool)."""

from eventvault.store.postgres._horizon import BlockingTransaction, HorizonStatus
from eventvault.store.postgres.migrations import SCHEMA_VERSION, migrate
from eventvault.store.postgres.store import PostgresEventStore

__all__ = [
    "SCHEMA_VERSION",
    "BlockingTransaction",
    "HorizonStatus",
    "PostgresEventStore",
    "migrate",
]
