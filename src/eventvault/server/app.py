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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import eventvault
from eventvault._nesting import depth_over_limit
from eventvault.errors import (
    InvalidArgumentError,
    InvalidEventError,
    PayloadTooDeepError,
    PermissionDeniedError,
)
from eventvault.export import load_export, write_export
from eventvault.projections import ProjectionBase
from eventvault.serialization import MAX_NESTING_DEPTH, decode_json_object
from eventvault.server.errors import (
    RequestTooLargeError,
    install_handlers,
    problem_response,
    status_for,
)
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
    AppendIn,
    AppendOut,
    AppendsIn,
    AppendsOut,
    EventIn,
    HeadOut,
    InfoOut,
    LogQuery,
    StatsOut,
    VersionOut,
    deep_safe,
    expected_from_wire,
)
from eventvault.types import NewEvent, RawEvent, RecordedEvent, StreamAppend, StreamInfo

__all__ = ["DEFAULT_HEARTBEAT", "DEFAULT_MAX_REQUEST_BYTES", "ServerSettings", "create_app"]

DEFAULT_HEARTBEAT: Final = 15.0
DEFAULT_MAX_REQUEST_BYTES: Final = 64 * 1024 * 1024
MIN_HEARTBEAT: Final = 0.05
JSON: Final = "application/json"
_encode = deep_safe(msgspec.json.encode)
_decode_object = deep_safe(decode_json_object)
_append_decoder = msgspec.json.Decoder(AppendIn)
_appends_decoder = msgspec.json.Decoder(AppendsIn)
_query_decoder = msgspec.json.Decoder(LogQuery)
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


class _AppendFastPath:
    """ASGI: answers `POST /v1/streams/{stream}`, the hottest route, with the route's own
    handler but without the framework's routing and dependency resolution, which cost an append
    more than its commit. Its errors become problem details by the same table."""

    def __init__(
        self,
        app: ASGIApp,
        handle: Callable[[str, Request], Awaitable[Response]],
        route: object,
    ) -> None:
        self._app = app
        self._handle = handle
        self._route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(_STREAMS) and len(path) > len(_STREAMS):
                scope["route"] = self._route
                try:
                    response = await self._handle(path[len(_STREAMS) :], Request(scope, receive))
                except Exception as exc:
                    if status_for(exc) >= 500:
                        logger.error("POST %s failed: %s", path, exc, exc_info=exc)
                    response = problem_response(exc)
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    """The `Authorization` header of a request, read from the raw headers: building the
    request's header mapping costs an append more than the token check."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value).decode("latin-1")
    return None


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused once it grows past `limit` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes, what: str) -> Any:
    try:
        return deep_safe(decoder.decode)(body)
    except RecursionError:
        raise InvalidEventError(f"the {what} nests too deeply to read") from None
    except msgspec.DecodeError as exc:
        raise InvalidEventError(f"the {what} is not valid: {exc}") from None


def _payload(raw: msgspec.Raw, field_name: str, index: int) -> dict[str, object] | None:
    data = bytes(raw)
    if data == b"null":
        return None
    depth = depth_over_limit(data)
    if depth is not None:
        raise PayloadTooDeepError(field_name, depth, MAX_NESTING_DEPTH, index=index)
    try:
        return _decode_object(data)
    except (msgspec.DecodeError, RecursionError):
        raise InvalidEventError(
            f"{field_name} must be a JSON object, not {data[:40]!r}", index=index
        ) from None


def _new_events(events: list[EventIn], principal: Principal) -> list[NewEvent]:
    """The events of a request, with the principal's `actor` in their metadata."""
    made: list[NewEvent] = []
    for index, event in enumerate(events):
        data = _payload(event.data, "data", index)
        metadata = _payload(event.metadata, "metadata", index)
        if principal.actor is not None:
            metadata = dict(metadata or {})
            sent = metadata.get("actor", principal.actor)
            if sent != principal.actor:
                raise PermissionDeniedError(
                    f"event {index}: metadata actor {sent!r} is not the token's "
                    f"{principal.actor!r}; the server records the actor itself"
                )
            metadata["actor"] = principal.actor
        made.append(
            NewEvent(
                event.event_type,
                data if data is not None else {},
                metadata=metadata,
                event_id=event.event_id,
                schema_version=event.schema_version,
            )
        )
    return made


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
    live = _Live()

    app = FastAPI(
        title="eventvault",
        version=eventvault.__version__,
        summary="An append-only, tamper-evident event store over HTTP.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.metrics = metrics
    app.state.shutdown = live.close_all
    install_handlers(app)

    async def principal_of(request: Request) -> Principal:
        return await authorizer.authenticate(_authorization(request.scope))

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
        "/v1/streams/{stream_name:path}",
        status_code=201,
        tags=["streams"],
        summary="Append events to a stream",
    )
    async def append(stream_name: str, request: Request) -> Response:
        principal = await principal_of(request)
        principal.require_stream("write", stream_name)
        body = _decode(
            _append_decoder, await _body(request, settings.max_request_bytes), "append body"
        )
        events = _new_events(body.events, principal)
        started = time.perf_counter()
        result = await face.append_to_stream(
            stream_name, events, expected_version=expected_from_wire(body.expected_version)
        )
        metrics.append_seconds.observe(time.perf_counter() - started)
        metrics.appended_events.inc(len(events))
        metrics.append_batch.observe(len(events))
        return Response(
            _encode(AppendOut(result.stream_position, result.global_position)),
            status_code=201,
            media_type=JSON,
        )

    @app.post(
        "/v1/appends",
        status_code=201,
        tags=["streams"],
        summary="Append to several streams atomically",
    )
    async def append_many(request: Request) -> Response:
        principal = await principal_of(request)
        body = _decode(
            _appends_decoder, await _body(request, settings.max_request_bytes), "appends body"
        )
        appends = []
        for item in body.appends:
            principal.require_stream("write", item.stream_name)
            appends.append(
                StreamAppend(
                    item.stream_name,
                    _new_events(item.events, principal),
                    expected_from_wire(item.expected_version),
                )
            )
        started = time.perf_counter()
        results = await face.append_to_streams(appends)
        metrics.append_seconds.observe(time.perf_counter() - started)
        count = sum(len(item.events) for item in appends)
        metrics.appended_events.inc(count)
        metrics.append_batch.observe(count)
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
            # The stored bytes as they are: nothing to decode and encode again.
            store.read_all(after=query.after, limit=query.limit)  # checks the arguments
            raw = store.export_events(after=query.after)
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
        query = _decode(_query_decoder, await _body(request, settings.max_request_bytes), "query")
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
        query = _decode(_query_decoder, await _body(request, settings.max_request_bytes), "query")
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

    # Outermost first: the timing sees every response, the fast path every append.
    append_route = next(r for r in app.routes if getattr(r, "name", None) == "append")
    app.add_middleware(_AppendFastPath, handle=append, route=append_route)
    app.add_middleware(_Timing, metrics=metrics)

    schemas = SchemaRoutes(store)
    schemas.enforce_if_present()
    schemas.install(app, principal_of)
    if projections:
        watched = ProjectionRoutes(store, projections)
        watched.install(app, principal_of)
        metrics.registry.register(watched)
        app.state.close_projections = watched.close

    app.openapi = lambda: describe(app)  # type: ignore[method-assign]
    return app


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
            write_export(store, sink, after=after)  # type: ignore[arg-type]
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
