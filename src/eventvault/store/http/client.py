"""`HTTPEventStore`: the store API over HTTP, against `eventvault serve` (the `client` extra).

An engine like any other: the base class validates every argument and encodes every event here,
in the client, so bad input fails before it is sent, with the library's own errors; the
primitives send what is left to the server in the wire format (`eventvault.store.http.wire`),
and the server's problem details come back as the same errors, with the same attributes.

- Appends carry every event's id, also the ones the client generated, so an append whose answer
  was lost (a connection cut after the commit) is retried once, and the retry returns the
  original result instead of storing anything twice.
- Reads are one streamed NDJSON response each, decoded a line at a time: memory stays flat.
- Subscriptions are Server-Sent Events, read by a thread per subscription into a bounded buffer.
  When the connection drops (the server restarts), the subscription waits and reconnects with
  `Last-Event-ID`, the position of the last event it received: nothing is lost or repeated.
- The seam (`use`, `query`, `run_transaction`) does not travel: a transaction's work is a
  Python function, and component tables belong to the server. They raise `NotSupportedError`;
  `component_versions` reads the server store's versions.
"""

from __future__ import annotations

import collections
import os
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Final, TypeVar

import httpx
import msgspec

from eventvault.errors import (
    EventVaultError,
    InvalidURLError,
    NotSupportedError,
    StorageError,
    StoreUnavailableError,
)
from eventvault.serialization import from_micros, validate_stream_name
from eventvault.store._append import PendingAppend, StoredRow
from eventvault.store.base import DEFAULT_PAGE_SIZE, EventStore, StoreStats
from eventvault.store.http.wire import (
    NDJSON,
    AppendIn,
    AppendOut,
    AppendsIn,
    AppendsOut,
    EventIn,
    HeadOut,
    InfoOut,
    LogQuery,
    Problem,
    StatsOut,
    StreamAppendIn,
    VersionOut,
    deep_safe,
    error_from_problem,
    expected_to_wire,
)
from eventvault.store.masking import mask_url
from eventvault.store.notify import Notifier
from eventvault.store.seam import Component, Dialect, SQLRow, Transaction
from eventvault.store.subscription import Subscription
from eventvault.types import AppendResult, RawEvent, RecordedEvent, StreamInfo

__all__ = ["SUBSCRIPTION_BUFFER", "TOKEN_ENV", "HTTPEventStore"]

T = TypeVar("T")
_Params = dict[str, str | int | float | bool]

TOKEN_ENV: Final = "EVENTVAULT_TOKEN"
"""The environment variable the client takes its bearer token from, when the URL has none."""
SUBSCRIPTION_BUFFER: Final = 10_000
"""Events a subscription holds that its reader has not taken yet; past that it stops reading
from the server (which then waits to send) until the reader catches up."""
HEARTBEAT: Final = 1.0
"""Seconds between the heartbeats the client asks of a quiet subscription."""
SILENCE: Final = 10.0
"""Seconds without a byte, heartbeats included, after which a subscription's connection counts
as dead and is made again."""

_decode_event = deep_safe(msgspec.json.Decoder(RecordedEvent).decode)
_decode_raw = deep_safe(msgspec.json.Decoder(RawEvent).decode)
_info_decoder = msgspec.json.Decoder(StreamInfo)
_problem_decoder = msgspec.json.Decoder(Problem)
_encode = msgspec.json.encode


def _events_in(append: PendingAppend) -> list[EventIn]:
    return [
        EventIn(
            event.event_type,
            msgspec.Raw(event.data),
            msgspec.Raw(event.metadata),
            event.event_id,
            event.schema_version,
        )
        for event in append.events
    ]


def _quoted(stream_name: str) -> str:
    # Every reserved character encoded, dots too: a name "." or ".." must not become a dot
    # segment that a client or proxy would remove from the path.
    return urllib.parse.quote(stream_name, safe="").replace(".", "%2E")


def _problem_of(response: httpx.Response, location: str) -> EventVaultError:
    """The error a failed response describes."""
    try:
        return error_from_problem(_problem_decoder.decode(response.content))
    except msgspec.DecodeError:
        text = response.text[:200]
        if response.status_code >= 500:
            return StoreUnavailableError(location, f"HTTP {response.status_code}: {text}")
        return StorageError(f"{location}: HTTP {response.status_code}: {text}")


def _lines_of(response: httpx.Response) -> Iterator[bytes]:
    pending = b""
    for chunk in response.iter_bytes():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


class HTTPEventStore(EventStore):
    """A store served by `eventvault serve`, reached over HTTP.

    Args:
        url: `http://host:port` or `https://host:port`, with an optional path prefix (a server
            behind a proxy at `https://example.com/events`); a bearer token as the URL's
            password (`http://:TOKEN@host:2113`), else from `EVENTVAULT_TOKEN`; the option
            `?timeout=SECONDS` (30) bounds each request's wait.
        token: the bearer token, instead of the URL's or the environment's.
        max_event_bytes: the client's limit on one event's encoded data plus metadata.
        read_only: refuse appends and imports here, before they are sent.

    Raises:
        InvalidURLError: not an http(s) URL, or a bad option.
        StoreUnavailableError: the server cannot be reached.
        AuthenticationError: the server refused the token.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        max_event_bytes: int = 1024 * 1024,
        read_only: bool = False,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURLError(mask_url(url), "an HTTP store URL is http://host:port/...")
        options = dict(urllib.parse.parse_qsl(parts.query))
        unknown = set(options) - {"timeout"}
        if unknown:
            raise InvalidURLError(
                mask_url(url), f"unknown option {sorted(unknown)[0]!r}; the option is timeout"
            )
        try:
            timeout = float(options.get("timeout", "30"))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout < 86_400:
            raise InvalidURLError(mask_url(url), "timeout must be a number of seconds > 0")
        super().__init__(mask_url(url), max_event_bytes=max_event_bytes, read_only=read_only)
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        self._base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        secret = token or urllib.parse.unquote(parts.password or "") or os.environ.get(TOKEN_ENV)
        self._headers = {"authorization": f"Bearer {secret}"} if secret else {}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._client = httpx.Client(
            base_url=self._base,
            headers=self._headers,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
        )
        self._notifier = Notifier()
        self._feeds: dict[Subscription, _Feed] = {}
        self._feeds_lock = threading.Lock()
        try:
            self._info = msgspec.json.decode(self._get("/v1/info").content, type=InfoOut)
        except BaseException:
            self._client.close()
            raise

    # -- what the engine is ------------------------------------------------------------------

    @property
    def engine(self) -> str:
        """`http`."""
        return "http"

    @property
    def server_engine(self) -> str:
        """The engine of the store the server serves (`sqlite`, `postgres`, `memory`)."""
        return self._info.engine

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    @property
    def dialect(self) -> Dialect:
        return "postgresql" if self._info.dialect == "postgresql" else "sqlite"

    # -- requests ----------------------------------------------------------------------------

    def _send(self, request: Callable[[], httpx.Response], retry: bool = False) -> httpx.Response:
        self._check_open()
        for attempt in (1, 2):
            try:
                response = request()
            except httpx.TransportError as exc:
                # A pooled connection the server had closed, or an answer lost after the
                # request was sent: safe to send again where the request is idempotent.
                if retry and attempt == 1 and not isinstance(exc, httpx.TimeoutException):
                    continue
                self._check_open()
                raise StoreUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc
            if response.status_code >= 400:
                raise _problem_of(response, self.url)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, path: str, params: _Params | None = None) -> httpx.Response:
        return self._send(lambda: self._client.get(path, params=params), retry=True)

    def _post(self, path: str, body: bytes, retry: bool = True) -> httpx.Response:
        headers = {"content-type": "application/json"}
        return self._send(lambda: self._client.post(path, content=body, headers=headers), retry)

    def _stream(
        self,
        decode: Callable[[bytes], T],
        path: str,
        *,
        params: _Params | None = None,
        body: bytes | None = None,
    ) -> Iterator[T]:
        """The lines of a streamed read, decoded one at a time; a problem line raises."""
        self._check_open()
        method = "GET" if body is None else "POST"
        headers = {"accept": NDJSON}
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            with self._client.stream(
                method,
                path,
                params=params,
                content=body,
                headers=headers,
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _problem_of(response, self.url)
                for line in _lines_of(response):
                    self._check_open()
                    try:
                        item = decode(line)
                    except msgspec.DecodeError:
                        raise error_from_problem(_problem_decoder.decode(line)) from None
                    yield item
        except httpx.TransportError as exc:
            self._check_open()
            raise StoreUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        if len(appends) == 1:
            append = appends[0]
            body = _encode(AppendIn(expected_to_wire(append.expected_version), _events_in(append)))
            response = self._post(f"/v1/streams/{_quoted(append.stream_name)}", body)
            one = msgspec.json.decode(response.content, type=AppendOut)
            return [AppendResult(one.stream_position, one.global_position)]
        body = _encode(
            AppendsIn(
                [
                    StreamAppendIn(
                        a.stream_name, expected_to_wire(a.expected_version), _events_in(a)
                    )
                    for a in appends
                ]
            )
        )
        many = msgspec.json.decode(self._post("/v1/appends", body).content, type=AppendsOut)
        return [AppendResult(r.stream_position, r.global_position) for r in many.results]

    def _import(self, batches: Iterator[list[StoredRow]]) -> None:
        # The rows are verified by the base class as they come, spooled to a file, and sent
        # once the last one is: an import that fails on the way sends nothing. The server reads
        # them as event lines that must hold exactly this many events up to this position.
        with tempfile.TemporaryFile() as spool:
            count, head = _spool_events(batches, spool)
            spool.seek(0)
            params = {"expect_count": count, "expect_head": head}
            self._send(
                lambda: self._client.post(
                    "/v1/import",
                    params=params,
                    content=_chunks(spool),
                    headers={"content-type": NDJSON},
                )
            )

    # -- reading -----------------------------------------------------------------------------

    def _iter_stream(
        self, stream_name: str, start: int | None, backwards: bool, limit: int | None
    ) -> Iterator[RecordedEvent]:
        params: _Params = {"backwards": str(backwards).lower()}
        if start is not None:
            params["from_position"] = start
        if limit is not None:
            params["limit"] = limit
        return self._stream(_decode_event, f"/v1/streams/{_quoted(stream_name)}", params=params)

    def _iter_all(
        self,
        after: int,
        backwards: bool,
        limit: int | None,
        types: tuple[str, ...] | None,
        prefix: str | None,
    ) -> Iterator[RecordedEvent]:
        query = LogQuery(after, backwards, limit, None if types is None else list(types), prefix)
        return self._stream(_decode_event, "/v1/log", body=_encode(query))

    def _iter_raw(self, after: int, until: int | None) -> Iterator[RawEvent]:
        params: _Params = {"after": after}
        if until is not None:
            params["until"] = until
        return self._stream(_decode_raw, "/v1/log/raw", params=params)

    def list_streams(self) -> Iterator[StreamInfo]:
        self._check_open()
        return self._stream(_info_decoder.decode, "/v1/streams")

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        return list(self._iter_stream(stream_name, start, backwards, limit))

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        return list(self._iter_all(after, backwards, limit, event_types, stream_prefix))

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        return list(self._iter_raw(after, after + limit))

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        listed = self.list_streams()
        return [info for info in listed if after is None or info.stream_name > after][:limit]

    def get_stream_version(self, stream_name: str) -> int | None:
        validate_stream_name(stream_name)
        response = self._get(f"/v1/versions/{_quoted(stream_name)}")
        return msgspec.json.decode(response.content, type=VersionOut).version

    def head_position(self) -> int:
        return msgspec.json.decode(self._get("/v1/head").content, type=HeadOut).head_position

    def stats(self) -> StoreStats:
        found = msgspec.json.decode(self._get("/v1/stats").content, type=StatsOut)
        return StoreStats(
            found.event_count,
            found.stream_count,
            found.head_position,
            found.first_recorded_at,
            found.last_recorded_at,
        )

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe_to_all(
        self,
        *,
        after: int = 0,
        event_types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> Subscription:
        # The arguments are checked as every engine checks them; the fetch is this engine's.
        checked = super().subscribe_to_all(
            after=after, event_types=event_types, stream_prefix=stream_prefix
        )
        checked.close()
        query = LogQuery(
            after=after,
            event_types=None if event_types is None else list(event_types),
            stream_prefix=stream_prefix,
            heartbeat=HEARTBEAT,
        )
        feed = _Feed(self, "POST", "/v1/subscriptions/log", _encode(query), {}, after, True)
        return self._follow(feed, after, global_order=True)

    def subscribe_to_stream(self, stream_name: str, *, after: int | None = None) -> Subscription:
        super().subscribe_to_stream(stream_name, after=after).close()
        params: _Params = {"heartbeat": HEARTBEAT}
        if after is not None:
            params["after"] = after
        start = -1 if after is None else after
        path = f"/v1/subscriptions/streams/{_quoted(stream_name)}"
        feed = _Feed(self, "GET", path, None, params, start, False)
        return self._follow(feed, start, global_order=False)

    def _follow(self, feed: _Feed, start: int, *, global_order: bool) -> Subscription:
        subscription = Subscription(self, feed.fetch, start, global_order=global_order)
        with self._feeds_lock:
            self._feeds[subscription] = feed
        return self._register(subscription)

    def _unregister(self, subscription: Subscription) -> None:
        super()._unregister(subscription)
        with self._feeds_lock:
            feed = self._feeds.pop(subscription, None)
        if feed is not None:
            feed.stop()

    # -- the seam: not over HTTP -------------------------------------------------------------

    def _refuse(self, operation: str) -> NotSupportedError:
        return NotSupportedError(
            operation,
            "http",
            "component tables and transactions live beside the server's store: run them on "
            "the server's side, with a store opened on its database URL",
        )

    def _use(self, component: Component) -> None:
        raise self._refuse("use")

    def _component_versions(self) -> dict[str, int]:
        # Reading which tables the server's store holds is harmless, and what export files
        # ask to know whether to carry a schema registry.
        return msgspec.json.decode(self._get("/v1/components").content, type=dict[str, int])

    def _query_components(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        raise self._refuse("query")

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        raise self._refuse("run_transaction")

    def _close(self) -> None:
        with self._feeds_lock:
            feeds = list(self._feeds.values())
            self._feeds.clear()
        for feed in feeds:
            feed.stop()
        self._client.close()


def _spool_events(batches: Iterator[list[StoredRow]], out: IO[bytes]) -> tuple[int, int]:
    """Write verified rows as the event lines of an export; return their count and the last
    global position (0 for none)."""
    count = 0
    last = 0
    for batch in batches:
        out.write(
            b"".join(
                _encode(
                    RawEvent(
                        global_position=row.global_position,
                        stream_name=row.stream_name,
                        stream_position=row.stream_position,
                        event_id=uuid.UUID(bytes=row.event_id),
                        event_type=row.event_type,
                        schema_version=row.schema_version,
                        data=msgspec.Raw(row.data),
                        metadata=msgspec.Raw(row.metadata),
                        recorded_at=from_micros(row.recorded_at),
                        hash=row.hash.hex(),
                    )
                )
                + b"\n"
                for row in batch
            )
        )
        count += len(batch)
        if batch:
            last = batch[-1].global_position
    return count, last


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    yield from iter(lambda: spool.read(65536), b"")


class _Feed:
    """The Server-Sent Events of one subscription, read by a thread into a bounded buffer.

    `fetch` is the subscription's fetch function: it takes what the thread buffered, and when
    the connection is down it raises `StoreUnavailableError` (the subscription then waits and
    calls again) after starting a new connection from the last position received.
    """

    def __init__(
        self,
        store: HTTPEventStore,
        method: str,
        path: str,
        body: bytes | None,
        params: _Params,
        after: int,
        global_order: bool,
    ) -> None:
        self._store = store
        self._method = method
        self._path = path
        self._body = body
        self._params = params
        self._cursor = after
        self._global_order = global_order
        self._events: collections.deque[RecordedEvent] = collections.deque()
        self._room = threading.Condition()
        self._error: BaseException | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    def fetch(self, position: int) -> tuple[list[RecordedEvent], int]:
        with self._room:
            if self._events:
                count = min(len(self._events), DEFAULT_PAGE_SIZE)
                page = [self._events.popleft() for _ in range(count)]
                self._room.notify_all()
                last = page[-1]
                return page, last.global_position if self._global_order else last.stream_position
            error, self._error = self._error, None
            running = self._thread is not None and self._thread.is_alive()
            if not running and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name="eventvault-http-feed", daemon=True
                )
                self._thread.start()
        if error is not None:
            raise error
        return [], position

    def stop(self) -> None:
        with self._room:
            self._stopped = True
            self._room.notify_all()

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "text/event-stream", **self._store._headers}
        if self._cursor >= 0:
            headers["last-event-id"] = str(self._cursor)
        if self._body is not None:
            headers["content-type"] = "application/json"
        return headers

    def _run(self) -> None:
        store = self._store
        try:
            with (
                httpx.Client(
                    base_url=store._base,
                    timeout=httpx.Timeout(SILENCE, connect=5.0),
                ) as client,
                client.stream(
                    self._method,
                    self._path,
                    params=self._params,
                    content=self._body,
                    headers=self._headers(),
                ) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    self._fail(_problem_of(response, store.url))
                    return
                self._read(response)
            if not self._stopped:
                self._fail(StoreUnavailableError(store.url, "the server ended the subscription"))
        except httpx.TransportError as exc:
            self._fail(StoreUnavailableError(store.url, f"{type(exc).__name__}: {exc}"))
        except EventVaultError as exc:
            self._fail(exc)

    def _read(self, response: httpx.Response) -> None:
        data: list[bytes] = []
        for line in _lines_of(response):
            if self._stopped:
                return
            if line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
            elif not line and data:
                event = _decode_event(b"\n".join(data))
                data = []
                self._take(event)

    def _take(self, event: RecordedEvent) -> None:
        with self._room:
            while len(self._events) >= SUBSCRIPTION_BUFFER and not self._stopped:
                self._room.wait(0.5)
            # A reader that finds events buffered takes them without waiting: only an empty
            # buffer may have a reader asleep on the notifier.
            wake = not self._events
            self._events.append(event)
            self._cursor = event.global_position if self._global_order else event.stream_position
        if wake:
            self._store.notifier.notify()

    def _fail(self, error: BaseException) -> None:
        with self._room:
            self._error = error
        self._store.notifier.notify()
