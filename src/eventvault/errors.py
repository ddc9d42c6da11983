"""The whole error hierarchy of eventvault, and nothing else.

Every error derives from `EventVaultError`, carries the values involved as attributes and names
them in its message. Errors about bad arguments also derive from `ValueError` or `TypeError`, so
code that catches those keeps working.
"""

from __future__ import annotations

import uuid
from datetime import datetime

__all__ = [
    "AggregateDefinitionError",
    "AggregateNotFoundError",
    "AggregateQueryError",
    "DatabaseLockedError",
    "DuplicateEventIdError",
    "EventDecodeError",
    "EventRegistrationError",
    "EventVaultError",
    "ExportFormatError",
    "HashChainError",
    "ImportFileError",
    "IncompleteExportError",
    "InvalidEventError",
    "InvalidExpectedVersionError",
    "InvalidStreamNameError",
    "InvalidURLError",
    "LeaseLostError",
    "MigrationRequiredError",
    "MissingHandlerError",
    "NotAnEventVaultDatabaseError",
    "NotEmptyError",
    "PayloadTooLargeError",
    "ProjectionDefinitionError",
    "ProjectionStateError",
    "SchemaVersionError",
    "StorageError",
    "StoreClosedError",
    "TransactionUsageError",
    "UnknownEventTypeError",
    "UnknownProjectionError",
    "UnregisteredEventError",
    "UnverifiableExportError",
    "WrongExpectedVersionError",
]


class EventVaultError(Exception):
    """The root of every error eventvault raises."""


# -- bad input -------------------------------------------------------------------------------


class InvalidStreamNameError(EventVaultError, ValueError):
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


class InvalidEventError(EventVaultError, ValueError):
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


class InvalidExpectedVersionError(EventVaultError, TypeError):
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


class InvalidURLError(EventVaultError, ValueError):
    """A store URL names no engine eventvault knows, or is malformed.

    Attributes:
        url: the offending URL.
        reason: what is wrong with it.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot open {url!r}: {reason}")


# -- the contract ----------------------------------------------------------------------------


class WrongExpectedVersionError(EventVaultError):
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


class DuplicateEventIdError(EventVaultError):
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


class HashChainError(EventVaultError):
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


class ImportFileError(EventVaultError):
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


class NotEmptyError(EventVaultError):
    """An import or copy targets a store that already holds events.

    Attributes:
        url: the target store.
        head_position: the global position of the target's last event (at least 1).
    """

    def __init__(self, url: str, head_position: int) -> None:
        self.url = url
        self.head_position = head_position
        super().__init__(
            f"target store {url!r} is not empty (its log reaches position {head_position}); "
            "import and copy only write into an empty store"
        )


# -- the storage engine ----------------------------------------------------------------------


class StorageError(EventVaultError):
    """The storage engine failed: I/O error, full disk, a lost connection, a driver error."""


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


class StoreClosedError(EventVaultError):
    """An operation was attempted on a store that was closed.

    Attributes:
        location: the store's path or URL.
    """

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"the store {location!r} is closed")


# -- the domain layer ------------------------------------------------------------------------


class EventRegistrationError(EventVaultError, TypeError):
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


class UnknownEventTypeError(EventVaultError, LookupError):
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


class EventDecodeError(EventVaultError, ValueError):
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


class UnregisteredEventError(EventVaultError, TypeError):
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


class AggregateDefinitionError(EventVaultError, TypeError):
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


class MissingHandlerError(EventVaultError, TypeError):
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


class AggregateNotFoundError(EventVaultError, LookupError):
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


class AggregateQueryError(EventVaultError, ValueError):
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


class TransactionUsageError(EventVaultError):
    """`run_transaction`'s work used the store wrongly: through the store instead of the
    transaction, or after one of its statements failed.

    Attributes:
        reason: what was done wrong.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- projections -------------------------------------------------------------------------------


class ProjectionDefinitionError(EventVaultError, TypeError):
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


class UnknownProjectionError(EventVaultError, LookupError):
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


class ProjectionStateError(EventVaultError):
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


class LeaseLostError(EventVaultError):
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
