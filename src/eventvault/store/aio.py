"""The async face of a store: the same operations as coroutines and async iterators.

It is a thin layer over the sync store: each call runs the one sync implementation in a worker
thread (reads a page at a time), appends queue for the store's group commit from the event loop
itself (`EventStore._append_async`), and live subscriptions wait for wake-ups on the event loop,
not in a thread. There is no second copy of any SQL statement or paging rule, and
tests/store/test_async_face.py holds its members to the sync ones.

Async iterators are safe to cancel at any `await`: a worker thread cannot be stopped, so what it
fetches for a cancelled call is kept for the next one (`_Worker`), and a worker thread never
waits for new events, so cancelling a task or closing its loop leaves no thread blocked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Generic, Self, TypeVar

from eventvault.errors import StoreUnavailableError
from eventvault.store.base import DEFAULT_PAGE_SIZE, EventStore, StoreStats
from eventvault.store.notify import Notifier, wake_future
from eventvault.store.seam import AppendValidator, Component, Dialect, SQLRow, Transaction
from eventvault.store.subscription import Subscription
from eventvault.types import (
    AppendResult,
    ExpectedVersion,
    NewEvent,
    PayloadEvent,
    RawEvent,
    RecordedEvent,
    StreamAppend,
    StreamInfo,
)

__all__ = ["AsyncEventStore", "AsyncSubscription"]

T = TypeVar("T")
_Result = TypeVar("_Result")


class _Worker(Generic[T]):
    """Runs one call at a time in a thread; a result whose awaiter was cancelled is kept.

    A thread cannot be cancelled. When the coroutine waiting for it is, the call goes on, and
    what it fetched (a page taken from an iterator, events a subscription has moved past) would
    be lost if it were dropped; and a second call started meanwhile would race the first on the
    same iterator. So the call runs to its end, its result waits here, and the next `result()`
    takes it instead of starting another call.

    Args:
        call: what to run in the thread; the same function every time, never returning None.
    """

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._pending: concurrent.futures.Future[T] | None = None

    async def result(self) -> T | None:
        """The result of a call: the one in flight or finished unclaimed, else a new one.

        Returns:
            The result; None when another coroutine, waiting for the same call, claimed it
            first (the caller then looks again at what that one stored).

        Raises:
            BaseException: what the call raised.
        """
        pending = self._pending
        if pending is None:
            pending = self._pending = _start(self._call)
        await _finished(pending)
        # From here to the return nothing awaits, so the result reaches exactly one caller.
        if self._pending is not pending:
            return None
        self._pending = None
        return pending.result()


def _start(call: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run `call` in a new thread (with the caller's context variables), as a future.

    A thread per call, not a shared pool: a pool's threads can all be taken by calls waiting
    for an unreachable server, and a pool inherited across fork() has no threads behind it.
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            result = context.run(call)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name="eventvault-async").start()
    return future


async def _finished(future: concurrent.futures.Future[T]) -> None:
    """Wait until `future` is done; cancelling the wait leaves the future alone."""
    if future.done():
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        # A closed loop raises RuntimeError: nobody is waiting there any more, and the
        # result stays in the future for whoever asks next.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake_future, woken)

    future.add_done_callback(wake)
    await woken


class _PagedAsyncIterator(Generic[T]):
    """Drives a lazy sync iterator from the event loop, one page per worker-thread call.

    Cancelling `__anext__` at any point loses nothing: the page being fetched is kept for the
    next call (see `_Worker`).
    """

    def __init__(self, iterator: Iterator[T]) -> None:
        self._iterator = iterator
        self._worker = _Worker(self._take)
        self._page: list[T] = []
        self._index = 0
        self._done = False

    def _take(self) -> list[T]:
        return list(itertools.islice(self._iterator, DEFAULT_PAGE_SIZE))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while self._index >= len(self._page):
            if self._done:
                raise StopAsyncIteration
            page = await self._worker.result()
            if page is None:
                continue
            self._page, self._index = page, 0
            if len(page) < DEFAULT_PAGE_SIZE:
                self._done = True
        item = self._page[self._index]
        self._index += 1
        return item


class AsyncSubscription:
    """The async form of `Subscription`: `async for event in subscription`.

    `close()` ends the iteration; `position` is the position of the last event delivered;
    `waiting` and `last_error` tell that the store is unavailable and the subscription waits to
    retry (it resumes on its own, losing and repeating nothing). Cancelling `__anext__` or
    `next_batch` (a timeout around it, a cancelled task) at any point loses and repeats nothing:
    events fetched for a cancelled call go to the next one. Every wait (for new events, before
    a retry) is on the event loop; a worker thread only polls the store once.
    """

    position: int
    """The position of the last event delivered."""

    def __init__(self, subscription: Subscription, store: EventStore) -> None:
        self._subscription = subscription
        self._store = store
        self._worker = _Worker(self._poll)
        self._buffer: list[RecordedEvent] = []
        self._index = 0
        self.position = subscription.position

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended."""
        return self._subscription.closed

    @property
    def waiting(self) -> bool:
        """Whether the store is unavailable and the subscription is waiting to retry."""
        return self._subscription.waiting

    @property
    def last_error(self) -> StoreUnavailableError | None:
        """While `waiting`, the error of the last failed attempt; None while the store answers."""
        return self._subscription.last_error

    def close(self) -> None:
        """End the subscription; an `async for` over it ends within a poll interval."""
        self._subscription.close()

    def _poll(self) -> tuple[int, list[RecordedEvent]]:
        # The generation is read before the fetch, in the same thread: a wake-up that comes
        # after the fetch then ends the wait that follows it, however late that wait starts.
        seen = self._store.notifier.generation
        return seen, self._subscription._poll()

    async def _fill(self, timeout: float | None) -> bool:
        """Make sure the buffer holds events: whether it does (False: closed, or timed out)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._index >= len(self._buffer):
            if self._subscription.closed:
                return False
            polled = await self._worker.result()
            if polled is None:
                continue
            seen, batch = polled
            if batch:
                self._buffer, self._index = batch, 0
                return True
            if self._subscription.closed:
                return False
            wait = self._subscription._pause()
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return False
                wait = min(wait, left)
            await self._store.notifier.wait_async(seen, wait)
        return True

    async def next_batch(self, timeout: float | None = None) -> list[RecordedEvent]:
        """See `Subscription.next_batch`; the waits are on the event loop."""
        if not await self._fill(timeout):
            return []
        batch = self._buffer[self._index :]
        self._buffer, self._index = [], 0
        self.position = self._subscription._position_of(batch[-1])
        return batch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordedEvent:
        if not await self._fill(None):
            raise StopAsyncIteration
        event = self._buffer[self._index]
        self._index += 1
        self.position = self._subscription._position_of(event)
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
    def dialect(self) -> Dialect:
        """See `EventStore.dialect`."""
        return self.store.dialect

    @property
    def max_event_bytes(self) -> int:
        """The limit on one event's encoded data plus metadata, in bytes."""
        return self.store.max_event_bytes

    @property
    def notifier(self) -> Notifier:
        """See `EventStore.notifier`."""
        return self.store.notifier

    @property
    def closed(self) -> bool:
        """Whether the store was closed."""
        return self.store.closed

    @property
    def read_only(self) -> bool:
        """Whether appends and imports are refused (`connect_async(url, read_only=True)`)."""
        return self.store.read_only

    @property
    def engine(self) -> str:
        """See `EventStore.engine`."""
        return self.store.engine

    @property
    def embedded(self) -> bool:
        """See `EventStore.embedded`."""
        return self.store.embedded

    @property
    def storage_file(self) -> str | None:
        """See `EventStore.storage_file`."""
        return self.store.storage_file

    async def storage_size(self) -> int | None:
        """See `EventStore.storage_size`; measured in a worker thread."""
        return await asyncio.to_thread(self.store.storage_size)

    async def append_to_stream(
        self,
        stream_name: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion,
    ) -> AppendResult:
        """See `EventStore.append_to_stream`.

        The events are validated and encoded on the event loop, then queued for the store's
        group commit from the loop itself: concurrent coroutines share commits without a
        thread each. Cancelling the await stops the waiting, not the append: once queued, it
        is committed (or refused) all the same.
        """
        store = self.store
        pending = store._prepare_append(stream_name, events, expected_version)
        return (await store._append_async(pending))[0]

    async def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """See `EventStore.append_to_streams`; queued like `append_to_stream`."""
        store = self.store
        return await store._append_async(store._prepare_appends(appends))

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

    def read_stream_payloads(
        self,
        stream_name: str,
        *,
        from_position: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[PayloadEvent]:
        """See `EventStore.read_stream_payloads`; bad arguments raise at the call."""
        return _PagedAsyncIterator(
            self.store.read_stream_payloads(stream_name, from_position=from_position, limit=limit)
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

    async def import_events(
        self,
        events: Iterable[RawEvent],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """See `EventStore.import_events`; `events` is consumed, and `on_progress` called, in a
        worker thread."""
        return await asyncio.to_thread(self.store.import_events, events, on_progress=on_progress)

    @property
    def append_validator(self) -> AppendValidator | None:
        """See `EventStore.append_validator`."""
        return self.store.append_validator

    async def set_append_validator(self, validator: AppendValidator | None) -> None:
        """See `EventStore.set_append_validator`: the async face appends through the store,
        so the check holds here too."""
        self.store.set_append_validator(validator)

    async def use(self, component: Component) -> None:
        """See `EventStore.use`."""
        await asyncio.to_thread(self.store.use, component)

    async def query(self, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        """See `EventStore.query`."""
        return await asyncio.to_thread(self.store.query, statement, params)

    async def component_versions(self) -> dict[str, int]:
        """See `EventStore.component_versions`."""
        return await asyncio.to_thread(self.store.component_versions)

    async def run_transaction(self, work: Callable[[Transaction], _Result]) -> _Result:
        """See `EventStore.run_transaction`; `work` is a plain function, run in a worker thread.

        Cancelling the `await` stops the waiting, not the transaction: it commits (or rolls
        back) in its thread all the same.
        """
        return await asyncio.to_thread(self.store.run_transaction, work)

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
