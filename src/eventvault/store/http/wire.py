"""The wire format of eventvault's HTTP API: the one contract between the server and clients.

JSON over HTTP under `/v1` (docs/http.md is the reference, ADR 0012 the decision). An event
travels as the JSON object of a `RecordedEvent` (the same names; `data` and `metadata` are the
exact stored bytes, which `msgspec.Raw` embeds as they are); reads are NDJSON, one event per
line; subscriptions are Server-Sent Events whose `id:` is the event's position. Errors are RFC
9457 problem details whose members `error` and `args` name the eventvault error and the values
it carries, so a client raises the same exception, with the same attributes, as the library.

The server and the HTTP client engine both encode and decode with this module and nothing else;
the client imports no server module and the server no client module.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, Literal, TypeAlias, TypeVar

import msgspec

from eventvault import errors
from eventvault._nesting import on_fresh_stack
from eventvault.errors import ERROR_KINDS, EventVaultError, InvalidExpectedVersionError
from eventvault.types import ExpectedVersion, StreamState

__all__ = [
    "API_PREFIX",
    "NDJSON",
    "PROBLEM_JSON",
    "SSE",
    "AppendIn",
    "AppendOut",
    "AppendsIn",
    "AppendsOut",
    "EventIn",
    "HeadOut",
    "InfoOut",
    "LogQuery",
    "Problem",
    "StatsOut",
    "StreamAppendIn",
    "VersionOut",
    "WireExpectedVersion",
    "deep_safe",
    "error_from_problem",
    "error_members",
    "expected_from_wire",
    "expected_to_wire",
]

API_PREFIX: Final = "/v1"
NDJSON: Final = "application/x-ndjson"
PROBLEM_JSON: Final = "application/problem+json"
SSE: Final = "text/event-stream"

_In = TypeVar("_In")
_Out = TypeVar("_Out")

WireExpectedVersion: TypeAlias = int | Literal["any", "no_stream", "stream_exists"]
"""`expected_version` on the wire: a stream position, or a `StreamState`'s value."""


class EventIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An event to append, as a request carries it.

    `data` and `metadata` are kept as the request's bytes here (`null` metadata: none); the
    server decodes them into
    JSON objects and the store encodes them canonically, so the stored bytes never depend on
    how a client spaced its JSON.
    """

    event_type: str
    data: msgspec.Raw
    metadata: msgspec.Raw = msgspec.Raw(b"null")
    event_id: uuid.UUID | None = None
    schema_version: int = 1


class AppendIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST /v1/streams/{stream}`."""

    expected_version: WireExpectedVersion
    events: list[EventIn]


class StreamAppendIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One stream's part of `POST /v1/appends`."""

    stream_name: str
    expected_version: WireExpectedVersion
    events: list[EventIn]


class AppendsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST /v1/appends`: several streams, atomically."""

    appends: list[StreamAppendIn]


class AppendOut(msgspec.Struct, frozen=True):
    """Where an append's last event landed."""

    stream_position: int
    global_position: int


class AppendsOut(msgspec.Struct, frozen=True):
    """One result per stream of `POST /v1/appends`, in order."""

    results: list[AppendOut]


class VersionOut(msgspec.Struct, frozen=True):
    """`GET /v1/versions/{stream}`: the stream's version, null when it has no events."""

    stream_name: str
    version: int | None


class HeadOut(msgspec.Struct, frozen=True):
    """`GET /v1/head`: the global position of the last event (0 when the store is empty)."""

    head_position: int


class StatsOut(msgspec.Struct, frozen=True):
    """`GET /v1/stats`."""

    event_count: int
    stream_count: int
    head_position: int
    first_recorded_at: datetime | None
    last_recorded_at: datetime | None


class InfoOut(msgspec.Struct, frozen=True):
    """`GET /v1/info`: what the server serves."""

    eventvault_version: str
    engine: str
    dialect: str
    read_only: bool
    max_event_bytes: int


class LogQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST /v1/log` and `POST /v1/subscriptions/log`: the query parameters of
    their GET forms, for filters too long for a URL (thousands of event types)."""

    after: int = 0
    backwards: bool = False
    limit: int | None = None
    event_types: list[str] | None = None
    stream_prefix: str | None = None
    heartbeat: float | None = None


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem detail, with eventvault's extension members.

    Attributes:
        type: a URI naming the kind of problem (`urn:eventvault:problem:<error>`).
        title: a short summary of that kind.
        status: the HTTP status.
        detail: this occurrence, naming the values (the error's message).
        kind: the error's tier (`bad-input`, `conflict`, `not-found`, `integrity`, `storage`).
        error: the eventvault error class (`WrongExpectedVersionError`).
        args: the values the error carries, by the names of its attributes.
    """

    type: str
    title: str
    status: int
    detail: str
    kind: str | None = None
    error: str | None = None
    args: dict[str, object] = msgspec.field(default_factory=dict)


def deep_safe(function: Callable[[_In], _Out]) -> Callable[[_In], _Out]:
    """An encoder or decoder that, run out of recursion deep in a call stack (an event nested
    to the limit, read from a thread with little stack left), runs again on a fresh stack."""

    def call(value: _In) -> _Out:
        try:
            return function(value)
        except RecursionError:
            return on_fresh_stack(function, value)

    return call


def expected_to_wire(expected: ExpectedVersion) -> WireExpectedVersion:
    """An expected version as the wire carries it."""
    if isinstance(expected, StreamState):
        return expected.value
    return expected


def expected_from_wire(value: object) -> ExpectedVersion:
    """An expected version from the wire.

    Raises:
        InvalidExpectedVersionError: neither a state's name nor an int >= 0.
    """
    if isinstance(value, str):
        try:
            return StreamState(value)
        except ValueError:
            raise InvalidExpectedVersionError(value) from None
    if type(value) is int and value >= 0:
        return value
    raise InvalidExpectedVersionError(value)


# -- errors ----------------------------------------------------------------------------------


def _error_classes() -> dict[str, type[EventVaultError]]:
    found: dict[str, type[EventVaultError]] = {}
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, EventVaultError):
            found[name] = value
    return found


_ERRORS: Final = _error_classes()
_TIERS: Final = {kind: tier for tier, kind in ERROR_KINDS.items()}


def _parameters(cls: type[EventVaultError]) -> list[inspect.Parameter]:
    if cls.__init__ is Exception.__init__:
        return []
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _to_wire(value: object) -> object:
    if isinstance(value, StreamState):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, ValueError, OverflowError, RecursionError):
        return repr(value)


def error_members(error: EventVaultError) -> tuple[str, dict[str, object]]:
    """The class name of an eventvault error and the values it carries, for a problem detail.

    The values are the arguments of the error's constructor, read back from the attributes of
    the same names, so that `error_from_problem` can build the same error.
    """
    cls = type(error)
    # An error of a subclass eventvault does not know (the CLI's own) travels as its nearest
    # known ancestor.
    while cls.__name__ not in _ERRORS and cls.__base__ is not None:
        cls = cls.__base__
    values: dict[str, object] = {}
    parameters = _parameters(cls)
    if all(hasattr(error, p.name) for p in parameters) and parameters:
        values = {p.name: _to_wire(getattr(error, p.name)) for p in parameters}
    else:
        values = {"message": str(error)}
    return cls.__name__, values


def _from_wire(name: str, value: object) -> object:
    if name in ("expected",) and isinstance(value, str):
        try:
            return StreamState(value)
        except ValueError:
            return value
    if name == "event_id" and isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return value
    return value


def error_from_problem(problem: Problem) -> EventVaultError:
    """The eventvault error a problem detail describes: the same class with the same values
    where this eventvault knows it, else an error of its tier carrying the detail."""
    cls = _ERRORS.get(problem.error or "")
    if cls is not None:
        args: Mapping[str, object] = problem.args
        parameters = _parameters(cls)
        try:
            if "message" in args or not parameters:
                return cls(str(args.get("message", problem.detail)))
            positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
            keywords = [p for p in parameters if p.kind is p.KEYWORD_ONLY]
            built = cls(
                *(_from_wire(p.name, args[p.name]) for p in positional),
                **{p.name: _from_wire(p.name, args[p.name]) for p in keywords if p.name in args},
            )
        except (KeyError, TypeError, ValueError):
            pass
        else:
            return built
    tier = _TIERS.get(problem.kind or "", EventVaultError)
    return tier(problem.detail)
