"""The async face of a store: the same operations as coroutines and async iterators.

It is a thin layer over the sync store: each call runs the one sync implementation in a worker
thread (reads a page at a time), and live subscriptions wait for wake-ups on the event loop, not
in a thread. There is no second copy of any SQL statement or paging rule.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Generic, Self, TypeVar

from eventvault.store.base import DEFAULT_PAGE_SIZE, EventStore, StoreStats
from eventvault.store.subscription import POLL_INTERVAL, Subscription
from eventvault.types import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RawEvent,
    RecordedEvent,
    StreamAppend,
    StreamInfo,
)

__all__ = ["AsyncEventStore", "AsyncSubscription"]

T = TypeVar("T")


class _PagedAsyncIterator(Generic[T]):
    """Drives a lazy sync iterator from the event loop, one page per worker-thread call."""

    def __init__(self, iterator: Iterator[T]) -> None:
        self._iterator = iterator
        self._page: list[T] = []
        self._index = 0
        self._done = False

    def _take(self) -> list[T]:
        return list(itertools.islice(self._iterator, DEFAULT_PAGE_SIZE))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._index >= len(self._page):
            if self._done:
                raise StopAsyncIteration
            self._page = await asyncio.to_thread(self._take)
            self._index = 0
            if len(self._page) < DEFAULT_PAGE_SIZE:
                self._done = True
            if not self._page:
                raise StopAsyncIteration
        item = self._page[self._index]
        self._index += 1
        return item


class AsyncSubscription:
    """The async form of `Subscription`: `async for event in subscription`.

    `close()` ends the iteration; `position` is the position of the last event delivered.
    """

    def __init__(self, subscription: Subscription, store: EventStore) -> None:
        self._subscription = subscription
        self._store = store
        self._buffer: list[RecordedEvent] = []
        self._index = 0
        self.position = subscription.position

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended."""
        return self._subscription.closed

    def close(self) -> None:
        """End the subscription."""
        self._subscription.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordedEvent:
        notifier = self._store.notifier
        while self._index >= len(self._buffer):
            if self._subscription.closed:
                raise StopAsyncIteration
            seen = notifier.generation
            batch = await asyncio.to_thread(self._subscription.next_batch, 0)
            if batch:
                self._buffer, self._index = batch, 0
                break
            if self._subscription.closed:
                raise StopAsyncIteration
            await notifier.wait_async(seen, POLL_INTERVAL)
        event = self._buffer[self._index]
        self._index += 1
        self.position = (
            event.global_position if self._subscription._global_order else event.stream_position
        )
        return event

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncEventStore:
    """An `EventStore` for asyncio code. See `EventStore` for the meaning of each operation.

    Args:
        store: the sync store it drives.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store

    @property
    def url(self) -> str:
        """The URL the store was opened with."""
        return self.store.url

    @property
    def closed(self) -> bool:
        """Whether the store was closed."""
        return self.store.closed

    @property
    def read_only(self) -> bool:
        """Whether appends and imports are refused (`connect_async(url, read_only=True)`)."""
        return self.store.read_only

    async def append_to_stream(
        self,
        stream_name: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion,
    ) -> AppendResult:
        """See `EventStore.append_to_stream`."""
        return await asyncio.to_thread(
            self.store.append_to_stream, stream_name, events, expected_version=expected_version
        )

    async def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """See `EventStore.append_to_streams`."""
        return await asyncio.to_thread(self.store.append_to_streams, appends)

    def read_stream(
        self,
        stream_name: str,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """See `EventStore.read_stream`; bad arguments raise at the call."""
        return _PagedAsyncIterator(
            self.store.read_stream(
                stream_name, from_position=from_position, backwards=backwards, limit=limit
            )
        )

    def read_all(
        self,
        *,
        after: int = 0,
        backwards: bool = False,
        limit: int | None = None,
        event_types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """See `EventStore.read_all`; bad arguments raise at the call."""
        return _PagedAsyncIterator(
            self.store.read_all(
                after=after,
                backwards=backwards,
                limit=limit,
                event_types=event_types,
                stream_prefix=stream_prefix,
            )
        )

    def list_streams(self) -> AsyncIterator[StreamInfo]:
        """See `EventStore.list_streams`."""
        return _PagedAsyncIterator(self.store.list_streams())

    def export_events(self, *, after: int = 0, until: int | None = None) -> AsyncIterator[RawEvent]:
        """See `EventStore.export_events`."""
        return _PagedAsyncIterator(self.store.export_events(after=after, until=until))

    async def import_events(self, events: Iterable[RawEvent]) -> int:
        """See `EventStore.import_events`; `events` is consumed in a worker thread."""
        return await asyncio.to_thread(self.store.import_events, events)

    async def get_stream_version(self, stream_name: str) -> int | None:
        """See `EventStore.get_stream_version`."""
        return await asyncio.to_thread(self.store.get_stream_version, stream_name)

    async def head_position(self) -> int:
        """See `EventStore.head_position`."""
        return await asyncio.to_thread(self.store.head_position)

    async def stats(self) -> StoreStats:
        """See `EventStore.stats`."""
        return await asyncio.to_thread(self.store.stats)

    def subscribe_to_all(
        self,
        *,
        after: int = 0,
        event_types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> AsyncSubscription:
        """See `EventStore.subscribe_to_all`."""
        subscription = self.store.subscribe_to_all(
            after=after, event_types=event_types, stream_prefix=stream_prefix
        )
        return AsyncSubscription(subscription, self.store)

    def subscribe_to_stream(
        self, stream_name: str, *, after: int | None = None
    ) -> AsyncSubscription:
        """See `EventStore.subscribe_to_stream`."""
        return AsyncSubscription(
            self.store.subscribe_to_stream(stream_name, after=after), self.store
        )

    async def close(self) -> None:
        """Close the store and end its subscriptions."""
        await asyncio.to_thread(self.store.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
