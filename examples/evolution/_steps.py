"""The steps every evolution takes, written once."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from eventvault import EventStore, StreamState
from eventvault.aggregates import EventRegistry
from eventvault.schema import Mode, SchemaRegistry, Upcasters


def write_old_events(
    store: EventStore, before: EventRegistry, stream: str, events: Sequence[msgspec.Struct]
) -> None:
    """Register version 1 and write events with it: the data a store has held for years."""
    SchemaRegistry(store).sync(before)
    store.append_to_stream(
        stream, [before.to_new_event(event) for event in events], expected_version=StreamState.ANY
    )


def register_new_version(
    store: EventStore,
    after: EventRegistry,
    upcasters: Upcasters,
    *,
    breaking: bool,
    actor: str = "release-2.0",
) -> None:
    """Register the new version with its upcasters, as the application's start-up does.

    A breaking change cannot pass the type's compatibility mode (readers of the raw events
    would trip over it): its mode is set to NONE for the change and back afterwards, and the
    registry's history records both, with who did it.
    """
    registry = SchemaRegistry(store, actor=actor)
    types = {entry.name for entry in after}
    modes = {name: registry.mode(name) for name in types}
    if breaking:
        for name in types:
            registry.set_mode(name, Mode.NONE)
    registry.sync(after, upcasters=upcasters)
    if breaking:
        for name, mode in modes.items():
            registry.set_mode(name, mode)
