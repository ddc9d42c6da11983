"""The HTTP API: one FastAPI application over one store.

Every route is a thin translation: it checks the request's token, decodes the body with
`eventvault.store.http.wire`, calls the store (appends through the async face, which queues them
for the group commit from the event loop; reads a page at a time in worker threads) and encodes
the answer. Errors become problem details by one table (`eventvault.server.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import eventvault
from eventvault.audit import tree_check
from eventvault.errors import (
    EventNotFoundError,
    ImportFileError,
    IncompleteExportError,
    InvalidArgumentError,
    PermissionDeniedError,
)
from eventvault.export import load_export, write_export
from eventvault.projections import ProjectionBase
from eventvault.server.appends import (
    APPEND_ROUTE,
    AppendRoute,
    decode_body,
    new_events,
    read_body,
)
from eventvault.server.errors import install_handlers
from eventvault.server.metrics import CONTENT_TYPE, Metrics
from eventvault.server.openapi import describe
from eventvault.server.projections import ProjectionRoutes
from eventvault.server.schemas import SchemaRoutes
from eventvault.server.streaming import first_page, ndjson_pages, sse_events
from eventvault.server.tokens import Authorizer, Principal
from eventvault.store.aio import AsyncEventStore, AsyncSubscription
from eventvault.store.base import DEFAULT_PAGE_SIZE, EventStore
from eventvault.store.http.wire import (
    NDJSON,
    SSE,
    AppendOut,
    AppendsIn,
    AppendsOut,
    HashOut,
    HeadOut,
    InfoOut,
    LogQuery,
    MetadataIn,
    MetadataOut,
    RemovalIn,
    RemovalsOut,
    RetainedOut,
    RetentionIn,
    StatsOut,
    VersionOut,
    deep_safe,
    expected_from_wire,
    metadata_from_wire,
    metadata_to_wire,
    removal_to_wire,
)
from eventvault.types import (
    RawEvent,
    RecordedEvent,
    Removal,
    StreamAppend,
    StreamInfo,
)

__all__ = ["DEFAULT_HEARTBEAT", "DEFAULT_MAX_REQUEST_BYTES", "ServerSettings", "create_app"]

DEFAULT_HEARTBEAT: Final = 15.0
DEFAULT_MAX_REQUEST_BYTES: Final = 64 * 1024 * 1024
MIN_HEARTBEAT: Final = 0.05
JSON: Final = "application/json"
_encode = deep_safe(msgspec.json.encode)
_appends_decoder = msgspec.json.Decoder(AppendsIn)
_query_decoder = msgspec.json.Decoder(LogQuery)
_removal_decoder = msgspec.json.Decoder(RemovalIn)
_retention_decoder = msgspec.json.Decoder(RetentionIn)
_metadata_decoder = msgspec.json.Decoder(MetadataIn)
_raw_decoder = deep_safe(msgspec.json.Decoder(RawEvent).decode)
logger = logging.getLogger("eventvault.server")
_STREAMS: Final = "/v1/streams/"


@dataclass(slots=True)
class ServerSettings:
    """How the server behaves.

    Attributes:
        heartbeat: seconds between the comments a quiet subscription sends (a client may ask
            for a shorter interval, down to 0.05 s).
        max_request_bytes: the largest request body accepted (413 above it).
    """

    heartbeat: float = DEFAULT_HEARTBEAT
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES


@dataclass(slots=True)
class _Live:
    """The subscriptions open now, ended together when the server shuts down."""

    closing: asyncio.Event = field(default_factory=asyncio.Event)
    subscriptions: set[AsyncSubscription] = field(default_factory=set)

    def close_all(self) -> None:
        self.closing.set()
        for subscription in list(self.subscriptions):
            subscription.close()


class _Timing:
    """ASGI middleware: counts every response and its latency (to its first byte) by route."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                self._metrics.observe_request(path, message["status"], started)
            await send(message)

        await self._app(scope, receive, timed)


class _App(FastAPI):
    """The API's FastAPI application, which answers one-stream appends (`AppendRoute`) before
    its middleware and routing, and everything else through them."""

    appends: AppendRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        appends = self.appends
        if self.root_path:
            scope["root_path"] = self.root_path
        if appends is not None and scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(_STREAMS) and len(path) > len(_STREAMS):
                await appends(path[len(_STREAMS) :], scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    """The `Authorization` header of a request, read from the raw headers: building the
    request's header mapping costs an append more than the token check."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value).decode("latin-1")
    return None


def _content_length(request: Request) -> int | None:
    length = request.headers.get("content-length")
    return int(length) if length is not None and length.isdigit() else None


def _actor(principal: Principal, sent: str | None) -> str:
    """Who a removal is recorded as: the token's name (a request may name no other), or for an
    anonymous request the actor it names.

    Raises:
        PermissionDeniedError: the request names another actor than its token's.
        InvalidArgumentError: an anonymous request names no actor.
    """
    if principal.actor is None:
        if sent is None:
            raise InvalidArgumentError(
                "actor", None, "an anonymous request names who removes: give an actor"
            )
        return sent
    if sent is not None and sent != principal.actor:
        raise PermissionDeniedError(
            f"actor {sent!r} is not the token's {principal.actor!r}; the server records the "
            "actor itself"
        )
    return principal.actor


def _position(name: str, value: str | None) -> int | None:
    """A position from a header (`Last-Event-ID`), or None."""
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidArgumentError(name, value, f"must be an int >= 0, not {value!r}") from None


def _heartbeat(settings: ServerSettings, asked: float | None) -> float:
    if asked is None:
        return settings.heartbeat
    if not asked > 0 or asked != asked:  # NaN
        raise InvalidArgumentError("heartbeat", asked, "must be a number of seconds > 0")
    return min(max(asked, MIN_HEARTBEAT), settings.heartbeat)


def _stream_info(info: StreamInfo) -> bytes:
    return _encode(
        {
            "stream_name": info.stream_name,
            "version": info.version,
            "last_global_position": info.last_global_position,
        }
    )


def create_app(
    store: EventStore,
    authorizer: Authorizer,
    settings: ServerSettings | None = None,
    projections: Sequence[ProjectionBase] = (),
) -> FastAPI:
    """The HTTP API over a store.

    Args:
        store: the store to serve; the app does not close it.
        authorizer: who may do what (tokens, anonymous access).
        settings: heartbeats and limits.
        projections: the application's projections, whose health and lag it serves at
            `/v1/projections` and in `/metrics`.

    Returns:
        The ASGI application. `app.state.shutdown()` ends every subscription at once (what
        `eventvault serve` calls when it is told to stop).
    """
    settings = settings or ServerSettings()
    face = AsyncEventStore(store)
    metrics = Metrics(store.head_position)
    append_route = AppendRoute(face, authorizer, metrics, settings.max_request_bytes)
    live = _Live()

    app = _App(
        title="eventvault",
        version=eventvault.__version__,
        summary="An append-only, tamper-evident event store over HTTP.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.metrics = metrics
    app.state.shutdown = live.close_all
    app.appends = append_route
    install_handlers(app)

    async def principal_of(request: Request) -> Principal:
        return await authorizer.authenticate(_authorization(request.scope))

    async def decoded(request: Request, decoder: msgspec.json.Decoder[Any], what: str) -> Any:
        """A request's body, refused past the size limit, decoded into its wire type."""
        limit = settings.max_request_bytes
        body = await read_body(request.receive, _content_length(request), limit)
        return decode_body(decoder, body, what)

    def stream_response(
        first: list[Any],
        iterator: Iterator[Any],
        route: str,
        encode: Callable[[Any], bytes] = _encode,
        media_type: str = NDJSON,
    ) -> StreamingResponse:
        counter = metrics.read_events.labels(route)
        return StreamingResponse(
            ndjson_pages(first, iterator, encode, counter.inc),
            media_type=media_type,
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    def subscription_response(
        subscription: AsyncSubscription, position_of: Callable[[RecordedEvent], int], beat: float
    ) -> StreamingResponse:
        live.subscriptions.add(subscription)
        metrics.subscribers.inc()

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in sse_events(
                    subscription, position_of, beat, live.closing, metrics.delivered_events.inc
                ):
                    yield chunk
            finally:
                live.subscriptions.discard(subscription)
                metrics.subscribers.dec()

        return StreamingResponse(
            events(),
            media_type=SSE,
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- health and metrics ---------------------------------------------------------------------

    @app.get("/health", tags=["operations"], summary="Whether the server and its store answer")
    async def health() -> Response:
        head = await run_in_threadpool(store.head_position)
        return Response(
            _encode({"status": "ok", "head_position": head, "engine": store.engine}),
            media_type=JSON,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (admin)")
    async def metrics_text(request: Request) -> Response:
        (await principal_of(request)).require("admin")
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE)

    # -- the store ------------------------------------------------------------------------------

    @app.get("/v1/info", tags=["store"], summary="What the server serves")
    async def info(request: Request) -> Response:
        await principal_of(request)
        return Response(
            _encode(
                InfoOut(
                    eventvault.__version__,
                    store.engine,
                    store.dialect,
                    store.read_only,
                    store.max_event_bytes,
                )
            ),
            media_type=JSON,
        )

    @app.get("/v1/components", tags=["store"], summary="The versions of the store's tables")
    async def components(request: Request) -> Response:
        (await principal_of(request)).require("read")
        return Response(_encode(await face.component_versions()), media_type=JSON)

    @app.get("/v1/head", tags=["store"], summary="The global position of the last event")
    async def head(request: Request) -> Response:
        (await principal_of(request)).require("read")
        return Response(_encode(HeadOut(await face.head_position())), media_type=JSON)

    @app.get("/v1/stats", tags=["store"], summary="Counts and times of the store")
    async def stats(request: Request) -> Response:
        (await principal_of(request)).require_unlimited("read")
        found = await face.stats()
        return Response(
            _encode(
                StatsOut(
                    found.event_count,
                    found.stream_count,
                    found.head_position,
                    found.first_recorded_at,
                    found.last_recorded_at,
                )
            ),
            media_type=JSON,
        )

    # -- appends --------------------------------------------------------------------------------

    @app.post(
        APPEND_ROUTE,
        status_code=201,
        tags=["streams"],
        summary="Append events to a stream",
    )
    async def append(stream_name: str, request: Request) -> Response:
        content = await append_route.append(
            stream_name, _authorization(request.scope), request.receive, _content_length(request)
        )
        return Response(content, status_code=201, media_type=JSON)

    @app.post(
        "/v1/appends",
        status_code=201,
        tags=["streams"],
        summary="Append to several streams atomically",
    )
    async def append_many(request: Request) -> Response:
        principal = await principal_of(request)
        body = await decoded(request, _appends_decoder, "appends body")
        appends = []
        for item in body.appends:
            principal.require_stream("write", item.stream_name)
            appends.append(
                StreamAppend(
                    item.stream_name,
                    new_events(item.events, principal),
                    expected_from_wire(item.expected_version),
                )
            )
        started = time.perf_counter()
        results = await face.append_to_streams(appends)
        metrics.observe_append(sum(len(item.events) for item in appends), started)
        return Response(
            _encode(AppendsOut([AppendOut(r.stream_position, r.global_position) for r in results])),
            status_code=201,
            media_type=JSON,
        )

    # -- reads ----------------------------------------------------------------------------------

    @app.get("/v1/streams/{stream_name:path}", tags=["streams"], summary="Read a stream (NDJSON)")
    async def read_stream(
        stream_name: str,
        request: Request,
        from_position: Annotated[int | None, Query()] = None,
        backwards: Annotated[bool, Query()] = False,
        limit: Annotated[int | None, Query()] = None,
    ) -> Response:
        (await principal_of(request)).require_stream("read", stream_name)
        iterator = store.read_stream(
            stream_name, from_position=from_position, backwards=backwards, limit=limit
        )
        return stream_response(await first_page(iterator), iterator, "stream")

    @app.get("/v1/versions/{stream_name:path}", tags=["streams"], summary="A stream's version")
    async def version(stream_name: str, request: Request) -> Response:
        (await principal_of(request)).require_stream("read", stream_name)
        found = await face.get_stream_version(stream_name)
        return Response(_encode(VersionOut(stream_name, found)), media_type=JSON)

    @app.get("/v1/streams", tags=["streams"], summary="List the streams (NDJSON)")
    async def streams(request: Request) -> Response:
        principal = await principal_of(request)
        principal.require("read")
        listed: Iterator[StreamInfo] = (
            info for info in store.list_streams() if principal.allows(info.stream_name)
        )
        return stream_response(await first_page(listed), listed, "streams", _stream_info)

    def read_log(principal: Principal, query: LogQuery) -> Awaitable[Response]:
        principal.require_prefix("read", query.stream_prefix)
        _heartbeat(settings, query.heartbeat)  # a read has no use for it, but checks it
        unfiltered = (
            query.event_types is None and query.stream_prefix is None and not query.backwards
        )
        iterator: Iterator[RecordedEvent] | Iterator[RawEvent]
        if unfiltered:
            # The stored bytes as they are: nothing to decode and encode again. The raw log
            # holds removed events too, which no read returns.
            store.read_all(after=query.after, limit=query.limit)  # checks the arguments
            raw = _readable(store.export_events(after=query.after))
            iterator = raw if query.limit is None else _limited(raw, query.limit)
        else:
            iterator = store.read_all(
                after=query.after,
                backwards=query.backwards,
                limit=query.limit,
                event_types=query.event_types,
                stream_prefix=query.stream_prefix,
            )

        async def respond() -> Response:
            return stream_response(await first_page(iterator), iterator, "log")

        return respond()

    @app.get("/v1/log", tags=["log"], summary="Read the global log (NDJSON)")
    async def log(
        request: Request,
        after: Annotated[int, Query()] = 0,
        backwards: Annotated[bool, Query()] = False,
        limit: Annotated[int | None, Query()] = None,
        event_type: Annotated[list[str] | None, Query()] = None,
        stream_prefix: Annotated[str | None, Query()] = None,
    ) -> Response:
        principal = await principal_of(request)
        query = LogQuery(after, backwards, limit, event_type, stream_prefix)
        return await read_log(principal, query)

    @app.post("/v1/log", tags=["log"], summary="Read the global log, filters in the body")
    async def log_query(request: Request) -> Response:
        principal = await principal_of(request)
        query = await decoded(request, _query_decoder, "query")
        return await read_log(principal, query)

    @app.get("/v1/log/raw", tags=["log"], summary="The log with its stored bytes (admin, NDJSON)")
    async def raw_log(
        request: Request,
        after: Annotated[int, Query()] = 0,
        until: Annotated[int | None, Query()] = None,
    ) -> Response:
        (await principal_of(request)).require_unlimited("admin")
        iterator = store.export_events(after=after, until=until)
        return stream_response(await first_page(iterator), iterator, "raw")

    # -- export and import ----------------------------------------------------------------------

    @app.get("/v1/export", tags=["log"], summary="An export file of the log (admin)")
    async def export(request: Request, after: Annotated[int, Query()] = 0) -> StreamingResponse:
        (await principal_of(request)).require_unlimited("admin")
        if type(after) is not int or after < 0:
            raise InvalidArgumentError("after", after, f"must be an int >= 0, not {after!r}")
        return StreamingResponse(
            _export_lines(store, after),
            media_type=NDJSON,
            headers={
                "cache-control": "no-store",
                "content-disposition": 'attachment; filename="eventvault-export.jsonl"',
            },
        )

    @app.post("/v1/import", tags=["log"], summary="Import an export file into an empty store")
    async def import_(
        request: Request,
        expect_count: Annotated[int | None, Query()] = None,
        expect_head: Annotated[int | None, Query()] = None,
    ) -> Response:
        (await principal_of(request)).require_unlimited("admin")
        return await _import(store, request, expect_count, expect_head)

    @app.post(
        "/v1/log/raw",
        status_code=201,
        tags=["log"],
        summary="Import a raw log (NDJSON, as GET /v1/log/raw serves it) into an empty store",
    )
    async def import_raw(
        request: Request,
        count: Annotated[int, Query()],
        head: Annotated[int, Query()],
    ) -> Response:
        (await principal_of(request)).require_unlimited("admin")
        with tempfile.TemporaryFile() as spool:
            async for chunk in request.stream():
                await run_in_threadpool(spool.write, chunk)
            spool.seek(0)
            imported = await run_in_threadpool(
                lambda: store.import_events(_raw_lines(spool, count, head))
            )
        return Response(_encode({"imported": imported}), status_code=201, media_type=JSON)

    @app.get(
        "/v1/log/hashes",
        tags=["log"],
        summary="The global position and hash of every event, removed ones too (NDJSON)",
    )
    async def hashes(
        request: Request,
        after: Annotated[int, Query()] = 0,
        limit: Annotated[int | None, Query()] = None,
    ) -> Response:
        (await principal_of(request)).require_unlimited("read")
        iterator = (
            HashOut(found.global_position, found.hash.hex())
            for found in store.read_hashes(after=after, limit=limit)
        )
        return stream_response(await first_page(iterator), iterator, "hashes")

    @app.get(
        "/v1/events/{event_id}",
        tags=["log"],
        summary="One event by its id, removed or not, with its stored bytes (admin)",
    )
    async def event_by_id(event_id: str, request: Request) -> Response:
        principal = await principal_of(request)
        principal.require("admin")
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            raise InvalidArgumentError(
                "event_id", event_id, f"must be a UUID, not {event_id!r}"
            ) from None
        found = await run_in_threadpool(store.get_event, parsed)
        return _event_response(principal, found, str(parsed))

    @app.get(
        "/v1/events",
        tags=["log"],
        summary="One event by its stream and position, removed or not (admin)",
    )
    async def event_at(
        request: Request,
        stream_name: Annotated[str, Query()],
        stream_position: Annotated[int, Query()],
    ) -> Response:
        principal = await principal_of(request)
        principal.require_stream("admin", stream_name)
        found = await run_in_threadpool(
            functools.partial(
                store.get_event, stream_name=stream_name, stream_position=stream_position
            )
        )
        return _event_response(principal, found, f"{stream_name}@{stream_position}")

    # -- removal --------------------------------------------------------------------------------

    @app.post(
        "/v1/removals",
        tags=["removal"],
        summary="Delete (soft or hard) or truncate a stream, recorded in $removals (admin)",
    )
    async def remove(request: Request) -> Response:
        principal = await principal_of(request)
        body = await decoded(request, _removal_decoder, "removal")
        principal.require_stream("admin", body.stream_name)
        actor = _actor(principal, body.actor)
        removal: Removal
        if body.kind == "truncate":
            if body.before is None:
                raise InvalidArgumentError("before", None, "a truncation names its position")
            removal = await face.truncate_stream(
                body.stream_name, before=body.before, actor=actor, reason=body.reason
            )
        elif body.kind in ("soft-delete", "hard-delete"):
            removal = await face.delete_stream(
                body.stream_name,
                hard=body.kind == "hard-delete",
                expected_version=expected_from_wire(body.expected_version),
                actor=actor,
                reason=body.reason,
            )
        else:
            raise InvalidArgumentError(
                "kind",
                body.kind,
                "a removal is soft-delete, hard-delete or truncate; POST /v1/retention applies "
                "every stream's retention",
            )
        return Response(_encode(removal_to_wire(removal)), media_type=JSON)

    @app.get(
        "/v1/metadata/{stream_name:path}",
        tags=["removal"],
        summary="A stream's metadata: its retention",
    )
    async def stream_metadata(stream_name: str, request: Request) -> Response:
        (await principal_of(request)).require_stream("read", stream_name)
        found = await face.get_stream_metadata(stream_name)
        return Response(
            _encode(MetadataOut(stream_name, *metadata_to_wire(found))), media_type=JSON
        )

    @app.put(
        "/v1/metadata/{stream_name:path}",
        tags=["removal"],
        summary="Set a stream's metadata, recorded in $removals (admin)",
    )
    async def set_stream_metadata(stream_name: str, request: Request) -> Response:
        principal = await principal_of(request)
        principal.require_stream("admin", stream_name)
        body = await decoded(request, _metadata_decoder, "metadata")
        metadata = metadata_from_wire(body.max_age_us, body.max_count)
        await face.set_stream_metadata(
            stream_name, metadata, actor=_actor(principal, body.actor), reason=body.reason
        )
        return Response(
            _encode(MetadataOut(stream_name, *metadata_to_wire(metadata))), media_type=JSON
        )

    @app.get(
        "/v1/retention",
        tags=["removal"],
        summary="The streams whose metadata sets a retention",
    )
    async def retained(request: Request) -> Response:
        (await principal_of(request)).require_unlimited("read")
        names = await face.retained_streams()
        return Response(_encode(RetainedOut(names)), media_type=JSON)

    @app.post(
        "/v1/retention",
        tags=["removal"],
        summary="Apply every stream's retention, each removal recorded in $removals (admin)",
    )
    async def enforce_retention(request: Request) -> Response:
        principal = await principal_of(request)
        principal.require_unlimited("admin")
        body = await decoded(request, _retention_decoder, "retention")
        removals = await face.enforce_retention(
            actor=_actor(principal, body.actor), reason=body.reason
        )
        return Response(
            _encode(RemovalsOut([removal_to_wire(removal) for removal in removals])),
            media_type=JSON,
        )

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe_log(principal: Principal, query: LogQuery, resume: str | None) -> Response:
        principal.require_prefix("read", query.stream_prefix)
        after = _position("Last-Event-ID", resume)
        subscription = face.subscribe_to_all(
            after=query.after if after is None else after,
            event_types=query.event_types,
            stream_prefix=query.stream_prefix,
        )
        beat = _heartbeat(settings, query.heartbeat)
        return subscription_response(subscription, _global_position, beat)

    @app.get(
        "/v1/subscriptions/log",
        tags=["subscriptions"],
        summary="Follow the log (Server-Sent Events)",
    )
    async def subscribe_all(
        request: Request,
        after: Annotated[int, Query()] = 0,
        event_type: Annotated[list[str] | None, Query()] = None,
        stream_prefix: Annotated[str | None, Query()] = None,
        heartbeat: Annotated[float | None, Query()] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> Response:
        principal = await principal_of(request)
        query = LogQuery(after, False, None, event_type, stream_prefix, heartbeat)
        return subscribe_log(principal, query, last_event_id)

    @app.post(
        "/v1/subscriptions/log",
        tags=["subscriptions"],
        summary="Follow the log, filters in the body",
    )
    async def subscribe_all_query(
        request: Request, last_event_id: Annotated[str | None, Header()] = None
    ) -> Response:
        principal = await principal_of(request)
        query = await decoded(request, _query_decoder, "query")
        return subscribe_log(principal, query, last_event_id)

    @app.get(
        "/v1/subscriptions/streams/{stream_name:path}",
        tags=["subscriptions"],
        summary="Follow a stream (Server-Sent Events)",
    )
    async def subscribe_stream(
        stream_name: str,
        request: Request,
        after: Annotated[int | None, Query()] = None,
        heartbeat: Annotated[float | None, Query()] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> Response:
        (await principal_of(request)).require_stream("read", stream_name)
        resume = _position("Last-Event-ID", last_event_id)
        subscription = face.subscribe_to_stream(
            stream_name, after=after if resume is None else resume
        )
        return subscription_response(
            subscription, _stream_position, _heartbeat(settings, heartbeat)
        )

    app.add_middleware(_Timing, metrics=metrics)

    schemas = SchemaRoutes(store)
    schemas.enforce_if_present()
    schemas.install(app, principal_of, decoded)
    if projections:
        watched = ProjectionRoutes(store, projections)
        watched.install(app, principal_of)
        metrics.registry.register(watched)
        app.state.close_projections = watched.close

    app.openapi = lambda: describe(app)  # type: ignore[method-assign]
    return app


def _readable(events: Iterator[RawEvent]) -> Iterator[RawEvent]:
    """The events of a raw log that readers see: those not removed."""
    return (event for event in events if event.removed_by is None)


def _event_response(principal: Principal, found: RawEvent | None, reference: str) -> Response:
    """An event found by `get_event`, if the principal may see its stream."""
    if found is None:
        raise EventNotFoundError(reference)
    principal.require_stream("admin", found.stream_name)
    return Response(_encode(found), media_type=JSON)


def _raw_lines(lines: Iterable[bytes], count: int, head: int) -> Iterator[RawEvent]:
    """The events of a raw log sent for an import, which must be exactly `count` events up to
    the global position `head`: it raises after the last one otherwise, so the import rolls
    back."""
    found = 0
    last = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = _raw_decoder(line)
        except msgspec.DecodeError as exc:
            raise ImportFileError(f"not an exported event: {exc}", line=number) from None
        found += 1
        last = event.global_position
        yield event
    if (found, last) != (count, head):
        raise IncompleteExportError(
            f"the request holds {found} events up to global position {last}; it was sent with "
            f"{count} up to {head}: it was cut short or changed on the way"
        )


def _limited(iterator: Iterator[RawEvent], limit: int) -> Iterator[RawEvent]:
    yield from (event for _, event in zip(range(limit), iterator, strict=False))


def _global_position(event: RecordedEvent) -> int:
    return event.global_position


def _stream_position(event: RecordedEvent) -> int:
    return event.stream_position


class _ExportSink:
    """The binary sink `write_export` writes to in a worker thread: it hands the response a page
    of lines at a time through a bounded queue, and gives up once the client is gone."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)
        self.stopped = threading.Event()
        self._pending: list[bytes] = []

    def write(self, line: bytes) -> int:
        self._pending.append(line)
        if len(self._pending) >= DEFAULT_PAGE_SIZE:
            self.flush()
        return len(line)

    def flush(self) -> None:
        chunk, self._pending = b"".join(self._pending), []
        self.put(chunk)

    def put(self, item: bytes | BaseException | None) -> None:
        while True:
            if self.stopped.is_set():
                raise _ClientGoneError
            try:
                self.chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


class _ClientGoneError(Exception):
    """The client of an export went away: stop writing it."""


async def _export_lines(store: EventStore, after: int) -> AsyncIterator[bytes]:
    """An export file, written by `write_export` in a worker thread a page at a time.

    An export that fails part-way ends without its closing record, which every reader refuses.
    """
    sink = _ExportSink()

    def run() -> None:
        try:
            write_export(store, sink, after=after, check=tree_check(store))  # type: ignore[arg-type]
            sink.flush()
            sink.put(None)
        except _ClientGoneError:
            return
        except BaseException as exc:
            with contextlib.suppress(_ClientGoneError):
                sink.put(exc)

    threading.Thread(target=run, name="eventvault-export", daemon=True).start()
    try:
        while True:
            item = await run_in_threadpool(sink.chunks.get)
            if item is None:
                return
            if isinstance(item, BaseException):
                logger.warning("an export failed after its response started: %s", item)
                return
            yield item
    finally:
        sink.stopped.set()


async def _import(
    store: EventStore, request: Request, expect_count: int | None, expect_head: int | None
) -> Response:
    """Import an export file sent as the request body, spooled to a temporary file first;
    nothing is stored unless the file is whole and every event verifies."""
    with tempfile.TemporaryFile() as spool:
        async for chunk in request.stream():
            await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
        count = await run_in_threadpool(
            functools.partial(
                load_export, store, spool, expect_count=expect_count, expect_head=expect_head
            )
        )
    return Response(_encode({"imported": count}), status_code=201, media_type=JSON)
