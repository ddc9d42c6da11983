"""`eventvault migrate`: bring a store's storage schema up to date (PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from eventvault.cli.render import stdout_console
from eventvault.cli.stores import URL_ENV
from eventvault.store.registry import engine_for
from eventvault.store.url import parse_url

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
    """Apply the storage schema migrations a store is missing (PostgreSQL), and list them.

    Running it again applies nothing. SQLite and in-memory stores migrate themselves when they
    are opened, so for them there is nothing to do; an engine registered by a package says
    which it does.

    Example:

        eventvault migrate postgresql://app@db.internal/bank --schema events
    \f
    Args:
        url: the store.
        schema: the PostgreSQL schema, when not the engine's default.

    Raises:
        InvalidURLError: the URL names no engine, or the engine's driver is not installed.
        StorageError: the database cannot be reached or a migration failed.
    """
    console = stdout_console()
    parsed = parse_url(url)
    engine = engine_for(parsed)
    if engine.migrate is None:
        console.print(
            f"[magenta]{escape(parsed.display)}[/] is a {parsed.scheme} store: it migrates "
            "itself when opened; nothing to do"
        )
        return
    applied = engine.migrate(parsed, schema)
    if applied:
        versions = ", ".join(str(version) for version in applied)
        console.print(f"applied schema migrations: [bold]{versions}[/]")
    else:
        console.print("the schema is up to date; no migration applied")
