"""How a subscription moves through a log where its filter rarely matches, and how it waits
through an outage of its store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import eventvault
from eventvault import (
    AsyncEventStore,
    AsyncSubscription,
    EventStore,
    NewEvent,
    RecordedEvent,
    StreamState,
)
from eventvault.errors import (
    EventVaultError,
    HashChainError,
    InvalidEventError,
    StorageError,
    StoreUnavailableError,
)
from eventvault.store.memory import MemoryEventStore
from eventvault.store.subscription import MAX_RETRY_INTERVAL, POLL_INTERVAL


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
def test_a_filtered_subscription_does_not_rescan_events_that_never_matched(
    engine: str, tmp_path: Path
) -> None:
    url = "memory://" if engine == "memory" else str(tmp_path / "s.db")
    with eventvault.connect(url) as store:
        store.append_to_stream(
            "noise-1",
            [NewEvent("Noise", {"n": n}) for n in range(2500)],
            expected_version=StreamState.ANY,
        )
        with store.subscribe_to_all(event_types=["Rare"]) as subscription:
            assert subscription.next_batch(timeout=0.2) == []
            # Every event up to the head was examined once; the next poll starts after them.
            assert subscription._cursor == store.head_position()
            store.append_to_stream(
                "rare-1", [NewEvent("Rare", {})], expected_version=StreamState.ANY
            )
            (event,) = subscription.next_batch(timeout=5)
        assert event.event_type == "Rare"
        assert subscription.position == event.global_position


class _FlakyStore(MemoryEventStore):
    """A memory store whose reads fail with a chosen error while `failure` is set."""

    failure: EventVaultError | None = None
    failed_reads = 0

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        if self.failure is not None:
            self.failed_reads += 1
            raise self.failure
        return super()._read_all_page(after, backwards, limit, event_types, stream_prefix)

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        if self.failure is not None:
            self.failed_reads += 1
            raise self.failure
        return super()._read_stream_page(stream_name, start, backwards, limit)


def _outage(store: _FlakyStore) -> StoreUnavailableError:
    return StoreUnavailableError(store.url, "the server at db.example:5432 cannot be reached")


def _append(store: EventStore, stream: str, count: int) -> None:
    store.append_to_stream(
        stream, [NewEvent("E", {"n": n}) for n in range(count)], expected_version=StreamState.ANY
    )


@pytest.mark.parametrize("kind", ["all", "stream"])
def test_a_subscription_waits_through_an_outage_and_resumes_without_loss_or_repeat(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _FlakyStore()
    _append(store, "s-1", 3)
    subscription = store.subscribe_to_all() if kind == "all" else store.subscribe_to_stream("s-1")
    with subscription:
        assert len(subscription.next_batch(timeout=5)) == 3
        error = store.failure = _outage(store)
        _append(store, "s-1", 4)
        with caplog.at_level(logging.WARNING, logger="eventvault.subscription"):
            assert subscription.next_batch(timeout=1.5) == []
            assert subscription.waiting
            assert subscription.last_error is error
            # Back-off: 0.1, 0.2, 0.4, 0.8 s between tries, not one try per poll interval.
            assert 3 <= store.failed_reads <= 6
            store.failure = None
            batch = subscription.next_batch(timeout=5)
        assert [e.data["n"] for e in batch] == [0, 1, 2, 3]
        assert not subscription.waiting
        assert subscription.last_error is None
    waiting = [r for r in caplog.records if "is waiting for the store" in r.getMessage()]
    assert len(waiting) == 1, "one warning per outage, not one per retry"
    assert "memory://" in waiting[0].getMessage()
    assert "db.example:5432 cannot be reached" in waiting[0].getMessage()
    assert any("resumed" in r.getMessage() for r in caplog.records)


def test_the_pause_between_retries_is_capped() -> None:
    store = _FlakyStore()
    with store.subscribe_to_all() as subscription:
        store.failure = _outage(store)
        for _ in range(8):
            subscription._poll()
        assert subscription._pause() == MAX_RETRY_INTERVAL
        store.failure = None
        subscription._poll()
        assert subscription._pause() == POLL_INTERVAL


@pytest.mark.parametrize(
    "failure",
    [
        StorageError("PostgreSQL error: disk full"),
        HashChainError("s-1", 0, "ab" * 32, "cd" * 32),
        InvalidEventError("cannot decode"),
    ],
    ids=["storage", "integrity", "bad-data"],
)
def test_an_error_other_than_unavailable_ends_the_subscription_at_once(
    failure: EventVaultError,
) -> None:
    store = _FlakyStore()
    with store.subscribe_to_all() as subscription:
        store.failure = failure
        started = time.monotonic()
        with pytest.raises(type(failure)):
            next(iter(subscription))
        assert time.monotonic() - started < 1
        assert store.failed_reads == 1
        assert not subscription.waiting


def test_an_async_subscription_waits_through_an_outage_and_resumes() -> None:
    store = _FlakyStore()
    _append(store, "s-1", 2)

    async def scenario() -> tuple[list[int], bool, StoreUnavailableError | None, list[int]]:
        async with AsyncEventStore(store).subscribe_to_all() as subscription:
            before = [e.stream_position async for e in _take(subscription, 2)]
            store.failure = _outage(store)
            _append(store, "s-1", 3)
            assert await subscription.next_batch(timeout=0.5) == []
            waiting, error = subscription.waiting, subscription.last_error
            store.failure = None
            after = [e.stream_position async for e in _take(subscription, 3)]
            assert not subscription.waiting
            return before, waiting, error, after

    before, waiting, error, after = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert (before, after) == ([0, 1], [2, 3, 4])
    assert waiting
    assert isinstance(error, StoreUnavailableError)


async def _take(subscription: AsyncSubscription, count: int) -> AsyncIterator[RecordedEvent]:
    for _ in range(count):
        yield await anext(subscription)


def test_an_async_subscription_ends_at_once_on_an_error_other_than_unavailable() -> None:
    store = _FlakyStore()

    async def scenario() -> None:
        async with AsyncEventStore(store).subscribe_to_all() as subscription:
            store.failure = StorageError("PostgreSQL error: disk full")
            await anext(subscription)

    with pytest.raises(StorageError, match="disk full"):
        asyncio.run(asyncio.wait_for(scenario(), 5))
