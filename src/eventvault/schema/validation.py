"""Validating payloads against registered schemas, and the check a store runs on every append.

The validator is jsonschema-rs (ADR 0010 has the measurement that chose it): each registered
version is compiled once, and an appended event's stored bytes are decoded by msgspec and
checked with `is_valid`; only an invalid payload pays for the list of its errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec

from eventvault.errors import (
    SchemaSupportMissingError,
    SchemaValidationError,
    UnregisteredSchemaError,
)
from eventvault.schema.state import RegistryState
from eventvault.serialization import EncodedEvent

__all__ = ["CompiledSchema", "SchemaEnforcer", "compile_schema"]

_decode = msgspec.json.decode
MAX_REPORTED_ERRORS: Final = 20
"""The most violations an error lists for one event."""


class CompiledSchema:
    """A registered schema compiled for validation.

    Attributes:
        event_type: the type.
        version: the version.
        is_valid: whether a decoded payload matches (the fast path).
    """

    __slots__ = ("_validator", "event_type", "is_valid", "version")

    def __init__(self, event_type: str, version: int, schema: Mapping[str, object]) -> None:
        try:
            import jsonschema_rs
        except ImportError:
            raise SchemaSupportMissingError("validating events against their schemas") from None
        self.event_type = event_type
        self.version = version
        self._validator: Any = jsonschema_rs.Draft202012Validator(dict(schema))
        self.is_valid: Callable[[object], bool] = self._validator.is_valid

    def errors(self, payload: object) -> list[tuple[str, str]]:
        """Every violation of a payload: (JSON Pointer into the payload, reason), at most
        `MAX_REPORTED_ERRORS`, in the order the validator finds them."""
        found: list[tuple[str, str]] = []
        for error in self._validator.iter_errors(payload):
            pointer = "".join(
                "/" + str(part).replace("~", "~0").replace("/", "~1")
                for part in error.instance_path
            )
            found.append((pointer, str(error.message)))
            if len(found) >= MAX_REPORTED_ERRORS:
                break
        return found


def compile_schema(event_type: str, version: int, schema: Mapping[str, object]) -> CompiledSchema:
    """Compile a registered schema for validation.

    Raises:
        SchemaSupportMissingError: jsonschema-rs is not installed.
    """
    return CompiledSchema(event_type, version, schema)


class SchemaEnforcer:
    """The append validator of a store that enforces its schemas (`EventStore.
    set_append_validator`): every event of a registered type must name a registered version
    and match its schema; events of other types are allowed or refused by the registry's
    policy.

    Compiled schemas are kept for good: a registered version never changes. What the registry
    does not hold is looked up again in the store (a version or type registered meanwhile, by
    this process or another), but an unregistered type that the policy allows is looked up at
    most once per `refresh_seconds`, so that appends of such types cost no query each.

    Args:
        load: gives the registry's current state, read from the store.
        refresh_seconds: how long an allowed unregistered type, and the policy, are trusted.
    """

    def __init__(self, load: Callable[[], RegistryState], refresh_seconds: float = 1.0) -> None:
        self._load = load
        self._refresh_seconds = refresh_seconds
        self._compiled: dict[tuple[str, int], CompiledSchema] = {}
        self._allowed_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, stream_name: str, events: Sequence[EncodedEvent]) -> None:
        """Check one stream's events; raise for the first that is refused.

        Raises:
            SchemaValidationError: an event's data does not match its schema.
            UnregisteredSchemaError: an event names a version its type does not have, or a
                type without schema where the policy refuses such types.
        """
        compiled = self._compiled
        for index, event in enumerate(events):
            check = compiled.get((event.event_type, event.schema_version))
            if check is None:
                check = self._look_up(stream_name, index, event)
                if check is None:
                    continue
            payload = _decode(event.data)
            if not check.is_valid(payload):
                raise SchemaValidationError(
                    stream_name,
                    index,
                    event.event_type,
                    event.schema_version,
                    check.errors(payload),
                )

    def forget(self, event_type: str | None = None) -> None:
        """Drop what is trusted about unregistered types (one, or all): the next append of
        such a type reads the registry again. The registry calls it after its own changes."""
        with self._lock:
            if event_type is None:
                self._allowed_until.clear()
            else:
                self._allowed_until.pop(event_type, None)

    def _look_up(self, stream_name: str, index: int, event: EncodedEvent) -> CompiledSchema | None:
        event_type, version = event.event_type, event.schema_version
        until = self._allowed_until.get(event_type)
        if until is not None and time.monotonic() < until:
            return None
        state = self._load()
        entry = state.types.get(event_type)
        if entry is None or not entry.versions:
            if state.unregistered == "refuse":
                raise UnregisteredSchemaError(stream_name, index, event_type, version, [])
            with self._lock:
                self._allowed_until[event_type] = time.monotonic() + self._refresh_seconds
            return None
        registered = entry.versions.get(version)
        if registered is None:
            raise UnregisteredSchemaError(
                stream_name, index, event_type, version, sorted(entry.versions)
            )
        check = compile_schema(event_type, version, registered.schema)
        with self._lock:
            self._compiled[(event_type, version)] = check
            self._allowed_until.pop(event_type, None)
        return check
