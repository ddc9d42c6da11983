"""`eventvault migrate`: create or upgrade a store's tables and those of its components."""

from __future__ import annotations

import urllib.parse
from typing import Annotated

import typer
from rich import box
from rich.table import Table

# The features whose components `migrate` knows: importing them registers their tables.
import eventvault.aggregates
import eventvault.projections
import eventvault.schema
import eventvault.server.tokens  # noqa: F401
from eventvault.cli.errors import CommandLineError
from eventvault.cli.render import stdout_console
from eventvault.cli.stores import URL_ENV
from eventvault.store.migrate import migrate as migrate_store
from eventvault.store.seam import CORE_COMPONENT
from eventvault.store.url import parse_url

__all__ = ["migrate"]


def _with_schema(url: str, schema: str) -> str:
    if parse_url(url).scheme not in ("postgresql", "postgres"):
        raise CommandLineError("--schema", "only a PostgreSQL store has schemas")
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", schema))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def migrate(
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            envvar=URL_ENV,
            help="The store: a SQLite file, sqlite:///path, or postgresql://user@host/db.",
            show_envvar=True,
        ),
    ],
    schema: Annotated[
        str | None,
        typer.Option("--schema", "-s", help="The PostgreSQL schema that holds the store's tables."),
    ] = None,
) -> None:
    """Create or upgrade the tables of a store and of every component beside its events.

    A store's own tables and each component's (the aggregate snapshots, ...) are versioned;
    the versions applied are recorded in the store. Running it again applies nothing, and
    concurrent runs wait for each other. SQLite stores also upgrade their own tables when
    opened; a PostgreSQL store only does when opened with ?auto_migrate=true, so run this at
    deploy time, as the role that owns the schema.

    Example:

        eventvault migrate postgresql://app@db.internal/bank --schema events

        eventvault migrate bank.db
    \f
    Args:
        url: the store.
        schema: the PostgreSQL schema, when not the engine's default.

    Raises:
        CommandLineError: an in-memory store, or --schema for a store that is not PostgreSQL.
        InvalidURLError: the URL names no engine, or PostgreSQL support is not installed.
        StorageError: the database cannot be reached or a migration failed.
    """
    if parse_url(url).scheme == "memory":
        raise CommandLineError("URL", "an in-memory store lives in one process: nothing to migrate")
    if schema is not None:
        url = _with_schema(url, schema)
    result = migrate_store(url)
    applied: dict[str, list[int]] = {}
    for step in result.applied:
        applied.setdefault(step.component, []).append(step.version)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("component")
    table.add_column("version", justify="right")
    table.add_column("applied now")
    for name, version in sorted(
        result.versions.items(), key=lambda item: item[0] != CORE_COMPONENT
    ):
        done = applied.get(name, [])
        table.add_row(name, str(version), ", ".join(map(str, done)) if done else "-")
    console = stdout_console()
    console.print(table)
    if result.applied:
        console.print(f"applied {len(result.applied)} migration(s)")
    else:
        console.print("everything is up to date; no migration applied")
