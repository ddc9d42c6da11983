"""A PostgreSQL database beside the store, for read models: `connect_database("postgresql://...")`.

Tables go in one schema of the database (`?schema=NAME`, default `public`), created when missing,
with a `component_migrations` table of its own. Transactions run on a pool, `READ COMMITTED`,
through the store's own transaction loop (`_seam.run_transaction`: run again on a deadlock or a
serialization failure), with a transaction class that refuses appends.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Final

import psycopg

from eventvault.store.database import Database, StatementsOnly
from eventvault.store.postgres._config import parse_url, quote_schema
from eventvault.store.postgres._connections import Connections
from eventvault.store.postgres._errors import translate
from eventvault.store.postgres._seam import PostgresTransaction, run_transaction
from eventvault.store.postgres._sql import Statements
from eventvault.store.postgres.migrations import _lock_key, apply_component
from eventvault.store.seam import Component, Dialect, SQLRow, Transaction, with_schema

__all__ = ["PostgresDatabase"]

DEFAULT_DATABASE_SCHEMA: Final = "public"
_RECORD_TABLE: Final = (
    resources.files("eventvault.store.postgres")
    .joinpath("migrations", "0003", "01_component_migrations.sql")
    .read_text(encoding="utf-8")
)


class _DatabaseTransaction(StatementsOnly, PostgresTransaction):
    """A transaction of a PostgreSQL database beside the store: statements, no appends."""


class PostgresDatabase(Database):
    """Component tables in a PostgreSQL database of the user's choosing.

    Args:
        url: `postgresql://user:password@host:port/database`, with `?schema=NAME` for the schema
            that holds the tables (default `public`) and `?pool_max=N`.

    Raises:
        InvalidURLError: a bad URL or option.
    """

    def __init__(self, url: str) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        options = parse_url(
            url, schema=None if "schema" in query else DEFAULT_DATABASE_SCHEMA, auto_migrate=True
        )
        super().__init__(options.display_url)
        self.schema = options.schema
        self._quoted = quote_schema(options.schema)
        self._sql = Statements(options.schema)
        self._connections = Connections(
            options.conninfo,
            self.url,
            pool_max=options.pool_max,
            unavailable_timeout=options.unavailable_timeout,
            name=f"eventvault-database-{options.schema}",
            is_closed=lambda: self._closed,
        )

    @property
    def dialect(self) -> Dialect:
        return "postgresql"

    def _use(self, component: Component) -> None:
        try:
            with self._connections.connection() as conn:
                with conn.transaction():
                    # The same lock as every migration of the schema: one creator at a time.
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema),))
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._quoted}")
                    row = conn.execute(
                        "SELECT to_regclass(%s)::text", (f"{self._quoted}.component_migrations",)
                    ).fetchone()
                    if row is None or row[0] is None:
                        conn.execute(with_schema(_RECORD_TABLE, self._quoted))
                apply_component(conn, self.schema, component, self.url)
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        return run_transaction(
            work,
            store_id=id(self),
            connections=self._connections,
            sql=self._sql,
            schema=self.schema,
            max_event_bytes=0,
            notifications=None,
            forget_heads=lambda names: None,
            transaction_class=_DatabaseTransaction,
        )

    def _query(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        return self._connections.fetch(with_schema(statement, self._quoted), params)

    def _close(self) -> None:
        self._connections.close()
