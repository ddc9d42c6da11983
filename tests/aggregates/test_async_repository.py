"""AsyncRepository: the repository's behaviour from coroutines, on every engine, with the saves
of concurrent coroutines sharing the group commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from eventvault import AsyncEventStore, EventStore, WrongExpectedVersionError
from eventvault.aggregates import (
    AggregateNotFoundError,
    AggregateQueryError,
    AsyncRepository,
    MemorySnapshotStore,
)
from tests.aggregates.domain import Counter, CounterError, new_counter, registry


def _counters(store: EventStore, **options: object) -> AsyncRepository[Counter]:
    return AsyncRepository(Counter, AsyncEventStore(store), registry, **options)  # type: ignore[arg-type]


def test_save_then_get_gives_the_same_state(store: EventStore) -> None:
    async def scenario() -> Counter:
        counters = _counters(store)
        counter = new_counter("1", increments=3)
        results = await counters.save(counter)
        assert [r.stream_position for r in results] == [3]
        assert counter.version == 3 and not counter.pending_events
        return await counters.get("1")

    loaded = asyncio.run(scenario())
    assert (loaded.version, loaded.state.value, loaded.state.name) == (3, 3, "c")


def test_a_past_version_and_a_missing_aggregate(store: EventStore) -> None:
    async def scenario() -> None:
        counters = _counters(store)
        await counters.save(new_counter("1", increments=5))
        assert (await counters.get("1", version=2)).state.value == 2
        assert (await counters.get("1", as_of=datetime.now(UTC))).state.value == 5
        assert await counters.exists("1")
        assert not await counters.exists("2")
        with pytest.raises(AggregateNotFoundError):
            await counters.get("2")
        with pytest.raises(AggregateQueryError):
            await counters.get("1", version=-1)

    asyncio.run(scenario())


def test_a_stale_save_is_refused_and_writes_nothing(store: EventStore) -> None:
    async def scenario() -> None:
        counters = _counters(store)
        await counters.save(new_counter("1"))
        first, second = await counters.get("1"), await counters.get("1")
        first.increment()
        second.increment(5)
        await counters.save(first)
        with pytest.raises(WrongExpectedVersionError):
            await counters.save(second)
        assert second.pending_events
        assert (await counters.get("1")).state.value == 1

    asyncio.run(scenario())


def test_update_retries_concurrent_commands_until_each_lands(store: EventStore) -> None:
    async def scenario() -> Counter:
        counters = _counters(store)
        await counters.save(new_counter("1"))

        async def bump(counter: Counter) -> None:
            await asyncio.sleep(0)
            counter.increment()

        await asyncio.gather(*(counters.update("1", bump, retries=50) for _ in range(20)))
        return await counters.get("1")

    assert asyncio.run(scenario()).state.value == 20


def test_a_command_that_raises_saves_nothing(store: EventStore) -> None:
    async def scenario() -> None:
        counters = _counters(store)
        await counters.save(new_counter("1"))

        def bad(counter: Counter) -> None:
            counter.increment(-1)

        with pytest.raises(CounterError):
            await counters.update("1", bad)
        assert (await counters.get("1")).version == 0

    asyncio.run(scenario())


def test_several_aggregates_save_atomically_and_concurrent_saves_all_land(
    store: EventStore,
) -> None:
    async def scenario() -> list[int]:
        counters = _counters(store)
        await counters.save(new_counter("a"), new_counter("b", increments=2))
        await asyncio.gather(
            *(counters.save(new_counter(f"n{n}", increments=1)) for n in range(100))
        )
        return [(await counters.get(name)).state.value for name in ("a", "b", "n0", "n99")]

    assert asyncio.run(scenario()) == [0, 2, 1, 1]
    assert store.head_position() == 1 + 3 + 200


def test_the_snapshot_policy_holds_for_async_saves(store: EventStore) -> None:
    snapshots = MemorySnapshotStore()

    async def scenario() -> Counter:
        counters = _counters(store, snapshot_store=snapshots, snapshot_every=5)
        counter = new_counter("1", increments=6)
        await counters.save(counter)
        return await counters.get("1")

    loaded = asyncio.run(scenario())
    assert loaded.state.value == 6
    assert snapshots.latest("counter-1", schema_version=Counter.snapshot_version) is not None
