"""Appends over HTTP: the request bodies of `POST /v1/streams/{stream}` and `POST /v1/appends`
made into `NewEvent`s, and the one-stream append answered on raw ASGI.

One-event appends from many clients are the server's hottest path, and each costs the server
only a few tens of microseconds of its own work (the commit is shared, ADR 0001). The
framework's layers around a route (middleware, routing, the request and response objects, the
header mappings) cost more than that, so `AppendRoute` answers the route before them, reading
the raw headers and body and sending precomputed headers; the framework's route stays declared
for the OpenAPI document (and answers the paths the lean one leaves to it) through the same
`AppendRoute.append`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import msgspec
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from eventvault._nesting import depth_over_limit
from eventvault.errors import InvalidEventError, PayloadTooDeepError, PermissionDeniedError
from eventvault.serialization import MAX_NESTING_DEPTH, decode_json_object
from eventvault.server.errors import RequestTooLargeError, problem_response, status_for
from eventvault.server.metrics import Metrics
from eventvault.server.tokens import Authorizer, Principal
from eventvault.store.aio import AsyncEventStore
from eventvault.store.http.wire import AppendIn, AppendOut, EventIn, deep_safe, expected_from_wire
from eventvault.types import NewEvent

__all__ = ["APPEND_ROUTE", "AppendRoute", "decode_body", "new_events", "read_body"]

APPEND_ROUTE: Final = "/v1/streams/{stream_name:path}"
"""The route of one-stream appends, as the framework declares it (and metrics name it)."""

logger = logging.getLogger("eventvault.server")
_encode = deep_safe(msgspec.json.encode)
_decode_object = deep_safe(decode_json_object)
_append_decoder = msgspec.json.Decoder(AppendIn)
_JSON_TYPE: Final = (b"content-type", b"application/json")


class ClientGoneError(ClientDisconnect):
    """The client went away before its request's body arrived: there is no one to answer."""


async def read_body(receive: Receive, declared: int | None, limit: int) -> bytes:
    """A request's body from its ASGI messages, refused once it grows past `limit` bytes.

    Args:
        receive: the request's ASGI `receive`.
        declared: its `Content-Length`, when it sent one.
        limit: the most bytes accepted.

    Raises:
        RequestTooLargeError: the body (or its declared length) is over `limit`.
        ClientGoneError: the client disconnected first.
    """
    if declared is not None and declared > limit:
        raise RequestTooLargeError(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGoneError
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise RequestTooLargeError(limit)
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def decode_body(decoder: msgspec.json.Decoder[Any], body: bytes, what: str) -> Any:
    """A request body decoded into its wire type.

    Raises:
        InvalidEventError: the body is not valid JSON of that type, or nests too deeply.
    """
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


def new_events(events: list[EventIn], principal: Principal) -> list[NewEvent]:
    """The events of a request, with the principal's `actor` in their metadata.

    Raises:
        InvalidEventError, PayloadTooDeepError: a payload is not a JSON object, or too deep.
        PermissionDeniedError: an event's metadata names another actor than the token's.
    """
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


class AppendRoute:
    """`POST /v1/streams/{stream}`: append to one stream.

    Args:
        face: the async face of the served store (appends queue for its group commit from the
            event loop).
        authorizer: who may append where.
        metrics: where appends and requests are counted.
        limit: the largest request body accepted, in bytes.
    """

    def __init__(
        self, face: AsyncEventStore, authorizer: Authorizer, metrics: Metrics, limit: int
    ) -> None:
        self._face = face
        self._authorizer = authorizer
        self._metrics = metrics
        self._limit = limit

    async def append(
        self,
        stream_name: str,
        authorization: str | None,
        receive: Receive,
        declared: int | None,
    ) -> bytes:
        """Check the token, read and decode the body, append, and return the response body.

        Args:
            stream_name: the stream, from the path.
            authorization: the `Authorization` header, None when absent.
            receive: the request's ASGI `receive`, to read its body with.
            declared: the body's `Content-Length`, when the request sent one.

        Returns:
            The JSON of an `AppendOut`.

        Raises:
            EventVaultError: the request may not append there, the body is bad, or the append
                fails (its problem detail is the answer).
        """
        principal = await self._authorizer.authenticate(authorization)
        principal.require_stream("write", stream_name)
        body = decode_body(
            _append_decoder, await read_body(receive, declared, self._limit), "append body"
        )
        events = new_events(body.events, principal)
        started = time.perf_counter()
        result = await self._face.append_to_stream(
            stream_name, events, expected_version=expected_from_wire(body.expected_version)
        )
        self._metrics.observe_append(len(events), started)
        return _encode(AppendOut(result.stream_position, result.global_position))

    async def __call__(self, stream_name: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request of an ASGI `scope` whose path names `stream_name`."""
        started = time.perf_counter()
        authorization: str | None = None
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = bytes(value).decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        try:
            content = await self.append(stream_name, authorization, receive, declared)
        except ClientGoneError:
            return
        except Exception as exc:
            if status_for(exc) >= 500:
                logger.error("POST %s failed: %s", scope["path"], exc, exc_info=exc)
            response = problem_response(exc)
            self._metrics.observe_request(APPEND_ROUTE, response.status_code, started)
            await response(scope, receive, send)
            return
        self._metrics.observe_request(APPEND_ROUTE, 201, started)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [_JSON_TYPE, (b"content-length", b"%d" % len(content))],
            }
        )
        await send({"type": "http.response.body", "body": content})
