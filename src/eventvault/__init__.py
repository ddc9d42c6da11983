"""eventvault: an event store for Python.

An append-only, tamper-evident log that is the system of record of an application, on SQLite
(the embedded default), PostgreSQL, or in memory, behind one API::

    import eventvault
    from eventvault import NewEvent, StreamState

    with eventvault.connect("eventvault.db") as store:
        store.append_to_stream(
            "account-42",
            [NewEvent("AccountOpened", {"owner": "Ada"})],
            expected_version=StreamState.NO_STREAM,
        )
        for event in store.read_stream("account-42"):
            print(event.stream_position, event.event_type, event.data)
"""

from eventvault import errors
from eventvault.errors import EventVaultError, WrongExpectedVersionError
from eventvault.store import (
    AsyncEventStore,
    AsyncSubscription,
    EventStore,
    StoreStats,
    Subscription,
    connect,
    connect_async,
)
from eventvault.types import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    PayloadEvent,
    RawEvent,
    RecordedEvent,
    Removal,
    StreamAppend,
    StreamInfo,
    StreamMetadata,
    StreamState,
)

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
    "AsyncEventStore",
    "AsyncSubscription",
    "EventStore",
    "EventVaultError",
    "ExpectedVersion",
    "NewEvent",
    "PayloadEvent",
    "RawEvent",
    "RecordedEvent",
    "Removal",
    "StoreStats",
    "StreamAppend",
    "StreamInfo",
    "StreamMetadata",
    "StreamState",
    "Subscription",
    "WrongExpectedVersionError",
    "__version__",
    "connect",
    "connect_async",
    "errors",
]
