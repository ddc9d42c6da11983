"""`eventvault migrate`: bring a PostgreSQL store's schema up to date."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from eventvault.cli.render import stdout_console
from eventvault.cli.stores import URL_ENV, is_embedded, postgres_migrate
from eventvault.errors import InvalidURLError

__all__ = ["migrate"]


def migrate(
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            envvar=URL_ENV,
            help="The store, e.g. postgresql://user@host/db.",
            show_envvar=True,
        ),
    ],
    schema: Annotated[
        str | None,
        typer.Option("--schema", "-s", help="The PostgreSQL schema that holds the store's tables."),
    ] = None,
) -> None:
    """Apply the storage schema migrations a PostgreSQL store is missing, and list them.

    Running it again applies nothing. SQLite and in-memory stores migrate themselves when they
    are opened, so for them there is nothing to do.

    Example:

        eventvault migrate postgresql://app@db.internal/bank --schema events
    \f
    Args:
        url: the store.
        schema: the PostgreSQL schema, when not the engine's default.

    Raises:
        InvalidURLError: the URL names no engine, or PostgreSQL support is not installed.
        StorageError: the database cannot be reached or a migration failed.
    """
    console = stdout_console()
    if is_embedded(url):
        console.print(
            f"[magenta]{escape(url)}[/] is an embedded store (SQLite or memory): it migrates "
            "itself when opened; nothing to do"
        )
        return
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise InvalidURLError(url, f"unknown scheme {scheme!r}; migrate applies to postgresql://")
    apply = postgres_migrate(url)
    applied = apply(url) if schema is None else apply(url, schema=schema)
    if applied:
        versions = ", ".join(str(version) for version in applied)
        console.print(f"applied schema migrations: [bold]{versions}[/]")
    else:
        console.print("the schema is up to date; no migration applied")
