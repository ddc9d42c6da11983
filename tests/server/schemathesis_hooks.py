"""Schemathesis hooks (`SCHEMATHESIS_HOOKS=tests.server.schemathesis_hooks`): how to send the
NDJSON body of `POST /v1/import`."""

from __future__ import annotations

from typing import Any

import msgspec
import schemathesis


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return msgspec.json.encode(value) + b"\n"
