"""Component tables on a SQLite connection: their migrations, and transactions over them.

Used by the SQLite engine (on its writer, inside the group commit) and by the in-memory engine
(on a private in-memory SQLite database that holds its component tables).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Final

from eventvault.errors import EventVaultError, SchemaVersionError
from eventvault.serialization import now_micros
from eventvault.store.seam import (
    Component,
    Dialect,
    Migration,
    Transaction,
    read_versions,
    with_schema,
)

__all__ = [
    "COMPONENT_MIGRATIONS_DDL",
    "CORE_MIGRATIONS",
    "SQLiteStatements",
    "apply_component",
    "component_version",
    "component_versions",
]

CORE_MIGRATIONS: Final = read_versions(
    resources.files("eventvault.store.sqlite").joinpath("migrations")
)
"""The versions of the store's own tables (storage schema 1, 2, ...)."""
COMPONENT_MIGRATIONS_DDL: Final = (
    resources.files("eventvault.store.sqlite")
    .joinpath("migrations", "0002", "01_component_migrations.sql")
    .read_text(encoding="utf-8")
)
"""The table that records every migration applied, per component (`CREATE ... IF NOT
EXISTS`: the in-memory engine's component database runs it too)."""

Translate = Callable[[sqlite3.Error], EventVaultError]


def _has_record_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'component_migrations'"
    ).fetchone()
    return row is not None


def component_version(conn: sqlite3.Connection, name: str) -> int:
    """The version of a component's tables recorded in a database (0: none)."""
    if not _has_record_table(conn):
        return 0
    row = conn.execute(
        "SELECT max(version) FROM component_migrations WHERE component = ?", (name,)
    ).fetchone()
    return int(row[0] or 0)


def component_versions(conn: sqlite3.Connection) -> dict[str, int]:
    """Every component's recorded version."""
    if not _has_record_table(conn):
        return {}
    rows = conn.execute(
        "SELECT component, max(version) FROM component_migrations GROUP BY component"
    ).fetchall()
    return {str(name): int(version) for name, version in rows}


def run_migrations(conn: sqlite3.Connection, name: str, migrations: Sequence[Migration]) -> None:
    """Run migrations and record them, inside the caller's transaction."""
    conn.execute(COMPONENT_MIGRATIONS_DDL)
    for migration in migrations:
        for statement in migration.statements:
            conn.execute(with_schema(statement, "main"))
        conn.execute(
            "INSERT INTO component_migrations (component, version, applied_at) VALUES (?, ?, ?)",
            (name, migration.version, now_micros()),
        )


def apply_component(conn: sqlite3.Connection, component: Component, location: str) -> list[int]:
    """Bring a component's tables up to date, inside the caller's write transaction.

    Returns:
        The versions applied.

    Raises:
        SchemaVersionError: the database holds a newer version than the component knows.
    """
    current = component_version(conn, component.name)
    if current > component.version:
        raise SchemaVersionError(
            f"{location} (component {component.name})", current, component.version
        )
    pending = component.pending("sqlite", current)
    run_migrations(conn, component.name, pending)
    return [migration.version for migration in pending]


class SQLiteStatements(Transaction):
    """The statements of a transaction on a SQLite connection (the engine adds appends).

    Args:
        conn: the connection, inside an open transaction.
        max_event_bytes: the store's limit on one event.
        translate: turns a SQLite error into eventvault's.
    """

    dialect: Dialect = "sqlite"

    def __init__(
        self, conn: sqlite3.Connection, max_event_bytes: int, translate: Translate
    ) -> None:
        super().__init__(max_event_bytes)
        self._conn = conn
        self._translate = translate

    def _fetch(self, statement: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(with_schema(statement, "main"), params).fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _execute(self, statement: str, params: Sequence[object]) -> int:
        try:
            return self._conn.execute(with_schema(statement, "main"), params).rowcount
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _execute_many(self, statement: str, params: Sequence[Sequence[object]]) -> int:
        try:
            return self._conn.executemany(with_schema(statement, "main"), params).rowcount
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
