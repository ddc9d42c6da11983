"""Versioned schema migrations of the PostgreSQL engine.

Each directory under `migrations/` is one schema version (`0001`, `0002`, ...); it holds one
SQL object per file, applied in file name order. `{schema}` in a file stands for the store's
quoted schema name. The versions applied are recorded in the `schema_version` table; applying
them is idempotent and serialized by an advisory lock, so several processes may migrate at once.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Final

import psycopg

from eventvault.errors import NotAnEventVaultDatabaseError, SchemaVersionError
from eventvault.store.postgres._config import parse_url, quote_schema
from eventvault.store.postgres._errors import translate
from eventvault.store.seam import Component, with_schema

__all__ = [
    "SCHEMA_VERSION",
    "apply_component",
    "apply_migrations",
    "check_encoding",
    "component_versions",
    "migrate",
    "stored_version",
]


def _load_migrations() -> tuple[tuple[int, tuple[str, ...]], ...]:
    root = resources.files("eventvault.store.postgres") / "migrations"
    found: list[tuple[int, tuple[str, ...]]] = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit():
            files = sorted(
                (item for item in entry.iterdir() if item.name.endswith(".sql")),
                key=lambda item: item.name,
            )
            found.append((int(entry.name), tuple(f.read_text(encoding="utf-8") for f in files)))
    found.sort()
    return tuple(found)


MIGRATIONS: Final = _load_migrations()
"""(version, SQL statements in order) for every schema version this code knows."""
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]
"""The newest schema version this code writes and reads."""


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"eventvault.migrate.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def stored_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int | None:
    """The schema version stored in a schema, or None when it holds no eventvault store.

    Raises:
        psycopg.Error: the query failed (the caller translates it).
    """
    quoted = quote_schema(schema)
    row = conn.execute("SELECT to_regclass(%s)::text", (f"{quoted}.schema_version",)).fetchone()
    if row is None or row[0] is None:
        return None
    row = conn.execute(f"SELECT max(version) FROM {quoted}.schema_version").fetchone()
    return 0 if row is None or row[0] is None else int(str(row[0]))


def check_encoding(conn: psycopg.Connection[tuple[object, ...]], location: str) -> None:
    """Refuse a database whose encoding is not UTF8.

    Stream names and event types are text sent as UTF-8; a database in another encoding would
    store some names altered, or refuse them.

    Raises:
        NotAnEventVaultDatabaseError: the database is not UTF8.
        psycopg.Error: the query failed (the caller translates it).
    """
    row = conn.execute("SELECT current_setting('server_encoding')").fetchone()
    encoding = "" if row is None else str(row[0])
    if encoding.upper() != "UTF8":
        raise NotAnEventVaultDatabaseError(
            location,
            f"the database's encoding is {encoding}; eventvault needs a UTF8 database "
            "(CREATE DATABASE name ENCODING 'UTF8' TEMPLATE template0)",
        )


def apply_migrations(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, location: str
) -> list[int]:
    """Bring a schema up to `SCHEMA_VERSION` in one transaction.

    Args:
        conn: a connection in autocommit mode.
        schema: the schema name (already checked).
        location: the store's URL, for messages.

    Returns:
        The versions applied, in order; empty when the schema was up to date.

    Raises:
        SchemaVersionError: the schema is newer than this code knows.
        NotAnEventVaultDatabaseError: the schema holds tables of something else, or the
            database is not UTF8.
        psycopg.Error: a statement failed (the caller translates it).
    """
    check_encoding(conn, location)
    quoted = quote_schema(schema)
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema),))
        current = stored_version(conn, schema)
        if current is None:
            row = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s",
                (schema,),
            ).fetchone()
            if row is not None and int(str(row[0])) > 0:
                raise NotAnEventVaultDatabaseError(
                    location,
                    f"schema {schema!r} holds tables of something else and no eventvault "
                    "schema_version table; choose another schema with ?schema=NAME",
                )
            # CREATE SCHEMA needs CREATE on the database, even with IF NOT EXISTS: an owner
            # given only an existing schema must be able to migrate it.
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if exists is None:
                conn.execute(f"CREATE SCHEMA {quoted}")
            current = 0
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(f"{location} (schema {schema})", current, SCHEMA_VERSION)
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement.replace("{schema}", quoted))
            conn.execute(f"INSERT INTO {quoted}.schema_version (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied


def component_versions(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> dict[str, int]:
    """The version of every component's tables recorded in a schema.

    Raises:
        psycopg.Error: the query failed (the caller translates it).
    """
    rows = conn.execute(
        f"SELECT component, max(version) FROM {quote_schema(schema)}.component_migrations "
        "GROUP BY component"
    ).fetchall()
    return {str(name): int(str(version)) for name, version in rows}


def apply_component(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, component: Component, location: str
) -> list[int]:
    """Bring a component's tables up to date in one transaction, serialized with every other
    migration of the schema by the same advisory lock.

    Args:
        conn: a connection in autocommit mode.
        schema: the schema name (already checked).
        component: the component.
        location: the store's URL, for messages.

    Returns:
        The versions applied, in order; empty when the tables were up to date.

    Raises:
        SchemaVersionError: the schema holds a newer version than the component knows.
        psycopg.Error: a statement failed (the caller translates it).
    """
    quoted = quote_schema(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(schema),))
        current = component_versions(conn, schema).get(component.name, 0)
        if current > component.version:
            raise SchemaVersionError(
                f"{location} (schema {schema}, component {component.name})",
                current,
                component.version,
            )
        pending = component.pending("postgresql", current)
        for migration in pending:
            for statement in migration.statements:
                conn.execute(with_schema(statement, quoted))
            conn.execute(
                f"INSERT INTO {quoted}.component_migrations (component, version) VALUES (%s, %s)",
                (component.name, migration.version),
            )
    return [migration.version for migration in pending]


def migrate(url: str, *, schema: str | None = None) -> list[int]:
    """Create or upgrade the eventvault schema of a PostgreSQL database.

    Safe to run at any time and from several processes at once: versions already applied are
    skipped, and concurrent runs wait for each other.

    Args:
        url: `postgresql://user@host/database`, optionally with `?schema=NAME`.
        schema: the schema to migrate; overrides the URL's `schema` (default `eventvault`).

    Returns:
        The schema versions applied, in order; empty when the schema was up to date.

    Raises:
        InvalidURLError: the URL is not a PostgreSQL URL or has bad options.
        SchemaVersionError: the schema is newer than this eventvault knows.
        NotAnEventVaultDatabaseError: the schema holds tables of something else.
        StorageError: the server cannot be reached or refused a statement.
    """
    options = parse_url(url, schema=schema)
    try:
        with psycopg.connect(options.conninfo, autocommit=True) as conn:
            return apply_migrations(conn, options.schema, options.display_url)
    except psycopg.Error as exc:
        raise translate(exc, options.display_url) from exc
