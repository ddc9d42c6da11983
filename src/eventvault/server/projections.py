"""The application's projections over HTTP: their health and lag, and their lag as metrics.

The server runs no projection (`eventvault projections run` does); given the application's
projections (`eventvault serve --projections MODULE`), it reads their status from their
checkpoints, as `eventvault projections status` does, for `/v1/projections` and `/metrics`.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Final

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from eventvault.errors import NotFoundError
from eventvault.projections import ProjectionBase
from eventvault.projections.status import ProjectionState, ProjectionStatus, StatusReader
from eventvault.server.tokens import Principal
from eventvault.store.base import EventStore

__all__ = ["ProjectionNotFoundError", "ProjectionRoutes"]

JSON: Final = "application/json"


class ProjectionNotFoundError(NotFoundError, LookupError):
    """The server knows no projection of that name.

    Attributes:
        name: the name asked for.
        known: the names it knows.
    """

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(
            f"no projection {name!r}; the server knows {', '.join(map(repr, known)) or 'none'}"
        )


class ProjectionRoutes(Collector):
    """Reads the status of the application's projections, for routes and for metrics.

    Args:
        store: the served store.
        projections: the application's projections.
    """

    def __init__(self, store: EventStore, projections: Sequence[ProjectionBase]) -> None:
        self._reader = StatusReader(store, projections)
        self._names = [p.name for p in projections]
        self._lock = threading.Lock()

    def statuses(self) -> list[ProjectionStatus]:
        """Every projection's status, read now."""
        with self._lock:
            return self._reader.read()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "eventvault_projection_lag_events",
            "Positions between what a projection has looked at and the store's head.",
            labels=["projection"],
        )
        seconds = GaugeMetricFamily(
            "eventvault_projection_lag_seconds",
            "How long ago the oldest event a projection has yet to apply was recorded.",
            labels=["projection"],
        )
        failed = GaugeMetricFamily(
            "eventvault_projection_failed",
            "1 when a projection stopped at a failing event.",
            labels=["projection"],
        )
        for status in self.statuses():
            lag.add_metric([status.name], float(status.lag_events))
            seconds.add_metric([status.name], status.lag_seconds)
            failed.add_metric([status.name], float(status.state is ProjectionState.FAILED))
        yield from (lag, seconds, failed)

    def install(
        self, app: FastAPI, principal_of: Callable[[Request], Awaitable[Principal]]
    ) -> None:
        """Add the routes to the app."""

        def listing() -> bytes:
            return msgspec.json.encode(
                {"projections": [status.to_dict() for status in self.statuses()]}
            )

        def one(name: str) -> bytes:
            for status in self.statuses():
                if status.name == name:
                    return msgspec.json.encode(status.to_dict())
            raise ProjectionNotFoundError(name, self._names)

        @app.get("/v1/projections", tags=["projections"], summary="The projections' health and lag")
        async def projections(request: Request) -> Response:
            (await principal_of(request)).require("read")
            return Response(await run_in_threadpool(listing), media_type=JSON)

        @app.get(
            "/v1/projections/{name}",
            tags=["projections"],
            summary="One projection's health and lag",
        )
        async def projection(name: str, request: Request) -> Response:
            (await principal_of(request)).require("read")
            return Response(await run_in_threadpool(one, name), media_type=JSON)

    def close(self) -> None:
        """Close the databases the status reads opened."""
        with self._lock:
            self._reader.close()
