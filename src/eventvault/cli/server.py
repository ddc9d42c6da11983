"""`eventvault serve` and `eventvault token`: the HTTP server and the tokens it accepts."""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Annotated, Final

import typer
from rich import box
from rich.table import Table

from eventvault.cli.errors import CommandLineError, reporting_errors
from eventvault.cli.options import JsonOutput, StoreURL
from eventvault.cli.projections import load_projections
from eventvault.cli.render import stdout_console
from eventvault.cli.stores import DEFAULT_URL, is_in_memory, open_store

__all__ = ["serve", "token_app"]

_SCOPES_HELP: Final = "read (streams, the log, subscriptions), write (appends), admin (everything)"


def _server_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"eventvault.server.{name}")
    except ImportError as exc:
        raise CommandLineError(
            "serve",
            f"the server needs the server extra: pip install 'eventvault[server]' ({exc})",
        ) from exc


def _scopes(values: list[str], option: str) -> list[str]:
    scopes = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for scope in scopes:
        if scope not in ("read", "write", "admin"):
            raise CommandLineError(
                option, f"{scope!r} is not a scope; the scopes are {_SCOPES_HELP}"
            )
    return scopes


def serve(
    url: Annotated[
        str,
        typer.Argument(
            metavar="[URL]",
            envvar="EVENTVAULT_URL",
            help="The store to serve: a file path, sqlite:///path.db, memory:// or postgresql://...",
            show_envvar=True,
        ),
    ] = DEFAULT_URL,
    host: Annotated[
        str, typer.Option("--host", help="The address to listen on; put a TLS proxy in front.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="The port (0: any free one).")
    ] = 2113,
    anonymous: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-anonymous",
            help=f"Scopes of requests without a token ({_SCOPES_HELP}); off unless given.",
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Refuse appends and imports (403).")
    ] = False,
    heartbeat: Annotated[
        float,
        typer.Option(
            "--heartbeat", min=0.05, help="Seconds between heartbeats of quiet subscriptions."
        ),
    ] = 15.0,
    max_request_bytes: Annotated[
        int, typer.Option("--max-request-bytes", min=1, help="The largest request body (413).")
    ] = 64 * 1024 * 1024,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    projections: Annotated[
        str | None,
        typer.Option(
            "--projections",
            metavar="MODULE",
            help="The application's projections (module or module:ATTRIBUTE), whose health "
            "and lag are served at /v1/projections and in /metrics.",
        ),
    ] = None,
) -> None:
    """Serve a store over HTTP: JSON under /v1, subscriptions as Server-Sent Events, OpenAPI at
    /docs, /health and /metrics.

    Every request needs a bearer token (`eventvault token create`) unless --allow-anonymous
    gives requests without one some scopes. SIGTERM or Ctrl-C stops it: appends in flight are
    answered, subscriptions end (clients resume with Last-Event-ID), the store is closed.

    Example:

        eventvault serve

        eventvault serve postgresql://app@db/bank --host 0.0.0.0 --port 8080

        eventvault serve memory:// --allow-anonymous read,write
    \f
    Args:
        url: the store.
        host: the address to listen on.
        port: the port.
        anonymous: scopes of requests without a token.
        read_only: open the store read-only.
        heartbeat: seconds between heartbeats.
        max_request_bytes: the largest request body.
        log_level: uvicorn's log level.
        projections: the module that lists the application's projections.
    """
    run = _server_module("run")
    app = _server_module("app")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    run.serve(
        url,
        host=host,
        port=port,
        anonymous=_scopes(anonymous or [], "--allow-anonymous"),
        read_only=read_only,
        settings=app.ServerSettings(heartbeat=heartbeat, max_request_bytes=max_request_bytes),
        log_level=log_level,
        projections=load_projections(projections) if projections else (),
    )


token_app = typer.Typer(
    name="token",
    help="Manage the bearer tokens `eventvault serve` accepts, stored hashed in the store.",
    no_args_is_help=True,
)


def _store_url(url: str) -> str:
    if is_in_memory(url):
        raise CommandLineError(
            "--url",
            "an in-memory store lives in one process: its server cannot see tokens made here",
        )
    return url


def create(
    name: Annotated[str, typer.Argument(help="Who uses it: recorded as each event's actor.")],
    scope: Annotated[
        list[str], typer.Option("--scope", "-s", help=f"What it allows: {_SCOPES_HELP}.")
    ],
    prefix: Annotated[
        list[str] | None,
        typer.Option("--prefix", help="Limit it to streams whose names start with this."),
    ] = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Create a token and print it once: only its hash is stored.

    Example:

        eventvault token create billing --scope read,write --prefix invoice-
    \f
    Args:
        name: the token's name.
        scope: its scopes.
        prefix: stream prefixes it is limited to.
        url: the store.
    """
    tokens = _server_module("tokens")
    with open_store(_store_url(url), read_only=False) as store:
        info, secret = tokens.create_token(store, name, _scopes(scope, "--scope"), prefix or [])
    console = stdout_console()
    console.print(secret, soft_wrap=True)
    typer.echo(
        f"token {info.token_id} ({info.name}: {', '.join(info.scopes)}"
        f"{'; streams ' + ', '.join(info.prefixes) if info.prefixes else ''}); "
        "keep it secret, it is not shown again",
        err=True,
    )


def list_(json_output: JsonOutput = False, url: StoreURL = DEFAULT_URL) -> None:
    """List the tokens, active and revoked (never their secrets).
    \f
    Args:
        json_output: JSON Lines instead of a table.
        url: the store.
    """
    tokens = _server_module("tokens")
    with open_store(_store_url(url), read_only=False) as store:
        found = tokens.list_tokens(store)
    if json_output:
        import msgspec

        for info in found:
            typer.echo(msgspec.json.encode(info).decode())
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("id", "name", "scopes", "streams", "created", "revoked"):
        table.add_column(column)
    for info in found:
        table.add_row(
            info.token_id,
            info.name,
            ",".join(info.scopes),
            ", ".join(info.prefixes) or "all",
            f"{info.created_at:%Y-%m-%d %H:%M:%S}",
            "-" if info.revoked_at is None else f"{info.revoked_at:%Y-%m-%d %H:%M:%S}",
        )
    stdout_console().print(table)


def revoke(
    token: Annotated[str, typer.Argument(help="The token's id or name.")],
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Revoke a token: servers refuse it within 5 seconds.
    \f
    Args:
        token: its id or name.
        url: the store.
    """
    tokens = _server_module("tokens")
    with open_store(_store_url(url), read_only=False) as store:
        info = tokens.revoke_token(store, token)
    typer.echo(f"revoked token {info.token_id} ({info.name})")


token_app.command("create")(reporting_errors(create))
token_app.command("list")(reporting_errors(list_))
token_app.command("revoke")(reporting_errors(revoke))
