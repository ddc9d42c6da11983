"""`Subscription`: catch up from a position, then follow the live log.

A subscription re-queries the store after every wake-up from the store's `Notifier`, and also
after `POLL_INTERVAL` without one, so a lost wake-up (another process wrote, a notification was
dropped) delays an event and never loses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from eventvault.errors import EventVaultError
from eventvault.types import RecordedEvent

if TYPE_CHECKING:
    from eventvault.store.base import EventStore

__all__ = ["POLL_INTERVAL", "Subscription"]

POLL_INTERVAL: Final = 0.05
"""Seconds a live subscriber waits for a wake-up before it re-queries anyway."""


class Subscription:
    """A live feed of events: catch-up from a position, then new events as they are committed.

    Iterating blocks while there is nothing new and ends when `close()` is called, from any
    thread. `position` is the position of the last event delivered (global for
    `subscribe_to_all`, stream position for `subscribe_to_stream`): persist it as a checkpoint
    and pass it as `after` to resume.
    """

    def __init__(
        self,
        store: EventStore,
        fetch: Callable[[int], tuple[list[RecordedEvent], int]],
        after: int,
        *,
        global_order: bool,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._store = store
        self._fetch = fetch
        self.position = after
        self._cursor = after
        self._global_order = global_order
        self._poll_interval = poll_interval
        self._buffer: list[RecordedEvent] = []
        self._index = 0
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended."""
        return self._closed.is_set()

    def close(self) -> None:
        """End the subscription; a thread blocked iterating it stops within a poll interval."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._store.notifier.notify()
        self._store._unregister(self)

    def _position_of(self, event: RecordedEvent) -> int:
        return event.global_position if self._global_order else event.stream_position

    def _wait_for_page(self, timeout: float | None) -> list[RecordedEvent]:
        notifier = self._store.notifier
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            seen = notifier.generation
            try:
                page, self._cursor = self._fetch(self._cursor)
            except EventVaultError:
                if self._closed.is_set() or self._store.closed:
                    return []
                raise
            if page:
                return page
            wait = self._poll_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                wait = min(wait, left)
            notifier.wait(seen, wait)
        return []

    def next_batch(self, timeout: float | None = None) -> list[RecordedEvent]:
        """Wait for the next events and return them (at most one page).

        Args:
            timeout: the most seconds to wait; None waits until events arrive or `close()`.

        Returns:
            The events, in order; empty when the timeout passed or the subscription was closed.
        """
        if self._index < len(self._buffer):
            batch = self._buffer[self._index :]
            self._buffer, self._index = [], 0
        else:
            batch = self._wait_for_page(timeout)
        if batch:
            self.position = self._position_of(batch[-1])
        return batch

    def __iter__(self) -> Iterator[RecordedEvent]:
        return self

    def __next__(self) -> RecordedEvent:
        if self._index >= len(self._buffer):
            self._buffer = self._wait_for_page(None)
            self._index = 0
            if not self._buffer:
                raise StopIteration
        event = self._buffer[self._index]
        self._index += 1
        self.position = self._position_of(event)
        return event

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
