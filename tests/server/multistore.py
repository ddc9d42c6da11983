"""A real server process that serves many stores of one engine, one per path prefix.

`python -m tests.server.multistore ENGINE WHERE` serves `/s/<name>/...` with the app of
`eventvault serve` (`create_app`) over a store created on first use: `memory://`, a SQLite file
in the folder WHERE, or a schema of the PostgreSQL server at WHERE. `DELETE /s/<name>` closes it
(and drops its schema). The contract suite runs through it: each test gets fresh stores from one
process per engine, instead of a process per store. It prints `listening on PORT` when ready.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from eventvault import EventStore, connect
from eventvault.server.app import ServerSettings, create_app
from eventvault.server.tokens import Authorizer


def _opener(engine: str, where: str) -> tuple[Callable[[str], EventStore], Callable[[str], None]]:
    if engine == "memory":
        return lambda name: connect("memory://"), lambda name: None
    if engine == "sqlite":
        return lambda name: connect(f"{where}/{name}.db"), lambda name: None
    separator = "&" if "?" in where else "?"

    def open_schema(name: str) -> EventStore:
        return connect(f"{where}{separator}schema=ev_http_{name}&auto_migrate=true")

    def drop(name: str) -> None:
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "ev_http_{name}" CASCADE')

    return open_schema, drop


class MultiStore:
    """ASGI: `/s/<name>/rest` goes to the app of store `name`, made on first use."""

    def __init__(self, engine: str, where: str) -> None:
        self._open, self._drop = _opener(engine, where)
        self._apps: dict[str, tuple[EventStore, ASGIApp]] = {}
        self._lock = threading.Lock()
        self._settings = ServerSettings(heartbeat=1.0)

    def _app(self, name: str) -> tuple[EventStore, ASGIApp]:
        with self._lock:
            found = self._apps.get(name)
            if found is None:
                store = self._open(name)
                authorizer = Authorizer(store, ["read", "write", "admin"], tokens=False)
                found = self._apps[name] = (store, create_app(store, authorizer, self._settings))
            return found

    def _close(self, name: str) -> None:
        with self._lock:
            found = self._apps.pop(name, None)
        if found is not None:
            found[1].state.shutdown()  # type: ignore[attr-defined]
            found[0].close()
        self._drop(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope["path"]
        name, _, rest = path.removeprefix("/s/").partition("/")
        if not path.startswith("/s/") or not name:
            await _answer(send, 404, b"no store")
            return
        if scope["type"] == "http" and scope["method"] == "DELETE" and not rest:
            await asyncio.to_thread(self._close, name)
            await _answer(send, 204, b"")
            return
        _, app = await asyncio.to_thread(self._app, name)
        await app({**scope, "root_path": f"/s/{name}"}, receive, send)


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    async def startup(self, sockets: object = None) -> None:
        await super().startup(sockets)  # type: ignore[arg-type]
        port = self.servers[0].sockets[0].getsockname()[1]
        print(f"listening on {port}", flush=True)


def main(engine: str, where: str) -> None:
    config = uvicorn.Config(
        MultiStore(engine, where), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    _Server(config).run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
