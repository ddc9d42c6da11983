"""How the server reports failures: one table from error to HTTP status, as RFC 9457 problems.

Every failure of a request becomes an `application/problem+json` body whose `detail` is the
error's message (naming the values) and whose `error` and `args` let a client rebuild the same
error (`eventvault.store.http.wire`). The table is ordered from the most specific class to the
most general; the first class an error is an instance of gives its status, as the command line's
`EXIT_CODES` does for exit codes. Bad input is always a 4xx with its reason, never a 500.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Final

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from eventvault.errors import (
    AuthenticationError,
    BadInputError,
    ConflictError,
    CorruptEventError,
    DatabaseLockedError,
    EventVaultError,
    IntegrityError,
    NotFoundError,
    NotSupportedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ReadOnlyStoreError,
    StorageError,
    StorageFullError,
    StoreClosedError,
    StoreUnavailableError,
    error_kind,
)
from eventvault.store.http.wire import PROBLEM_JSON, Problem, error_members

__all__ = ["STATUSES", "RequestTooLargeError", "install_handlers", "problem_response", "status_for"]

logger = logging.getLogger("eventvault.server")


class RequestTooLargeError(BadInputError):
    """A request body is larger than the server accepts (`--max-request-bytes`).

    Attributes:
        limit: the most bytes a request body may have.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is over the server's limit of {limit} bytes")


STATUSES: Final[tuple[tuple[type[BaseException], HTTPStatus], ...]] = (
    # Errors whose status differs from their tier's.
    (AuthenticationError, HTTPStatus.UNAUTHORIZED),
    (PermissionDeniedError, HTTPStatus.FORBIDDEN),
    (ReadOnlyStoreError, HTTPStatus.FORBIDDEN),
    (NotSupportedError, HTTPStatus.NOT_IMPLEMENTED),
    (PayloadTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (RequestTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (StorageFullError, HTTPStatus.INSUFFICIENT_STORAGE),
    (StoreUnavailableError, HTTPStatus.SERVICE_UNAVAILABLE),
    (DatabaseLockedError, HTTPStatus.SERVICE_UNAVAILABLE),
    (StoreClosedError, HTTPStatus.SERVICE_UNAVAILABLE),
    # Stored data that is damaged is the server's failure, not the request's.
    (CorruptEventError, HTTPStatus.INTERNAL_SERVER_ERROR),
    # The tiers of eventvault.errors.
    (BadInputError, HTTPStatus.BAD_REQUEST),
    (ConflictError, HTTPStatus.CONFLICT),
    (NotFoundError, HTTPStatus.NOT_FOUND),
    (IntegrityError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (StorageError, HTTPStatus.INTERNAL_SERVER_ERROR),
)
"""Exception class to HTTP status, most specific first: the first match wins. Anything else is
a defect: 500."""

_HEADERS: Final = {"cache-control": "no-store"}
_KEBAB: Final = re.compile(r"(?<!^)(?=[A-Z])")


def status_for(error: BaseException) -> HTTPStatus:
    """The HTTP status of an error, from `STATUSES` (500 for anything not in it)."""
    for cls, status in STATUSES:
        if isinstance(error, cls):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def _problem_type(name: str) -> str:
    return "urn:eventvault:problem:" + _KEBAB.sub("-", name.removesuffix("Error")).lower()


def problem_for(error: BaseException) -> Problem:
    """The problem detail of an error."""
    status = status_for(error)
    if isinstance(error, EventVaultError):
        name, args = error_members(error)
        return Problem(
            type=_problem_type(name),
            title=status.phrase,
            status=int(status),
            detail=str(error),
            kind=error_kind(error),
            error=name,
            args=args,
        )
    return Problem(
        type="about:blank",
        title=status.phrase,
        status=int(status),
        detail="the server failed unexpectedly; its log has the details",
    )


def problem_response(error: BaseException, headers: dict[str, str] | None = None) -> Response:
    """The `application/problem+json` response of an error."""
    problem = problem_for(error)
    if problem.status == HTTPStatus.UNAUTHORIZED:
        headers = {**(headers or {}), "www-authenticate": 'Bearer realm="eventvault"'}
    return Response(
        msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={**_HEADERS, **(headers or {})},
    )


def _http_problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    phrase = HTTPStatus(status).phrase
    problem = Problem(type="about:blank", title=phrase, status=status, detail=detail)
    return Response(
        msgspec.json.encode(problem),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={**_HEADERS, **(headers or {})},
    )


def _describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"


def _allowed_methods(request: Request) -> list[str]:
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods - {"HEAD"})


def install_handlers(app: FastAPI) -> None:
    """Make every failure of `app` a problem detail: eventvault errors by `STATUSES`, the
    framework's own (unknown route, wrong method, malformed parameter) by their status, and any
    other exception a 500 that logs the defect."""

    async def on_eventvault_error(request: Request, error: Exception) -> Response:
        status = status_for(error)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, error)
        return problem_response(error)

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        detail = (
            error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
        )
        headers = dict(error.headers or {})
        if error.status_code == HTTPStatus.NOT_FOUND and detail == "Not Found":
            detail = f"no resource at {request.url.path}; the API is described at /openapi.json"
        if error.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            # Routing stops at the first route whose path matches; a path served by several
            # routes (GET and POST of a stream) allows the methods of them all.
            allowed = _allowed_methods(request)
            headers["allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return _http_problem(error.status_code, detail, headers)

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return _http_problem(HTTPStatus.BAD_REQUEST, _describe_validation(error))

    async def on_defect(request: Request, error: Exception) -> Response:
        logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
        return problem_response(error)

    app.add_exception_handler(EventVaultError, on_eventvault_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_defect)
