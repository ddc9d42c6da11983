"""`serve`: the HTTP API of a store on uvicorn, until SIGTERM or SIGINT.

On a signal the server stops accepting connections, lets the requests in flight finish (an
append being committed is answered), ends every subscription at once (its client reconnects
elsewhere or later, resuming with `Last-Event-ID`), and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Final

import uvicorn
from fastapi import FastAPI

from eventvault.errors import MigrationRequiredError
from eventvault.projections import ProjectionBase
from eventvault.server.app import ServerSettings, create_app
from eventvault.server.tokens import TOKENS, Authorizer, Scope
from eventvault.store.base import EventStore
from eventvault.store.connect import DEFAULT_URL, connect
from eventvault.store.masking import mask_url

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 2113
GRACEFUL_SECONDS: Final = 30
logger = logging.getLogger("eventvault.server")


class _Server(uvicorn.Server):
    """uvicorn's server, which also ends the app's subscriptions when told to stop (without
    that, a long-lived event stream would hold the shutdown for the whole grace period), and
    says where it listens once it does."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, store: EventStore, url: str) -> None:
        super().__init__(config)
        self._app = app
        self._store = store
        self._url = url
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        for server in self.servers:
            for bound in server.sockets:
                host, port = bound.getsockname()[:2]
                logger.info(
                    "eventvault serves %s (%s engine%s) on http://%s:%d",
                    mask_url(self._url),
                    self._store.engine,
                    ", read-only" if self._store.read_only else "",
                    host,
                    port,
                )

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn raises the signal again once it has shut down, so that the process dies of
        # it; a server that stopped as asked exits with status 0 instead.
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is not None and not self.should_exit:
            self._loop.call_soon_threadsafe(self._app.state.shutdown)
        super().handle_exit(sig, frame)


def _authorizer(store: EventStore, anonymous: Sequence[Scope]) -> Authorizer:
    """The authorizer of a store, with its tokens table ready where the store allows."""
    try:
        store.use(TOKENS)
    except MigrationRequiredError:
        if not anonymous:
            raise
        logger.warning(
            "the store has no tokens table (run `eventvault migrate`): only anonymous requests "
            "are served"
        )
        return Authorizer(store, anonymous, tokens=False)
    return Authorizer(store, anonymous)


def serve(
    url: str = DEFAULT_URL,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    anonymous: Sequence[Scope] = (),
    read_only: bool = False,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    projections: Sequence[ProjectionBase] = (),
) -> None:
    """Serve a store over HTTP until SIGTERM or SIGINT.

    Args:
        url: the store (any URL `connect` opens); `./eventvault.db` by default.
        host: the address to listen on (loopback by default; put a TLS proxy in front of any
            other, see docs/http.md).
        port: the port (2113 by default; 0 picks a free one, logged at start).
        anonymous: the scopes of requests without a token; empty: every request needs one.
        read_only: open the store read-only: appends and imports are refused with 403.
        settings: heartbeats and limits.
        log_level: uvicorn's log level.
        projections: the application's projections, whose health and lag are served.

    Raises:
        EventVaultError: the store cannot be opened, or has no tokens table and may not create
            one (run `eventvault migrate`) while anonymous access is off.
        OSError: the address cannot be bound.
    """
    store = connect(url, read_only=read_only)
    try:
        app = create_app(store, _authorizer(store, anonymous), settings, projections)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            server_header=False,
        )
        try:
            _Server(config, app, store, url).run()
        finally:
            close_projections = getattr(app.state, "close_projections", None)
            if close_projections is not None:
                close_projections()
    finally:
        store.close()
