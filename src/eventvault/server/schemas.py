"""The schema registry over HTTP: list the types, read their versions, register a schema.

The server enforces the registry on every append it receives, as every producer that opens the
store does (`SchemaRegistry.enforce`), from the start when the store has a registry, or from the
first schema registered through the API.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from eventvault.schema import SchemaRegistry
from eventvault.schema.registry import SCHEMAS
from eventvault.server.tokens import Principal
from eventvault.store.base import EventStore

__all__ = ["SchemaRoutes"]

JSON: Final = "application/json"


class _RegisterIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    schema: dict[str, Any]
    version: int | None = None


_register_decoder: Final = msgspec.json.Decoder(_RegisterIn)


class SchemaRoutes:
    """The registry of the served store, made when first needed, and its routes.

    Args:
        store: the served store.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._registry: SchemaRegistry | None = None
        self._lock = threading.Lock()

    def enforce_if_present(self) -> None:
        """Enforce the store's registry on appends when the store has one."""
        if SCHEMAS.name in self._store.component_versions():
            self.registry()

    def registry(self) -> SchemaRegistry:
        """The registry, enforced on every append from now on."""
        with self._lock:
            if self._registry is None:
                registry = SchemaRegistry(self._store, actor="eventvault-server")
                registry.enforce()
                self._registry = registry
            return self._registry

    def install(
        self,
        app: FastAPI,
        principal_of: Callable[[Request], Awaitable[Principal]],
        decoded: Callable[[Request, msgspec.json.Decoder[Any], str], Awaitable[Any]],
    ) -> None:
        """Add the routes to the app.

        Args:
            app: the app.
            principal_of: who sent a request.
            decoded: a request's body, held to the server's size limit and decoded.
        """

        def listing() -> bytes:
            registry = self.registry()
            return msgspec.json.encode(
                {
                    "types": [
                        {
                            "event_type": name,
                            "versions": [v.version for v in registry.versions(name)],
                            "mode": registry.mode(name).value,
                        }
                        for name in registry.types()
                    ]
                }
            )

        def versions(event_type: str) -> bytes:
            registry = self.registry()
            found = registry.versions(event_type)
            if not found:
                registry.get(event_type)  # raises, naming the type
            return msgspec.json.encode(
                {
                    "event_type": event_type,
                    "mode": registry.mode(event_type).value,
                    "versions": [
                        {
                            "version": v.version,
                            "schema": v.schema,
                            "fingerprint": v.fingerprint,
                            "registered_at": v.registered_at,
                            "registered_by": v.registered_by,
                        }
                        for v in found
                    ],
                }
            )

        @app.get("/v1/schemas", tags=["schemas"], summary="The registry's event types")
        async def list_schemas(request: Request) -> Response:
            (await principal_of(request)).require("read")
            return Response(await run_in_threadpool(listing), media_type=JSON)

        @app.get(
            "/v1/schemas/{event_type:path}",
            tags=["schemas"],
            summary="The versions of an event type's schema",
        )
        async def get_schema(event_type: str, request: Request) -> Response:
            (await principal_of(request)).require("read")
            return Response(await run_in_threadpool(versions, event_type), media_type=JSON)

        @app.post(
            "/v1/schemas/{event_type:path}",
            status_code=201,
            tags=["schemas"],
            summary="Register a schema as a version of an event type (admin)",
        )
        async def register(event_type: str, request: Request) -> Response:
            principal = await principal_of(request)
            principal.require_unlimited("admin")
            body: _RegisterIn = await decoded(request, _register_decoder, "registration")
            registry = await run_in_threadpool(self.registry)
            done = await run_in_threadpool(
                lambda: registry.register(
                    event_type,
                    body.schema,
                    version=body.version,
                    actor=principal.actor or "anonymous",
                )
            )
            return Response(
                msgspec.json.encode(
                    {
                        "event_type": done.event_type,
                        "version": done.version,
                        "created": done.created,
                    }
                ),
                status_code=201 if done.created else 200,
                media_type=JSON,
            )
