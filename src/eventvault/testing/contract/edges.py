"""Contract: the edges every engine must agree on.

Positions past the largest a store holds read as empty (forwards) on every engine, and an
append carries more caller-given ids than a statement binds variables.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eventvault import AsyncEventStore, EventStore, NewEvent, StreamState
from eventvault.errors import (
    DuplicateEventIdError,
    InvalidArgumentError,
    WrongExpectedVersionError,
)
from eventvault.testing.contract.base import ContractBase, EngineSpec, events

__all__ = ["PositionEdgeContract"]

LARGEST_POSITION = 2**63 - 1
"""The largest position any engine stores: a 64-bit signed integer."""
BEYOND = [2**63, 2**64, 10**30]
"""Positions no store can hold."""


class PositionEdgeContract(ContractBase):
    """Every engine answers the same at the edges: positions no store can hold read as empty
    (forwards; backwards they read from the end), and appends of any size work."""

    @pytest.fixture
    def filled(self, store: EventStore) -> EventStore:
        store.append_to_stream("edge-1", events(3), expected_version=StreamState.NO_STREAM)
        store.append_to_stream("edge-2", events(2), expected_version=StreamState.NO_STREAM)
        return store

    @pytest.mark.parametrize("position", [LARGEST_POSITION, *BEYOND])
    def test_reads_forwards_from_beyond_any_event_read_nothing(
        self, filled: EventStore, position: int
    ) -> None:
        assert list(filled.read_stream("edge-1", from_position=position)) == []
        assert list(filled.read_stream_payloads("edge-1", from_position=position)) == []
        assert list(filled.read_all(after=position)) == []
        assert list(filled.read_all(after=position, event_types=["Happened"])) == []
        assert list(filled.read_all(after=position, stream_prefix="edge-")) == []
        assert list(filled.export_events(after=position)) == []

    @pytest.mark.parametrize("position", [LARGEST_POSITION, *BEYOND])
    def test_reads_backwards_from_beyond_any_event_read_from_the_end(
        self, filled: EventStore, position: int
    ) -> None:
        backwards = filled.read_stream("edge-1", from_position=position, backwards=True)
        assert [e.stream_position for e in backwards] == [2, 1, 0]
        everything = [e.global_position for e in filled.read_all(backwards=True)]
        assert [e.global_position for e in filled.read_all(after=position, backwards=True)] == (
            everything
        )
        limited = filled.read_all(after=position, backwards=True, limit=1, stream_prefix="edge-1")
        assert [e.stream_name for e in limited] == ["edge-1"]

    @pytest.mark.parametrize("position", [LARGEST_POSITION, *BEYOND])
    def test_subscriptions_after_beyond_any_event_deliver_nothing_and_keep_waiting(
        self, filled: EventStore, position: int
    ) -> None:
        with filled.subscribe_to_all(after=position) as everything:
            assert everything.next_batch(timeout=0.2) == []
            filled.append_to_stream("edge-1", events(1), expected_version=2)
            assert everything.next_batch(timeout=0.2) == []
            assert everything.position == position
        with filled.subscribe_to_all(after=position, event_types=["Happened"]) as filtered:
            assert filtered.next_batch(timeout=0.2) == []
        with filled.subscribe_to_stream("edge-1", after=position) as one:
            assert one.next_batch(timeout=0.2) == []
            assert one.position == position

    @pytest.mark.parametrize("position", [LARGEST_POSITION, *BEYOND])
    def test_the_async_face_reads_nothing_beyond_any_event(
        self, filled: EventStore, position: int
    ) -> None:
        async def read() -> tuple[int, int]:
            face = AsyncEventStore(filled)
            stream = [e async for e in face.read_stream("edge-1", from_position=position)]
            log = [e async for e in face.read_all(after=position)]
            return len(stream), len(log)

        assert asyncio.run(read()) == (0, 0)

    @pytest.mark.parametrize("version", [LARGEST_POSITION, *BEYOND])
    def test_an_expected_version_beyond_any_event_is_a_conflict(
        self, filled: EventStore, version: int
    ) -> None:
        with pytest.raises(WrongExpectedVersionError) as caught:
            filled.append_to_stream("edge-1", events(1), expected_version=version)
        assert (caught.value.expected, caught.value.actual) == (version, 2)
        assert filled.get_stream_version("edge-1") == 2

    def test_a_negative_position_is_still_an_argument_error(self, filled: EventStore) -> None:
        with pytest.raises(InvalidArgumentError):
            filled.read_all(after=-(2**64))

    def test_an_append_of_40_000_events_with_given_ids_is_stored_and_retried(
        self, store: EventStore
    ) -> None:
        batch = [NewEvent("Imported", {"n": n}, event_id=uuid.uuid4()) for n in range(40_000)]
        first = store.append_to_stream("bulk-1", batch, expected_version=StreamState.NO_STREAM)
        assert (first.stream_position, first.global_position) == (39_999, 40_000)
        again = store.append_to_stream("bulk-1", batch, expected_version=StreamState.NO_STREAM)
        assert again == first
        with pytest.raises(DuplicateEventIdError):
            store.append_to_stream("bulk-2", batch, expected_version=StreamState.ANY)
        assert store.head_position() == 40_000

    def test_a_durable_engine_retries_an_append_of_40_000_ids_after_reopening(
        self, engine: EngineSpec
    ) -> None:
        if not engine.durable:
            pytest.skip(f"{engine.name} keeps nothing after close")
        batch = [NewEvent("Imported", {"n": n}, event_id=uuid.uuid4()) for n in range(40_000)]
        with engine.open() as store:
            first = store.append_to_stream("bulk-1", batch, expected_version=StreamState.ANY)
        with engine.open() as store:
            assert store.append_to_stream("bulk-1", batch, expected_version=StreamState.ANY) == (
                first
            )
            assert store.head_position() == 40_000

    def test_a_filter_of_40_000_event_types_reads_the_matching_events(
        self, filled: EventStore
    ) -> None:
        types = [f"Other{n}" for n in range(40_000)] + ["Happened"]
        picked = filled.read_all(event_types=types, stream_prefix="edge-2")
        assert [(e.stream_name, e.stream_position) for e in picked] == [
            ("edge-2", 0),
            ("edge-2", 1),
        ]
        with filled.subscribe_to_all(event_types=types) as subscription:
            assert len(subscription.next_batch(timeout=10)) == 5
