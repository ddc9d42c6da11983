"""Contract: async reads and subscriptions lose, repeat and reorder nothing when cancelled.

Every `anext` of an async read or subscription is cancelled at random points, thousands of times
(`asyncio.wait_for` with tiny random timeouts, and `task.cancel()` after a random number of loop
turns), while another thread appends. Whatever was in flight when a call was cancelled must
reach the next call: every event arrives exactly once, in order.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

import pytest

from eventvault import AsyncEventStore, EventStore, NewEvent, StreamAppend, StreamState
from eventvault.testing.contract.base import ContractBase, events

__all__ = ["CancellationContract"]

T = TypeVar("T")

CANCELLATIONS: Final = 500
"""Cancelled `anext` calls each test makes before it lets the iteration finish."""
MAX_DELAY: Final = 0.003
"""The longest a call runs before it is cancelled (seconds): about the time a page takes."""
BUDGET: Final = 60.0
"""Seconds a test may take on a very busy machine before it gives up."""


class _Canceller:
    """Takes items from an async iterator with most `anext` calls cancelled at random points."""

    def __init__(self) -> None:
        self.seed = random.randrange(2**32)
        self._random = random.Random(self.seed)
        self.cancelled = 0

    async def next(self, iterator: AsyncIterator[T]) -> T:
        """The iterator's next item, after as many cancelled calls as chance gives.

        Raises:
            StopAsyncIteration: the iterator is exhausted.
        """
        chance = self._random
        while True:
            # Mostly very short delays: a page of the memory engine takes a fraction of a ms.
            delay = MAX_DELAY * chance.random() ** 3
            if chance.random() < 0.5:
                try:
                    return await asyncio.wait_for(anext(iterator), delay)
                except TimeoutError:
                    self.cancelled += 1
                continue
            task = asyncio.ensure_future(anext(iterator))
            for _ in range(chance.randrange(4)):
                if task.done():
                    break
                await asyncio.sleep(0)
            if not task.done() and chance.random() < 0.5:
                await asyncio.wait([task], timeout=delay)
            task.cancel()
            try:
                return await task
            except asyncio.CancelledError:
                self.cancelled += 1


class _Writer:
    """A thread that appends small batches until stopped, as a busy application would."""

    def __init__(self, store: EventStore, streams: Callable[[int], str], pause: float) -> None:
        self._store = store
        self._streams = streams
        self._pause = pause
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self.error: BaseException | None = None

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                self._store.append_to_stream(
                    self._streams(n), events(1 + n % 3, "Live"), expected_version=StreamState.ANY
                )
                n += 1
                self._stop.wait(self._pause)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(BUDGET)
        if self.error is not None:
            raise self.error


@dataclass(frozen=True, slots=True)
class _Read:
    """One kind of async read: how to start it, what to check an item by, where to append."""

    start: Callable[[AsyncEventStore], AsyncIterator[object]]
    key: Callable[[object], object]
    writes_to: Callable[[int], str]


def _global(item: object) -> object:
    return item.global_position  # type: ignore[attr-defined]


_READS: Final = {
    "read_all": _Read(lambda f: f.read_all(), _global, lambda n: f"live-{n % 5}"),
    "export_events": _Read(lambda f: f.export_events(), _global, lambda n: f"live-{n % 5}"),
    "read_stream": _Read(
        lambda f: f.read_stream("s-1"),
        lambda item: item.stream_position,  # type: ignore[attr-defined]
        lambda n: "s-1",
    ),
    "list_streams": _Read(
        lambda f: f.list_streams(),
        lambda item: item.stream_name,  # type: ignore[attr-defined]
        # New streams whose names sort before, among and after the existing ones.
        lambda n: f"{'amz'[n % 3]}-{n:05d}",
    ),
}

_INITIAL_EVENTS: Final = 1500
"""Events (or streams, for `list_streams`) stored before the reads: two pages."""


def _fill(store: EventStore, kind: str) -> list[object]:
    """Store two pages of what `kind` reads; return the keys a full read must include."""
    if kind != "list_streams":
        store.append_to_stream("s-1", events(_INITIAL_EVENTS), expected_version=StreamState.ANY)
        if kind == "read_stream":
            return list(range(_INITIAL_EVENTS))
        return list(range(1, _INITIAL_EVENTS + 1))
    names = [f"m-{n:05d}" for n in range(_INITIAL_EVENTS)]
    for first in range(0, len(names), 500):
        store.append_to_streams(
            [
                StreamAppend(name, [NewEvent("Made", {})], expected_version=StreamState.NO_STREAM)
                for name in names[first : first + 500]
            ]
        )
    return list(names)


def _expected(kind: str, keys: list[object], required: list[object]) -> Iterator[str]:
    """What is wrong with the keys one read gave (nothing when it is whole and in order)."""
    if kind == "list_streams":
        if keys != sorted(set(keys), key=str):
            yield "stream names repeated or out of order"
        missing = set(required) - set(keys)
        if missing:
            yield f"{len(missing)} streams missing, e.g. {sorted(missing, key=str)[:3]}"
        return
    first = 0 if kind == "read_stream" else 1
    if keys != list(range(first, first + len(keys))):
        yield f"positions lost, repeated or out of order: {_first_break(keys, first)}"
    if len(keys) < len(required):
        yield f"{len(keys)} items, fewer than the {len(required)} stored before the read"


def _first_break(keys: list[object], first: int) -> str:
    for index, key in enumerate(keys):
        if key != first + index:
            return f"item {index} is {key!r}, expected {first + index}"
    return "none"  # pragma: no cover - only called when the keys are not consecutive


class CancellationContract(ContractBase):
    """Async reads and subscriptions keep what a cancelled call had fetched (guarantee 7)."""

    def test_cancelled_anext_of_a_subscription_to_all_loses_and_repeats_nothing(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("s-0", events(1200), expected_version=StreamState.ANY)
        canceller = _Canceller()

        async def scenario() -> list[int]:
            received: list[int] = []
            async with AsyncEventStore(store).subscribe_to_all() as subscription:
                with _Writer(store, lambda n: f"live-{n % 7}", 0.001):
                    while canceller.cancelled < CANCELLATIONS:
                        received.append((await canceller.next(subscription)).global_position)
                head = store.head_position()
                while received[-1] < head:
                    received.append((await canceller.next(subscription)).global_position)
            return received

        received = asyncio.run(asyncio.wait_for(scenario(), BUDGET))
        expected = [event.global_position for event in store.read_all()]
        assert received == expected, f"seed {canceller.seed}: {_first_break(received, 1)}"  # type: ignore[arg-type]
        assert canceller.cancelled >= CANCELLATIONS

    def test_cancelled_anext_of_a_stream_subscription_loses_and_repeats_nothing(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("target-1", events(1200), expected_version=StreamState.ANY)
        canceller = _Canceller()

        async def scenario() -> list[int]:
            received: list[int] = []
            facade = AsyncEventStore(store)
            async with facade.subscribe_to_stream("target-1") as subscription:
                with _Writer(store, lambda n: "target-1" if n % 2 else "other-1", 0.001):
                    while canceller.cancelled < CANCELLATIONS:
                        received.append((await canceller.next(subscription)).stream_position)
                version = store.get_stream_version("target-1")
                assert version is not None
                while received[-1] < version:
                    received.append((await canceller.next(subscription)).stream_position)
            return received

        received = asyncio.run(asyncio.wait_for(scenario(), BUDGET))
        assert received == list(range(len(received))), (
            f"seed {canceller.seed}: {_first_break(received, 0)}"  # type: ignore[arg-type]
        )
        assert received[-1] == store.get_stream_version("target-1")
        assert canceller.cancelled >= CANCELLATIONS

    @pytest.mark.parametrize("kind", list(_READS))
    def test_cancelled_anext_of_an_async_read_loses_and_repeats_nothing(
        self, store: EventStore, kind: str
    ) -> None:
        read = _READS[kind]
        required = _fill(store, kind)
        canceller = _Canceller()

        async def scenario() -> list[str]:
            facade = AsyncEventStore(store)
            faults: list[str] = []
            reads = 0
            # Slower than for subscriptions: every read takes the whole log again.
            with _Writer(store, read.writes_to, 0.01):
                while canceller.cancelled < CANCELLATIONS and not faults:
                    keys: list[object] = []
                    iterator = read.start(facade)
                    while True:
                        try:
                            keys.append(read.key(await canceller.next(iterator)))
                        except StopAsyncIteration:
                            break
                    faults = [f"read {reads}: {fault}" for fault in _expected(kind, keys, required)]
                    reads += 1
            return faults

        faults = asyncio.run(asyncio.wait_for(scenario(), BUDGET))
        assert faults == [], f"seed {canceller.seed}"

    def test_a_subscription_cancelled_as_its_event_loop_ends_resumes_in_the_next_loop(
        self, store: EventStore
    ) -> None:
        store.append_to_stream("s-1", events(2500), expected_version=StreamState.ANY)
        subscription = AsyncEventStore(store).subscribe_to_all()
        received: list[int] = []

        async def until_the_loop_ends() -> None:
            # Take events until a call has to fetch; leave it in flight. asyncio.run cancels it
            # and closes the loop, usually before its worker thread is done: the next loop
            # must be given what that thread fetched.
            while True:
                call = asyncio.ensure_future(anext(subscription))
                await asyncio.sleep(0)
                if not call.done():
                    return
                received.append(call.result().global_position)

        deadline = time.monotonic() + BUDGET
        try:
            while len(received) < 2500 and time.monotonic() < deadline:
                asyncio.run(until_the_loop_ends())
        finally:
            subscription.close()
        assert received == list(range(1, 2501))
        _no_worker_left_after(5.0)


def _no_worker_left_after(seconds: float) -> None:
    """Worker threads of the async face only run bounded calls: none outlives its call."""
    deadline = time.monotonic() + seconds
    while any(t.name == "eventvault-async" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "an async worker thread is still running"
        time.sleep(0.01)
