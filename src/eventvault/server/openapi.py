"""The OpenAPI document the server publishes at /openapi.json (and shows at /docs).

FastAPI describes the routes and their query parameters; the bodies, which the routes decode
themselves with msgspec (`eventvault.store.http.wire`), and the problem details every route may
answer with are described here, so that the document matches every response the server gives
(schemathesis holds it to that in tests/server/).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from eventvault.store.http.wire import NDJSON, PROBLEM_JSON, SSE

__all__ = ["describe"]

_EXPECTED: Final = {
    "description": "A stream position (the version the stream must be at), or a state.",
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "enum": ["any", "no_stream", "stream_exists"]},
    ],
}
_EVENT_IN: Final = {
    "type": "object",
    "required": ["event_type", "data"],
    "additionalProperties": False,
    "properties": {
        "event_type": {"type": "string", "minLength": 1, "maxLength": 200},
        "data": {"type": "object"},
        "metadata": {"type": ["object", "null"]},
        "event_id": {"type": ["string", "null"], "format": "uuid"},
        "schema_version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1, "default": 1},
    },
}
_APPEND_IN: Final = {
    "type": "object",
    "required": ["expected_version", "events"],
    "additionalProperties": False,
    "properties": {
        "expected_version": _EXPECTED,
        "events": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/EventIn"},
        },
    },
}
_APPENDS_IN: Final = {
    "type": "object",
    "required": ["appends"],
    "additionalProperties": False,
    "properties": {
        "appends": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["stream_name", "expected_version", "events"],
                "additionalProperties": False,
                "properties": {
                    "stream_name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "expected_version": _EXPECTED,
                    "events": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "#/components/schemas/EventIn"},
                    },
                },
            },
        }
    },
}
_POSITIONS: Final = {
    "type": "object",
    "required": ["stream_position", "global_position"],
    "properties": {
        "stream_position": {"type": "integer"},
        "global_position": {"type": "integer"},
    },
}
_EVENT: Final = {
    "type": "object",
    "description": "A recorded event; `data` and `metadata` are its stored JSON bytes.",
    "required": [
        "stream_name",
        "stream_position",
        "global_position",
        "event_id",
        "event_type",
        "schema_version",
        "data",
        "metadata",
        "recorded_at",
        "hash",
    ],
    "properties": {
        "stream_name": {"type": "string"},
        "stream_position": {"type": "integer"},
        "global_position": {"type": "integer"},
        "event_id": {"type": "string", "format": "uuid"},
        "event_type": {"type": "string"},
        "schema_version": {"type": "integer"},
        "data": {"type": "object"},
        "metadata": {"type": "object"},
        "recorded_at": {"type": "string", "format": "date-time"},
        "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}
_LOG_QUERY: Final = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "after": {"type": "integer", "minimum": 0, "default": 0},
        "backwards": {"type": "boolean", "default": False},
        "limit": {"type": ["integer", "null"], "minimum": 0},
        "event_types": {"type": ["array", "null"], "items": {"type": "string"}},
        "stream_prefix": {"type": ["string", "null"]},
        "heartbeat": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
}
_PROBLEM: Final = {
    "type": "object",
    "description": "RFC 9457 problem details; `error` and `args` name the eventvault error.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "kind": {"type": "string"},
        "error": {"type": "string"},
        "args": {"type": "object"},
    },
}
_SCHEMAS: Final = {
    "EventIn": _EVENT_IN,
    "AppendIn": _APPEND_IN,
    "AppendsIn": _APPENDS_IN,
    "AppendOut": _POSITIONS,
    "RecordedEvent": _EVENT,
    "LogQuery": _LOG_QUERY,
    "Problem": _PROBLEM,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _lines(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {NDJSON: {"schema": schema}}}


_EVENTS: Final = _lines(_ref("RecordedEvent"), "Events, one JSON object per line (NDJSON).")
_STREAM: Final = _lines(
    {
        "type": "object",
        "properties": {
            "stream_name": {"type": "string"},
            "version": {"type": "integer"},
            "last_global_position": {"type": "integer"},
        },
    },
    "Streams, one per line, in name order (NDJSON).",
)
_SSE: Final = {
    "description": "Server-Sent Events: `id:` the event's position, `data:` the event.",
    "content": {SSE: {"schema": {"type": "string"}}},
}
_SUCCESS: Final[dict[tuple[str, str], tuple[str, dict[str, Any]]]] = {
    ("/health", "get"): (
        "200",
        _json({"type": "object", "properties": {"status": {"type": "string"}}}, "Healthy."),
    ),
    ("/metrics", "get"): (
        "200",
        {
            "description": "Prometheus text exposition.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    ),
    ("/v1/info", "get"): ("200", _json({"type": "object"}, "The server and its store.")),
    ("/v1/components", "get"): (
        "200",
        _json(
            {"type": "object", "additionalProperties": {"type": "integer"}},
            "Component name to the version of its tables (the store's own as `eventvault`).",
        ),
    ),
    ("/v1/head", "get"): (
        "200",
        _json(
            {"type": "object", "properties": {"head_position": {"type": "integer"}}},
            "The head position.",
        ),
    ),
    ("/v1/stats", "get"): ("200", _json({"type": "object"}, "Counts and times.")),
    ("/v1/streams/{stream_name}", "post"): ("201", _json(_ref("AppendOut"), "Appended.")),
    ("/v1/appends", "post"): (
        "201",
        _json(
            {
                "type": "object",
                "properties": {"results": {"type": "array", "items": _ref("AppendOut")}},
            },
            "Appended, one result per stream.",
        ),
    ),
    ("/v1/streams/{stream_name}", "get"): ("200", _EVENTS),
    ("/v1/versions/{stream_name}", "get"): (
        "200",
        _json(
            {
                "type": "object",
                "properties": {
                    "stream_name": {"type": "string"},
                    "version": {"type": ["integer", "null"]},
                },
            },
            "The stream's version, null when it has no events.",
        ),
    ),
    ("/v1/streams", "get"): ("200", _STREAM),
    ("/v1/log", "get"): ("200", _EVENTS),
    ("/v1/log", "post"): ("200", _EVENTS),
    ("/v1/log/raw", "get"): ("200", _EVENTS),
    ("/v1/export", "get"): (
        "200",
        _lines({"type": "object"}, "An export file (docs/export-format.md)."),
    ),
    ("/v1/import", "post"): (
        "201",
        _json({"type": "object", "properties": {"imported": {"type": "integer"}}}, "Imported."),
    ),
    ("/v1/subscriptions/log", "get"): ("200", _SSE),
    ("/v1/subscriptions/log", "post"): ("200", _SSE),
    ("/v1/subscriptions/streams/{stream_name}", "get"): ("200", _SSE),
    ("/v1/schemas", "get"): ("200", _json({"type": "object"}, "The registry's types.")),
    ("/v1/projections", "get"): (
        "200",
        _json({"type": "object"}, "Each projection's state, checkpoint, lag and failure."),
    ),
    ("/v1/projections/{name}", "get"): ("200", _json({"type": "object"}, "One projection.")),
    ("/v1/schemas/{event_type}", "get"): (
        "200",
        _json({"type": "object"}, "The type's versions, with their schemas."),
    ),
    ("/v1/schemas/{event_type}", "post"): (
        "201",
        _json(
            {
                "type": "object",
                "properties": {
                    "event_type": {"type": "string"},
                    "version": {"type": "integer"},
                    "created": {"type": "boolean"},
                },
            },
            "Registered (200 when the schema was registered already).",
        ),
    ),
}
_BODIES: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("/v1/streams/{stream_name}", "post"): {"application/json": {"schema": _ref("AppendIn")}},
    ("/v1/appends", "post"): {"application/json": {"schema": _ref("AppendsIn")}},
    ("/v1/log", "post"): {"application/json": {"schema": _ref("LogQuery")}},
    ("/v1/subscriptions/log", "post"): {"application/json": {"schema": _ref("LogQuery")}},
    ("/v1/import", "post"): {NDJSON: {"schema": {"type": "string"}}},
    ("/v1/schemas/{event_type}", "post"): {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["schema"],
                "additionalProperties": False,
                "properties": {
                    "schema": {"type": "object"},
                    "version": {"type": ["integer", "null"], "minimum": 1},
                },
            }
        }
    },
}
_FAILURES: Final = {
    "400": "Bad input: the reason names the value.",
    "401": "No token, or an unknown or revoked one.",
    "403": "The token's scopes or stream prefixes do not allow this, or the store is read-only.",
    "404": "Not found.",
    "409": "Conflict: a wrong expected version (with the expected and actual), a duplicate id.",
    "413": "The request or an event is too large.",
    "422": "An import file or event that is not what was recorded.",
    "500": "Stored data is damaged, or the server failed.",
    "501": "Not supported.",
    "503": "The store is unavailable or closed.",
    "507": "The store's disk or database is full.",
}


def describe(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of the app, built once and kept."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=(
            "The HTTP API of eventvault: JSON over HTTP, reads as NDJSON, subscriptions as "
            "Server-Sent Events, errors as RFC 9457 problem details. Send a token as "
            "`Authorization: Bearer ev_...`. Reference: docs/http.md."
        ),
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(_SCHEMAS)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    problem = {PROBLEM_JSON: {"schema": _ref("Problem")}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            key = (path, method)
            status, success = _SUCCESS[key]
            operation["responses"] = {
                status: success,
                **({"200": success} if key == ("/v1/schemas/{event_type}", "post") else {}),
                **{
                    code: {"description": text, "content": problem}
                    for code, text in _FAILURES.items()
                },
            }
            if key in _BODIES:
                operation["requestBody"] = {"required": True, "content": _BODIES[key]}
            if path != "/health":
                operation["security"] = [{"bearer": []}, {}]
    app.openapi_schema = document
    return document
