"""The whole error hierarchy of eventvault, and nothing else.

Every error derives from `EventVaultError`, carries the values involved as attributes and names
them in its message. Below the root, five tiers say what kind of failure an error is, so that a
table of a handful of rows maps every error to an exit code or an HTTP status:

| tier | meaning |
| --- | --- |
| `BadInputError` | the caller asked for something that cannot be done as given; nothing changed |
| `ConflictError` | the request collides with what is stored; nothing was written |
| `NotFoundError` | what was asked for does not exist |
| `IntegrityError` | stored or imported data is not what was recorded |
| `StorageError` | the storage engine failed or cannot serve the request |

Each error below the root belongs to exactly one tier; `ERROR_KINDS` names the tiers for
machines. Errors about bad arguments also derive from `ValueError` or `TypeError`, and errors
about something missing from `LookupError`, so code that catches those keeps working.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Final

__all__ = [
    "ERROR_KINDS",
    "AggregateDefinitionError",
    "AggregateNotFoundError",
    "AggregateQueryError",
    "AuthenticationError",
    "BadInputError",
    "ConflictError",
    "CorruptEventError",
    "DatabaseLockedError",
    "DuplicateEventIdError",
    "EventDecodeError",
    "EventRegistrationError",
    "EventVaultError",
    "ExportFormatError",
    "HashChainError",
    "ImportFileError",
    "IncompatibleSchemaError",
    "IncompleteExportError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidEventError",
    "InvalidExpectedVersionError",
    "InvalidSchemaError",
    "InvalidStreamNameError",
    "InvalidURLError",
    "LeaseLostError",
    "MigrationRequiredError",
    "MissingHandlerError",
    "NotAnEventVaultDatabaseError",
    "NotEmptyError",
    "NotFoundError",
    "NotSupportedError",
    "PayloadTooDeepError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProjectionDefinitionError",
    "ProjectionStateError",
    "ReadOnlyStoreError",
    "RegistryChangeConflictError",
    "SchemaRegistrationError",
    "SchemaRegistryError",
    "SchemaSupportMissingError",
    "SchemaValidationError",
    "SchemaVersionError",
    "StorageError",
    "StorageFullError",
    "StoreClosedError",
    "StoreForkedError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "StreamNotFoundError",
    "TransactionUsageError",
    "UnknownEventTypeError",
    "UnknownProjectionError",
    "UnregisteredEventError",
    "UnregisteredSchemaError",
    "UnverifiableExportError",
    "UpcasterError",
    "WrongExpectedVersionError",
    "error_kind",
]


class EventVaultError(Exception):
    """The root of every error eventvault raises."""


# -- the tiers -------------------------------------------------------------------------------


class BadInputError(EventVaultError):
    """Tier: the caller asked for something that cannot be done as given; nothing changed.

    Retrying the same request fails the same way. CLI exit code 2.
    """


class ConflictError(EventVaultError):
    """Tier: the request collides with what the store holds; nothing was written.

    Read the current state and decide again. CLI exit code 3 (`NotEmptyError`: 6).
    """


class NotFoundError(EventVaultError):
    """Tier: what was asked for does not exist. CLI exit code 4."""


class IntegrityError(EventVaultError):
    """Tier: stored or imported data is not what was recorded (changed, damaged, out of
    order, or not something any append could have stored). CLI exit code 5.
    """


class StorageError(EventVaultError):
    """Tier: the storage engine failed or cannot serve: I/O error, full disk, a lost
    connection, a driver error, a closed store, a database that is not a store.

    CLI exit code 8 (`NotAnEventVaultDatabaseError`, `SchemaVersionError`: 7;
    `StoreClosedError`: 1).
    """


ERROR_KINDS: Final[Mapping[type[EventVaultError], str]] = MappingProxyType(
    {
        BadInputError: "bad-input",
        ConflictError: "conflict",
        NotFoundError: "not-found",
        IntegrityError: "integrity",
        StorageError: "storage",
    }
)
"""Each tier's short, stable, machine-readable name: what an exit-code or HTTP status table
maps."""


def error_kind(error: BaseException) -> str | None:
    """The kind of an error: the `ERROR_KINDS` name of its tier.

    Args:
        error: any exception.

    Returns:
        `"bad-input"`, `"conflict"`, `"not-found"`, `"integrity"` or `"storage"`; None for an
        exception that is not an eventvault error of a tier.
    """
    for tier, kind in ERROR_KINDS.items():
        if isinstance(error, tier):
            return kind
    return None


# -- bad input -------------------------------------------------------------------------------


class InvalidStreamNameError(BadInputError, ValueError):
    """A stream name is empty, longer than 200 characters, not a string, or has control
    characters or lone surrogates.

    Attributes:
        stream_name: the offending value.
        reason: what is wrong with it.
    """

    def __init__(self, stream_name: object, reason: str) -> None:
        self.stream_name = stream_name
        self.reason = reason
        super().__init__(f"invalid stream name {stream_name!r}: {reason}")


class InvalidEventError(BadInputError, ValueError):
    """An event cannot be stored as given: bad type name, data not a JSON object, not encodable.

    Attributes:
        index: the event's index within its append (0-based), or None.
        reason: what is wrong with it.
    """

    def __init__(self, reason: str, *, index: int | None = None) -> None:
        self.index = index
        self.reason = reason
        where = f"event {index}: " if index is not None else ""
        super().__init__(f"{where}{reason}")


class PayloadTooLargeError(InvalidEventError):
    """An event's encoded data and metadata exceed the store's size limit.

    Attributes:
        size: the encoded size in bytes.
        limit: the store's limit in bytes (`max_event_bytes`).
    """

    def __init__(self, size: int, limit: int, *, index: int | None = None) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"encoded data and metadata are {size} bytes, over the limit of {limit} bytes "
            "(raise it with connect(..., max_event_bytes=N))",
            index=index,
        )


class PayloadTooDeepError(InvalidEventError):
    """An event's data or metadata nests objects and arrays deeper than any store accepts.

    Every read must be able to decode what an append stored, also on a thread with a small
    stack, so appends and imports refuse payloads nested beyond `MAX_NESTING_DEPTH` (in
    `eventvault.serialization`).

    Attributes:
        field: `"data"` or `"metadata"`.
        depth: how deep the payload nests; its own object is level 1, so `{"a": [1]}` is 2.
        limit: the deepest nesting accepted.
    """

    def __init__(self, field: str, depth: int, limit: int, *, index: int | None = None) -> None:
        self.field = field
        self.depth = depth
        self.limit = limit
        super().__init__(
            f"{field} nests objects and arrays {depth} levels deep, over the limit of {limit} "
            "levels",
            index=index,
        )


class InvalidExpectedVersionError(BadInputError, TypeError):
    """`expected_version` is neither a `StreamState` nor a non-negative int.

    Attributes:
        value: the offending value.
    """

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(
            f"expected_version must be StreamState.ANY, StreamState.NO_STREAM, "
            f"StreamState.STREAM_EXISTS or a stream position (int >= 0), not {value!r}"
        )


class InvalidURLError(BadInputError, ValueError):
    """A store URL names no engine eventvault knows, or is malformed.

    Attributes:
        url: the offending URL.
        reason: what is wrong with it.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot open {url!r}: {reason}")


class InvalidArgumentError(BadInputError, ValueError):
    """An argument of a call is of the wrong type or out of its range: a negative `limit`,
    a position that is not an int, a filter no name could match, a bad `max_event_bytes`.

    Attributes:
        argument: the argument's name.
        value: the value given.
        reason: what is wrong with it.
    """

    def __init__(self, argument: str, value: object, reason: str) -> None:
        self.argument = argument
        self.value = value
        self.reason = reason
        super().__init__(f"{argument} {reason}")


# -- the contract ----------------------------------------------------------------------------


class WrongExpectedVersionError(ConflictError):
    """A stream's version did not match the append's `expected_version`; nothing was written.

    Attributes:
        stream_name: the stream whose version did not match.
        expected: the expected version given (a `StreamState` or an int).
        actual: the stream's version (the position of its last event), None if it has no events.
    """

    def __init__(self, stream_name: str, expected: object, actual: int | None) -> None:
        self.stream_name = stream_name
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_name!r}: expected {_describe_expected(expected)}, "
            f"actual {'no stream' if actual is None else f'version {actual}'}"
        )


def _describe_expected(expected: object) -> str:
    name = getattr(expected, "name", None)
    if name == "NO_STREAM":
        return "no stream"
    if name == "STREAM_EXISTS":
        return "the stream to exist"
    if name == "ANY":
        return "any version"
    return f"version {expected}"


class DuplicateEventIdError(ConflictError):
    """An event id is already stored somewhere the append would not put it.

    Re-sending an append whose ids are stored in the same stream at the same positions is an
    idempotent retry and succeeds; anything else with a stored id raises this.

    Attributes:
        event_id: the id already stored.
        stream_name: the stream the append was for.
        existing_stream_name: the stream that holds the id.
        existing_stream_position: its position there.
    """

    def __init__(
        self,
        event_id: uuid.UUID,
        stream_name: str,
        existing_stream_name: str,
        existing_stream_position: int,
    ) -> None:
        self.event_id = event_id
        self.stream_name = stream_name
        self.existing_stream_name = existing_stream_name
        self.existing_stream_position = existing_stream_position
        super().__init__(
            f"event id {event_id} appended to stream {stream_name!r} is already stored as "
            f"{existing_stream_name!r}@{existing_stream_position}"
        )


class HashChainError(IntegrityError):
    """An event's hash does not match its bytes and the previous hash: the data was changed.

    Attributes:
        stream_name: the stream of the event.
        stream_position: the event's position in its stream.
        expected: the hash recomputed from the bytes.
        actual: the hash found.
    """

    def __init__(self, stream_name: str, stream_position: int, expected: str, actual: str) -> None:
        self.stream_name = stream_name
        self.stream_position = stream_position
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"hash mismatch at {stream_name!r}@{stream_position}: stored {actual[:16]}..., "
            f"recomputed {expected[:16]}... (the event or one before it was changed)"
        )


class CorruptEventError(IntegrityError, ValueError):
    """A recorded event is not what an append could have stored: its stored bytes do not
    decode, a field holds a value no append stores, or it is out of place in its stream or in
    the log.

    Attributes:
        stream_name: the event's stream, as found.
        stream_position: its position there, as found.
        reason: what is wrong.
        global_position: its global position, or None where it is not known.
        event_id: its id, or None where it is not known.
    """

    def __init__(
        self,
        stream_name: object,
        stream_position: object,
        reason: str,
        *,
        global_position: int | None = None,
        event_id: uuid.UUID | None = None,
    ) -> None:
        self.stream_name = stream_name
        self.stream_position = stream_position
        self.reason = reason
        self.global_position = global_position
        self.event_id = event_id
        where = f"{stream_name!r}@{stream_position}"
        if global_position is not None:
            where += f" (global position {global_position})"
        if event_id is not None:
            where = f"event {event_id} at {where}"
        super().__init__(f"{where}: {reason}")


class ImportFileError(IntegrityError):
    """An import file cannot be read: not JSON Lines, missing fields, positions out of order.

    Attributes:
        line: the 1-based line number, or None when the whole file is at fault.
        reason: what is wrong.
    """

    def __init__(self, reason: str, *, line: int | None = None) -> None:
        self.line = line
        self.reason = reason
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{reason}")


# -- export files: errors an import raises when a file cannot be proven whole -----------------


class IncompleteExportError(ImportFileError):
    """An export cannot be proven whole: it ends before its closing record, its closing record
    does not match the lines before it (count, positions, digest), something follows the closing
    record, or the events do not reach the head the export was bounded by.

    Raised at the end of the events, before an import commits, so nothing is stored.

    Attributes:
        line: the 1-based line at fault, or None when the file (or a copy's source) as a whole
            is at fault.
        reason: what is missing or does not match, with the values involved.
    """


class UnverifiableExportError(IncompleteExportError):
    """An export file of format 1 (written by eventvault 0.1), which has no header and no closing
    record, was read without being told what it must hold.

    Such a file is accepted only when the reader is given the source's head position or its
    number of events and the file matches them exactly.

    Attributes:
        line: the line that shows the format (1), or None for an empty file.
        reason: what is missing.
    """


class ExportFormatError(ImportFileError):
    """An export file declares a format this version of eventvault does not read.

    Attributes:
        line: the header's line (1).
        reason: what was found.
        found: the format version the file declares, or None when it names another format.
        supported: the newest format version this eventvault reads.
    """

    def __init__(self, reason: str, *, found: int | None, supported: int, line: int = 1) -> None:
        self.found = found
        self.supported = supported
        super().__init__(reason, line=line)


class NotEmptyError(ConflictError):
    """An import or copy targets a store that already holds events, or a schema registry.

    Attributes:
        url: the target store.
        head_position: the global position of the target's last event (0 when only its
            registry is not empty).
        registry_changes: the changes its schema registry holds (0 when its log is not empty).
    """

    def __init__(self, url: str, head_position: int, *, registry_changes: int = 0) -> None:
        self.url = url
        self.head_position = head_position
        self.registry_changes = registry_changes
        holds = (
            f"its schema registry holds {registry_changes} changes"
            if registry_changes
            else f"its log reaches position {head_position}"
        )
        super().__init__(
            f"target store {url!r} is not empty ({holds}); import and copy only write into an "
            "empty store"
        )


class StreamNotFoundError(NotFoundError):
    """A stream that was asked for by name has no events.

    Attributes:
        stream_name: the stream.
    """

    def __init__(self, stream_name: str) -> None:
        self.stream_name = stream_name
        super().__init__(f"stream {stream_name!r} has no events")


# -- the storage engine ----------------------------------------------------------------------


class StoreUnavailableError(StorageError):
    """The store cannot be reached for now: its server is down, restarting or unreachable, or
    the connection to it was lost. Nothing about the request was wrong; the same call may
    succeed later, and subscriptions wait and retry on this error alone.

    Attributes:
        location: the store's URL (password masked).
        reason: what failed, naming the server and the last connection error.
    """

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"the store {location!r} is unavailable: {reason}")


class DatabaseLockedError(StorageError):
    """The database stayed locked by another process for longer than the busy timeout."""


class NotAnEventVaultDatabaseError(StorageError):
    """The file or database exists but is not an eventvault store.

    Attributes:
        location: the path or URL opened.
        reason: what was found instead.
    """

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location!r} is not an eventvault database: {reason}")


class SchemaVersionError(StorageError):
    """The store's storage schema is newer than this version of eventvault understands.

    Attributes:
        location: the path or URL opened.
        found: the schema version stored.
        supported: the newest schema version this eventvault knows.
    """

    def __init__(self, location: str, found: int, supported: int) -> None:
        self.location = location
        self.found = found
        self.supported = supported
        super().__init__(
            f"{location!r} has storage schema version {found}, this eventvault supports up to "
            f"{supported}: upgrade eventvault"
        )


class ReadOnlyStoreError(StorageError):
    """A write was asked of a store that cannot be written: it was opened with
    `read_only=True`, or its file, folder, mount or database session refuses writes. Nothing
    was written.

    Attributes:
        location: the store's path or URL.
        reason: why it cannot be written.
    """

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"the store {location!r} is read-only: {reason}")


class StorageFullError(StorageError):
    """A write failed because the disk or the database is full; nothing of it was stored.

    Attributes:
        location: the store's path or URL.
        reason: what is full, and what to do about it.
    """

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"cannot write to the store {location!r}: {reason}")


class StoreNotFoundError(NotFoundError):
    """A store opened read-only (as every reading command opens one) does not exist.

    A read-only open never creates a store, so a mistyped URL is reported rather than
    answered with an empty, newly created file.

    Attributes:
        url: the URL given.
        path: the file that does not exist.
    """

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        super().__init__(f"no eventvault store at {url!r}: the file {path!r} does not exist")


class StoreClosedError(StorageError):
    """An operation was attempted on a store that was closed.

    Attributes:
        location: the store's path or URL.
    """

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"the store {location!r} is closed")


class StoreForkedError(BadInputError):
    """A store opened before `os.fork()` cannot be used in the child process.

    Attributes:
        location: the store's path or URL.
        reason: why, and what to do instead.
        parent_pid: the process that opened the store.
        child_pid: the forked process that used it.
    """

    def __init__(self, location: str, reason: str, parent_pid: int, child_pid: int) -> None:
        self.location = location
        self.reason = reason
        self.parent_pid = parent_pid
        self.child_pid = child_pid
        super().__init__(
            f"the store {location!r} was opened in process {parent_pid} and cannot be used in "
            f"the forked process {child_pid}: {reason}"
        )


# -- the domain layer ------------------------------------------------------------------------


class EventRegistrationError(BadInputError, TypeError):
    """An event class cannot be registered: not a frozen `msgspec.Struct`, a bad name or
    version, or a name and version (or a class) already taken.

    Attributes:
        event_class: the class whose registration failed.
        reason: what is wrong.
    """

    def __init__(self, event_class: object, reason: str) -> None:
        self.event_class = event_class
        self.reason = reason
        name = getattr(event_class, "__qualname__", repr(event_class))
        super().__init__(f"cannot register {name}: {reason}")


class UnknownEventTypeError(NotFoundError, LookupError):
    """A recorded event's type name and schema version are not registered.

    Attributes:
        event_type: the recorded type name.
        schema_version: the recorded schema version.
        stream_name: the stream the event was read from.
        stream_position: its position there.
    """

    def __init__(
        self, event_type: str, schema_version: int, stream_name: str, stream_position: int
    ) -> None:
        self.event_type = event_type
        self.schema_version = schema_version
        self.stream_name = stream_name
        self.stream_position = stream_position
        super().__init__(
            f"{stream_name!r}@{stream_position}: event type {event_type!r} version "
            f"{schema_version} is not registered (register a class for it, or decode with "
            "unknown='raw' to get the RecordedEvent)"
        )


class EventDecodeError(IntegrityError, ValueError):
    """A recorded event's payload does not fit the class registered for its type and version:
    a field renamed, removed or retyped without a new schema version, or a payload written by
    another producer.

    Attributes:
        stream_name: the stream the event was read from.
        stream_position: its position there.
        event_type: the recorded type name.
        schema_version: the recorded schema version.
        event_class: the class the payload was decoded as.
        reason: why it does not fit, as msgspec reports it (the field and the value).
    """

    def __init__(
        self,
        stream_name: str,
        stream_position: int,
        event_type: str,
        schema_version: int,
        event_class: type,
        reason: str,
    ) -> None:
        self.stream_name = stream_name
        self.stream_position = stream_position
        self.event_type = event_type
        self.schema_version = schema_version
        self.event_class = event_class
        self.reason = reason
        super().__init__(
            f"{stream_name!r}@{stream_position}: event type {event_type!r} version "
            f"{schema_version} does not decode as {event_class.__qualname__}: {reason} (if the "
            "class changed shape, register the new shape under a new schema version)"
        )


class UnregisteredEventError(BadInputError, TypeError):
    """An event object to be written is of a class that is not registered.

    Attributes:
        event_class: the class of the event.
    """

    def __init__(self, event_class: type) -> None:
        self.event_class = event_class
        super().__init__(
            f"{event_class.__qualname__} is not registered: call "
            f"registry.register({event_class.__name__}, name=..., version=...) first"
        )


class AggregateDefinitionError(BadInputError, TypeError):
    """An aggregate class is defined wrongly: a bad category, two handlers for one event type,
    no state type.

    Attributes:
        aggregate_class: the class at fault.
        reason: what is wrong.
    """

    def __init__(self, aggregate_class: type, reason: str) -> None:
        self.aggregate_class = aggregate_class
        self.reason = reason
        super().__init__(f"aggregate {aggregate_class.__qualname__}: {reason}")


class MissingHandlerError(BadInputError, TypeError):
    """An aggregate was given an event it has no handler for.

    Attributes:
        aggregate_class: the aggregate's class.
        event_class: the event's class.
    """

    def __init__(self, aggregate_class: type, event_class: type) -> None:
        self.aggregate_class = aggregate_class
        self.event_class = event_class
        super().__init__(
            f"aggregate {aggregate_class.__qualname__} has no handler for "
            f"{event_class.__qualname__}: add a method decorated with "
            f"@applies({event_class.__name__})"
        )


class AggregateNotFoundError(NotFoundError, LookupError):
    """No aggregate with that id exists, or it did not exist at the version or time asked for.

    Attributes:
        stream_name: the aggregate's stream.
        version: the version asked for, or None.
        as_of: the time asked for, or None.
        latest: the stream's version (None when it has no events).
    """

    def __init__(
        self,
        stream_name: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        latest: int | None = None,
    ) -> None:
        self.stream_name = stream_name
        self.version = version
        self.as_of = as_of
        self.latest = latest
        if latest is None:
            message = f"aggregate {stream_name!r} not found: the stream has no events"
        elif version is not None:
            message = (
                f"aggregate {stream_name!r} has no version {version}: its latest version is "
                f"{latest}"
            )
        else:
            message = (
                f"aggregate {stream_name!r} did not exist as of {as_of}: its first event was "
                "recorded later"
            )
        super().__init__(message)


class AggregateQueryError(BadInputError, ValueError):
    """A repository was asked for something it cannot give: a negative version, a naive
    datetime, both a version and a time, a bad number of retries.

    Attributes:
        reason: what is wrong.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- storage beside the events (the seam) ------------------------------------------------------


class MigrationRequiredError(StorageError):
    """A component's tables (or the store's own) are older than this eventvault needs, and
    the store may not migrate them itself.

    Attributes:
        location: the store's URL.
        component: the component's name (`eventvault` for the store's own tables).
        found: the version the store holds (0: none).
        needed: the version this eventvault needs.
    """

    def __init__(self, location: str, component: str, found: int, needed: int) -> None:
        self.location = location
        self.component = component
        self.found = found
        self.needed = needed
        super().__init__(
            f"store {location!r}: the tables of {component!r} are at version {found}, this "
            f"eventvault needs version {needed}; run `eventvault migrate URL` (or open a "
            "PostgreSQL store with ?auto_migrate=true)"
        )


class TransactionUsageError(BadInputError):
    """`run_transaction`'s work used the store wrongly: through the store instead of the
    transaction, or after one of its statements failed.

    Attributes:
        reason: what was done wrong.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- the schema registry ---------------------------------------------------------------------


class SchemaRegistryError(BadInputError, ValueError):
    """The schema registry refuses a schema, a registration or an upcaster as given; nothing
    was changed.

    Attributes:
        reason: what is wrong, with the values involved.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidSchemaError(SchemaRegistryError):
    """A JSON Schema cannot be registered: not JSON, not a draft 2020-12 schema, not an object
    schema, or a `$ref` to something outside the document.

    Attributes:
        event_type: the type the schema was meant for, or None.
        path: the JSON Pointer of the part at fault inside the schema (`""`: the whole).
        reason: what is wrong.
    """

    def __init__(self, event_type: str | None, path: str, reason: str) -> None:
        self.event_type = event_type
        self.path = path
        where = f" at {path}" if path else ""
        subject = f"the schema of {event_type!r}" if event_type is not None else "the schema"
        super().__init__(f"{subject} is not usable{where}: {reason}")
        self.reason = reason


class IncompatibleSchemaError(ConflictError):
    """A new version of a type's schema breaks the type's compatibility mode: it collides with
    the versions registered; nothing was written. (CLI exit code 7.)

    Attributes:
        event_type: the type.
        version: the version that was to be registered.
        mode: the type's compatibility mode (`BACKWARD`, ...).
        changes: every breaking change, each with the version it breaks against, the JSON path
            in the schema and the rule (`eventvault.schema.BreakingChange`).
    """

    def __init__(self, event_type: str, version: int, mode: str, changes: Sequence[object]) -> None:
        self.event_type = event_type
        self.version = version
        self.mode = mode
        self.changes = list(changes)
        lines = "".join(f"\n  {change}" for change in self.changes)
        super().__init__(
            f"version {version} of {event_type!r} breaks its compatibility mode {mode} with "
            f"{len(self.changes)} change{'' if len(self.changes) == 1 else 's'}:{lines}"
        )


class SchemaRegistrationError(SchemaRegistryError):
    """A registry change cannot be made as asked: a type name or version out of range, a
    version already registered with another schema, a mode or setting that does not exist.

    Attributes:
        event_type: the type, or None for a store-wide setting.
        reason: what is wrong.
    """

    def __init__(self, event_type: str | None, reason: str) -> None:
        self.event_type = event_type
        subject = f"{event_type!r}: " if event_type is not None else ""
        super().__init__(f"{subject}{reason}")
        self.reason = reason


class RegistryChangeConflictError(ConflictError):
    """Another process changed the registry at the same moment, and this change no longer
    applies to what it found (the version it meant to register was taken meanwhile); nothing
    of it was written.

    Attributes:
        event_type: the type, or None.
        reason: what the other change did.
    """

    def __init__(self, event_type: str | None, reason: str) -> None:
        self.event_type = event_type
        self.reason = reason
        subject = f"{event_type!r}: " if event_type is not None else ""
        super().__init__(f"{subject}{reason}")


class SchemaValidationError(InvalidEventError):
    """An appended event's data does not match the schema of its type and version; nothing of
    the append was written.

    Attributes:
        index: the event's index within its stream's append (0-based).
        stream_name: the stream the append was for.
        event_type: the event's type.
        schema_version: the event's schema version.
        errors: (JSON Pointer into the data, reason) for each violation, in document order.
    """

    def __init__(
        self,
        stream_name: str,
        index: int,
        event_type: str,
        schema_version: int,
        errors: Sequence[tuple[str, str]],
    ) -> None:
        self.stream_name = stream_name
        self.event_type = event_type
        self.schema_version = schema_version
        self.errors = list(errors)
        shown = "; ".join(f"{path or '/'}: {reason}" for path, reason in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(
            f"stream {stream_name!r}: data of {event_type!r} version {schema_version} does not "
            f"match its schema: {shown}{more}",
            index=index,
        )


class UnregisteredSchemaError(InvalidEventError):
    """An appended event names a type or a schema version the registry does not hold, where
    the store refuses such events; nothing of the append was written.

    Attributes:
        index: the event's index within its stream's append (0-based).
        stream_name: the stream the append was for.
        event_type: the event's type.
        schema_version: the event's schema version.
        registered: the versions registered for the type (empty: the type is unregistered).
    """

    def __init__(
        self,
        stream_name: str,
        index: int,
        event_type: str,
        schema_version: int,
        registered: Sequence[int],
    ) -> None:
        self.stream_name = stream_name
        self.event_type = event_type
        self.schema_version = schema_version
        self.registered = list(registered)
        if self.registered:
            reason = (
                f"{event_type!r} has no schema version {schema_version} (registered: "
                f"{_describe_versions(self.registered)}); register it first"
            )
        else:
            reason = (
                f"{event_type!r} has no registered schema and this store refuses unregistered "
                "types (register one, or `eventvault schema unregistered allow`)"
            )
        super().__init__(f"stream {stream_name!r}: {reason}", index=index)


def _describe_versions(versions: Sequence[int]) -> str:
    ordered = sorted(versions)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]} to {ordered[-1]}"
    return ", ".join(str(version) for version in ordered)


class UpcasterError(SchemaRegistryError):
    """An upcaster cannot be registered: a gap in its type's chain, a version that is not
    registered, or an example whose upcast output fails the next version's schema.

    Attributes:
        event_type: the type.
        from_version: the version the upcaster reads.
        reason: what is wrong, with the example's index and the JSON path where there is one.
    """

    def __init__(self, event_type: str, from_version: int, reason: str) -> None:
        self.event_type = event_type
        self.from_version = from_version
        super().__init__(f"upcaster of {event_type!r} from version {from_version}: {reason}")
        self.reason = reason


class SchemaSupportMissingError(BadInputError, ImportError):
    """Validating JSON Schemas needs the `jsonschema-rs` package, which is not installed.

    Attributes:
        reason: what needed it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"{reason} needs the jsonschema-rs package: pip install 'eventvault[schema]'"
        )


# -- projections -------------------------------------------------------------------------------


class ProjectionDefinitionError(BadInputError, TypeError):
    """A projection class is defined wrongly: a bad name, version or table, a handler for an
    event class its registry does not know, two handlers for one event type, or two projections
    of one runner that claim the same name or table.

    Attributes:
        projection: the class (or the name) at fault.
        reason: what is wrong.
    """

    def __init__(self, projection: object, reason: str) -> None:
        self.projection = projection
        self.reason = reason
        name = getattr(projection, "__qualname__", str(projection))
        super().__init__(f"projection {name}: {reason}")


class UnknownProjectionError(NotFoundError, LookupError):
    """A projection was asked for by a name that none of the projections given has.

    Attributes:
        name: the name asked for.
        known: the names that exist.
    """

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listing = ", ".join(known) if known else "none"
        super().__init__(f"no projection named {name!r} (known: {listing})")


class ProjectionStateError(ConflictError):
    """A projection is not in the state an operation needs: a retry or a skip of a projection
    that has not failed, a skip of another event than the one it failed at.

    Attributes:
        projection: the projection's name.
        reason: what state it is in.
    """

    def __init__(self, projection: str, reason: str) -> None:
        self.projection = projection
        self.reason = reason
        super().__init__(f"projection {projection!r}: {reason}")


class LeaseLostError(ConflictError):
    """A runner tried to commit for a projection whose lease another runner holds now (it
    expired while this one was paused or cut off); nothing was committed.

    Attributes:
        projection: the projection's name.
        version: its version.
        token: the fencing token this runner held.
    """

    def __init__(self, projection: str, version: int, token: int) -> None:
        self.projection = projection
        self.version = version
        self.token = token
        super().__init__(
            f"projection {projection!r} version {version}: the lease with token {token} was "
            "taken over by another runner; nothing was committed"
        )


# -- the server ------------------------------------------------------------------------------


class AuthenticationError(BadInputError):
    """A server asked for a bearer token and the request had none, or one it does not know
    (never issued, revoked, malformed). Nothing was read or written. HTTP status 401.

    Attributes:
        reason: what was wrong with the request's credentials.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not authenticated: {reason}")


class PermissionDeniedError(BadInputError):
    """A server knows the request's token, but the token's scopes or stream rules do not allow
    the request, or the request tried to set what only the server sets (an event's `actor`).
    Nothing was read or written. HTTP status 403.

    Attributes:
        reason: what the token lacks, naming the scope or the stream.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"permission denied: {reason}")


class NotSupportedError(BadInputError):
    """An operation the store API has cannot be carried out by this engine: the HTTP client
    cannot run a transaction's work (a Python function) on the server, nor migrate or query
    component tables there.

    Attributes:
        operation: the operation asked for.
        engine: the engine that cannot do it.
        reason: why, and what to do instead.
    """

    def __init__(self, operation: str, engine: str, reason: str) -> None:
        self.operation = operation
        self.engine = engine
        self.reason = reason
        super().__init__(f"{operation} is not supported by the {engine} engine: {reason}")
