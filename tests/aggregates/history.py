"""Histories with chosen timestamps: events imported with `recorded_at` set by the test.

A store sets `recorded_at` itself on append, from a clock that may go back; to test what
happens then, a test imports crafted events (with hashes computed as the store computes them)
into an empty store, through the public `import_events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from eventvault import EventStore
from eventvault.aggregates import EventRegistry
from eventvault.serialization import GENESIS_HASH, event_hash, new_event_id, to_micros
from eventvault.types import RawEvent

_EMPTY_METADATA = b"{}"


def import_history(
    store: EventStore,
    registry: EventRegistry,
    stream_name: str,
    events: Sequence[tuple[msgspec.Struct, datetime]],
) -> None:
    """Import one stream's events, each recorded at the time given, into an empty store.

    Args:
        store: an empty store.
        registry: where the event classes are registered.
        stream_name: the stream.
        events: (event object, recorded_at) in stream order; times need not grow.
    """
    previous = GENESIS_HASH
    raw: list[RawEvent] = []
    for position, (event, recorded_at) in enumerate(events):
        entry = registry.type_of(type(event))
        event_id = new_event_id()
        data = msgspec.json.encode(event)
        digest = event_hash(
            previous,
            stream_name,
            position,
            event_id.bytes,
            entry.name,
            entry.version,
            to_micros(recorded_at),
            data,
            _EMPTY_METADATA,
        )
        raw.append(
            RawEvent(
                global_position=position + 1,
                stream_name=stream_name,
                stream_position=position,
                event_id=event_id,
                event_type=entry.name,
                schema_version=entry.version,
                data=msgspec.Raw(data),
                metadata=msgspec.Raw(_EMPTY_METADATA),
                recorded_at=recorded_at,
                hash=digest.hex(),
            )
        )
        previous = digest
    store.import_events(raw)
