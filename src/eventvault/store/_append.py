"""The engine-independent rules of an append: validation, version checks, idempotent retries.

Each engine runs the same steps inside its own transaction: `prepare` the append before it
queues, `version_matches` against the stream's version, then `chain` the events to the stream's
last hash; on a version mismatch or a stored event id it asks `resolve_existing_ids` whether this
is a retry of an append already stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eventvault.errors import (
    DuplicateEventIdError,
    InvalidEventError,
    InvalidExpectedVersionError,
    WrongExpectedVersionError,
)
from eventvault.serialization import EncodedEvent, encode_events, event_hash, validate_stream_name
from eventvault.types import AppendResult, ExpectedVersion, NewEvent, StreamAppend, StreamState

__all__ = [
    "PendingAppend",
    "PendingRow",
    "StoredRow",
    "chain",
    "prepare",
    "prepare_many",
    "resolve_existing_ids",
    "version_matches",
]


@dataclass(slots=True)
class PendingAppend:
    """One stream's validated, encoded append, waiting for its transaction."""

    stream_name: str
    expected_version: ExpectedVersion
    events: list[EncodedEvent]

    @property
    def given_ids(self) -> list[uuid.UUID]:
        """The event ids the writer chose (generated ones cannot be stored already)."""
        return [event.event_id for event in self.events if event.id_given]


StoredRow = tuple[str, int, int, bytes, str, int, bytes, bytes, int, bytes]
"""(stream_name, stream_position, global_position, event_id, event_type, schema_version,
data, metadata, recorded_at_us, hash): one event as the engines store it."""

PendingRow = tuple[str, int, int | None, bytes, str, int, bytes, bytes, int, bytes]
"""A `StoredRow` whose global position may still be left to the database (None)."""


def _check_expected_version(value: object) -> ExpectedVersion:
    if type(value) is StreamState:
        return value
    if type(value) is int and value >= 0:
        return value
    raise InvalidExpectedVersionError(value)


def prepare(
    stream_name: str,
    events: Sequence[NewEvent],
    expected_version: ExpectedVersion,
    max_event_bytes: int,
) -> PendingAppend:
    """Validate and encode one stream's append before it reaches a transaction.

    Raises:
        InvalidStreamNameError, InvalidEventError, PayloadTooLargeError,
        InvalidExpectedVersionError: the input is bad; nothing was written.
    """
    validate_stream_name(stream_name)
    expected = _check_expected_version(expected_version)
    encoded = encode_events(events, max_event_bytes)
    if len(encoded) > 1:
        ids = [event.event_id for event in encoded]
        if len(set(ids)) != len(ids):
            raise InvalidEventError(f"the append to {stream_name!r} repeats an event id")
    return PendingAppend(stream_name, expected, encoded)


def prepare_many(appends: Sequence[StreamAppend], max_event_bytes: int) -> list[PendingAppend]:
    """Validate an atomic multi-stream append.

    Raises:
        InvalidEventError: no appends, a stream named twice, an event id used twice, or any
            error of `prepare`.
    """
    if isinstance(appends, StreamAppend) or not isinstance(appends, Sequence):
        raise InvalidEventError(
            f"appends must be a list of StreamAppend, not {type(appends).__name__}"
        )
    if not appends:
        raise InvalidEventError("append_to_streams needs at least one StreamAppend")
    pending: list[PendingAppend] = []
    names: set[str] = set()
    ids: set[uuid.UUID] = set()
    for item in appends:
        if type(item) is not StreamAppend:
            raise InvalidEventError(f"must be a StreamAppend, not {type(item).__name__}")
        one = prepare(item.stream_name, item.events, item.expected_version, max_event_bytes)
        if one.stream_name in names:
            raise InvalidEventError(
                f"stream {one.stream_name!r} appears twice in one append_to_streams; "
                "put its events in one StreamAppend"
            )
        names.add(one.stream_name)
        for event in one.events:
            if event.event_id in ids:
                raise InvalidEventError(f"event id {event.event_id} appears twice in one append")
            ids.add(event.event_id)
        pending.append(one)
    return pending


def version_matches(expected: ExpectedVersion, actual: int | None) -> bool:
    """Whether a stream whose version is `actual` (None: no events) satisfies `expected`."""
    if expected is StreamState.ANY:
        return True
    if expected is StreamState.NO_STREAM:
        return actual is None
    if expected is StreamState.STREAM_EXISTS:
        return actual is not None
    return actual == expected


def chain(
    append: PendingAppend,
    version: int | None,
    previous_hash: bytes,
    first_global_position: int | None,
    recorded_at_us: int,
) -> list[PendingRow]:
    """Give the events of an append their positions, timestamp and chained hashes.

    Args:
        append: the append.
        version: the stream's version before it (None: no events yet).
        previous_hash: the hash of the stream's last event (`GENESIS_HASH` for none).
        first_global_position: the global position of the append's first event, or None
            where the database assigns global positions as it inserts.
        recorded_at_us: the timestamp of the append, in microseconds since the epoch.

    Returns:
        The rows to store, in order.
    """
    rows: list[PendingRow] = []
    position = -1 if version is None else version
    global_position = None if first_global_position is None else first_global_position - 1
    stream_name = append.stream_name
    previous = previous_hash
    for event in append.events:
        position += 1
        if global_position is not None:
            global_position += 1
        event_id = event.event_id.bytes
        previous = event_hash(
            previous,
            stream_name,
            position,
            event_id,
            event.event_type,
            event.schema_version,
            recorded_at_us,
            event.data,
            event.metadata,
        )
        rows.append(
            (
                stream_name,
                position,
                global_position,
                event_id,
                event.event_type,
                event.schema_version,
                event.data,
                event.metadata,
                recorded_at_us,
                previous,
            )
        )
    return rows


def resolve_existing_ids(
    append: PendingAppend,
    found: Mapping[uuid.UUID, tuple[str, int, int]],
) -> AppendResult | None:
    """Decide what stored event ids mean for an append.

    An append whose every event id is stored, in its stream, at consecutive positions in the
    same order, placed where its expected version would have put it, is a retry of an append
    already stored: its original result is returned. Any other stored id is an error.

    Args:
        append: the append.
        found: for each of its event ids that is stored, (stream name, stream position,
            global position).

    Returns:
        The original result of the append, or None when none of its ids is stored.

    Raises:
        DuplicateEventIdError: some id is stored but the append is not a faithful retry.
    """
    if not found:
        return None
    events = append.events
    first = found.get(events[0].event_id)
    faithful = first is not None and first[0] == append.stream_name
    if faithful and first is not None:
        start = first[1]
        expected = append.expected_version
        if expected is StreamState.NO_STREAM:
            faithful = start == 0
        elif expected is StreamState.STREAM_EXISTS:
            faithful = start > 0
        elif type(expected) is int:
            faithful = start == expected + 1
        for offset, event in enumerate(events):
            where = found.get(event.event_id)
            if where is None or where[0] != append.stream_name or where[1] != start + offset:
                faithful = False
                break
    if faithful:
        last = found[events[-1].event_id]
        return AppendResult(stream_position=last[1], global_position=last[2])
    for event in events:
        where = found.get(event.event_id)
        if where is not None:
            raise DuplicateEventIdError(event.event_id, append.stream_name, where[0], where[1])
    raise AssertionError("unreachable: found is not empty")  # pragma: no cover


def wrong_version(append: PendingAppend, actual: int | None) -> WrongExpectedVersionError:
    """The error for an append whose expected version does not match."""
    return WrongExpectedVersionError(append.stream_name, append.expected_version, actual)
