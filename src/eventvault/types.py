"""The vocabulary of the store: events written, events read back, expected versions.

`NewEvent` is what a writer hands to the store; `RecordedEvent` is what a reader gets back,
with the positions, timestamp and hash the store assigned. Both are immutable.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal, NamedTuple, TypeAlias

import msgspec

__all__ = [
    "METADATA_EVENT_TYPE",
    "REMOVALS_STREAM",
    "REMOVED_EVENT_TYPE",
    "AppendResult",
    "EventHash",
    "ExpectedVersion",
    "GlobalPosition",
    "JSONObject",
    "NewEvent",
    "PayloadEvent",
    "RawEvent",
    "RecordedEvent",
    "Removal",
    "RemovalKind",
    "StreamAppend",
    "StreamInfo",
    "StreamMetadata",
    "StreamPosition",
    "StreamState",
]

REMOVALS_STREAM: Final = "$removals"
"""The system stream that records every removal of events and every change of a stream's
retention."""
REMOVED_EVENT_TYPE: Final = "EventsRemoved"
"""The type of the record of a removal, in `REMOVALS_STREAM`."""
METADATA_EVENT_TYPE: Final = "StreamMetadataSet"
"""The type of the record of a change of a stream's metadata, in `REMOVALS_STREAM`."""

StreamPosition: TypeAlias = int
"""0-based position of an event within its stream; gapless."""

GlobalPosition: TypeAlias = int
"""1-based position of an event in the whole store, in commit order."""

JSONObject: TypeAlias = Mapping[str, object]
"""A JSON object as Python sees it: a mapping of strings to JSON values."""


class StreamState(enum.Enum):
    """Expected versions that are not an exact stream position.

    `ANY` skips the check; `NO_STREAM` requires that the stream has no events yet;
    `STREAM_EXISTS` requires that it has at least one.
    """

    ANY = "any"
    NO_STREAM = "no_stream"
    STREAM_EXISTS = "stream_exists"

    def __repr__(self) -> str:
        return f"StreamState.{self.name}"


ExpectedVersion: TypeAlias = StreamState | int
"""A `StreamState`, or the exact stream position of the stream's last event."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append.

    Args:
        event_type: the stable registered name of the event's type, such as `AccountOpened`.
        data: the payload, a JSON object (a `dict`, or a `msgspec.Struct` that encodes to one).
        metadata: a JSON object; the keys `correlation_id`, `causation_id`, `actor` and
            `tenant` are reserved for their documented meaning.
        event_id: the idempotency key; when not given, a new time-ordered UUID (version 7).
            Re-sending an append with the same ids returns the original result and stores
            nothing twice.
        schema_version: the version of the event type's schema that `data` conforms to.
    """

    event_type: str
    data: JSONObject | msgspec.Struct
    metadata: JSONObject | None = field(default=None, kw_only=True)
    event_id: uuid.UUID | None = field(default=None, kw_only=True)
    schema_version: int = field(default=1, kw_only=True)


class RecordedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as the store recorded it.

    Attributes:
        stream_name: the stream the event belongs to.
        stream_position: 0-based, gapless within the stream.
        global_position: 1-based, store-wide, in commit order.
        event_id: the event's UUID (the idempotency key).
        event_type: the registered name of the event's type.
        schema_version: the schema version the payload conforms to.
        data: the payload, decoded.
        metadata: the metadata, decoded (an empty dict when none was given).
        recorded_at: when the store recorded the event (UTC, microseconds); informative only.
        hash: hex SHA-256 over the stored bytes of this event and the previous event's hash
            in the same stream.
    """

    stream_name: str
    stream_position: StreamPosition
    global_position: GlobalPosition
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    data: dict[str, object]
    metadata: dict[str, object]
    recorded_at: datetime
    hash: str

    @property
    def category(self) -> str:
        """The part of the stream name before the first `-` (the whole name if it has none)."""
        return self.stream_name.partition("-")[0]


class PayloadEvent(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """An event of a stream with its payload undecoded: what a replay needs and no more.

    `read_stream_payloads` yields these so that a reader that knows the payload's type can
    decode the JSON bytes straight into it (`msgspec.json.Decoder(cls).decode(event.data)`),
    skipping the dict, the metadata, the id, the hash and the datetime of a `RecordedEvent`.

    Attributes:
        stream_position: 0-based, gapless within the stream.
        event_type: the registered name of the event's type.
        schema_version: the schema version the payload conforms to.
        data: the stored JSON bytes of the payload.
        recorded_at_us: when the store recorded the event, in microseconds since the epoch.
    """

    stream_position: StreamPosition
    event_type: str
    schema_version: int
    data: bytes
    recorded_at_us: int


class RawEvent(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """An event with its payload as the exact stored bytes: the unit of export, import and copy.

    `data` and `metadata` are the JSON bytes the hash was computed over, so an event moved
    between stores keeps a hash that still verifies.

    A removed event (`delete_stream`, `truncate_stream`, retention) keeps its positions, id,
    type, time and hash, and names the record of its removal in `removed_by`. Its payload is
    erased (`data` and `metadata` are then JSON `null`) unless a soft delete only hid it.

    Attributes:
        removed_by: None for an event readers see; for a removed one, the global position of
            the `EventsRemoved` record (in the stream `$removals`) that removed or erased it.
    """

    global_position: GlobalPosition
    stream_name: str
    stream_position: StreamPosition
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    data: msgspec.Raw
    metadata: msgspec.Raw
    recorded_at: datetime
    hash: str
    removed_by: GlobalPosition | None = None

    @property
    def erased(self) -> bool:
        """Whether the event's payload was erased by a removal (only its hash is left)."""
        return self.removed_by is not None and bytes(self.data) == b"null"


class EventHash(NamedTuple):
    """An event's place in the log and its hash: what the audit tree's leaf of it holds.

    Attributes:
        global_position: the event's global position.
        hash: its 32-byte hash (the hex of which is `RecordedEvent.hash`).
    """

    global_position: GlobalPosition
    hash: bytes


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The outcome of a successful append: where its last event landed.

    Attributes:
        stream_position: the stream position of the last event written (the stream's version).
        global_position: the global position of the last event written.
    """

    stream_position: StreamPosition
    global_position: GlobalPosition


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One stream's part of an atomic multi-stream append (`append_to_streams`).

    Args:
        stream_name: the stream to append to.
        events: the events, in order.
        expected_version: as for `append_to_stream`.
    """

    stream_name: str
    events: Sequence[NewEvent]
    expected_version: ExpectedVersion


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream's summary, as listed by `list_streams`.

    Attributes:
        stream_name: the stream's name.
        version: the stream position of its last event.
        event_count: how many events it holds (`version + 1`).
        last_global_position: the global position of its last event.
    """

    stream_name: str
    version: StreamPosition
    last_global_position: GlobalPosition

    @property
    def event_count(self) -> int:
        """The number of events in the stream."""
        return self.version + 1


RemovalKind: TypeAlias = Literal["truncate", "soft-delete", "hard-delete", "retention"]
"""How events of a stream were removed: `truncate_stream`, `delete_stream` (soft or hard), or
the stream's retention (`enforce_retention`)."""


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """A stream's settings: how long its events are kept.

    Retention removes a stream's oldest events, keeping their hashes, when
    `EventStore.enforce_retention` runs (`eventvault streams retain`): those older than
    `max_age`, and those beyond the newest `max_count`. Both unset (the default) keeps every
    event.

    Args:
        max_age: keep events recorded within this time of the enforcement; None: any age.
        max_count: keep at most this many of the newest events (>= 1); None: any number.
    """

    max_age: timedelta | None = None
    max_count: int | None = None


@dataclass(frozen=True, slots=True)
class Removal:
    """What a removal did (`delete_stream`, `truncate_stream`, `enforce_retention`).

    Removed events are hidden from every read; their positions, ids and hashes stay, so every
    hash chain and proof over the log still verifies. An erasing removal (all but a soft
    delete) also destroys their payloads.

    Attributes:
        stream_name: the stream.
        kind: what removed the events.
        first_position: the first stream position this removal hid or erased.
        before: every event of the stream before this stream position is now removed.
        count: how many events this removal hid or erased; 0 when there was nothing to do, in
            which case nothing was written.
        erased: whether the payloads were erased (False for a soft delete).
        record_position: the global position of the `EventsRemoved` record in `$removals`;
            None when nothing was removed.
    """

    stream_name: str
    kind: RemovalKind
    first_position: StreamPosition
    before: StreamPosition
    count: int
    erased: bool
    record_position: GlobalPosition | None
