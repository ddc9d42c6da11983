"""`Subscription`: catch up from a position, then follow the live log, across outages.

A subscription re-queries the store after every wake-up from the store's `Notifier`, and also
after `POLL_INTERVAL` without one, so a lost wake-up (another process wrote, a notification was
dropped) delays an event and never loses it.

When the store is unavailable (`StoreUnavailableError`: a database server down or restarting, a
lost connection) a subscription does not end: it keeps its position, waits with a growing pause
(at most `MAX_RETRY_INTERVAL`), tries again, and carries on from where it was once the store
answers. Each poll either returns a page and moves the cursor past it, or fails and moves
nothing, so the outage can neither lose nor repeat an event. Any other error (bad input, a
closed store, damaged data) ends the subscription at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from eventvault.errors import EventVaultError, StoreUnavailableError
from eventvault.types import RecordedEvent

if TYPE_CHECKING:
    from eventvault.store.base import EventStore

__all__ = ["FIRST_RETRY_INTERVAL", "MAX_RETRY_INTERVAL", "POLL_INTERVAL", "Subscription"]

logger = logging.getLogger("eventvault.subscription")

POLL_INTERVAL: Final = 0.05
"""Seconds a live subscriber waits for a wake-up before it re-queries anyway."""
FIRST_RETRY_INTERVAL: Final = 0.1
"""Seconds a subscription waits before its first retry when the store became unavailable."""
MAX_RETRY_INTERVAL: Final = 2.0
"""The longest pause between two retries while the store is unavailable (seconds); the pause
doubles from `FIRST_RETRY_INTERVAL` up to this. A wake-up (the PostgreSQL listener reconnecting,
an append in this process) ends a pause early."""


class Subscription:
    """A live feed of events: catch-up from a position, then new events as they are committed.

    Iterating blocks while there is nothing new and ends when `close()` is called, from any
    thread. `position` is the position of the last event delivered (global for
    `subscribe_to_all`, stream position for `subscribe_to_stream`): persist it as a checkpoint
    and pass it as `after` to resume.

    While the store is unavailable (`StoreUnavailableError`) the subscription waits and retries
    with back-off instead of ending: `waiting` is true, `last_error` holds the error, and one
    warning is logged (logger `eventvault.subscription`) per outage. It resumes without losing
    or repeating an event. Any other error ends the iteration by raising it.
    """

    position: int
    """The position of the last event delivered."""

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
        self._last_error: StoreUnavailableError | None = None
        self._waiting_since = 0.0
        self._retry_interval = FIRST_RETRY_INTERVAL

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended."""
        return self._closed.is_set()

    @property
    def waiting(self) -> bool:
        """Whether the store is unavailable and the subscription is waiting to retry."""
        return self._last_error is not None

    @property
    def last_error(self) -> StoreUnavailableError | None:
        """While `waiting`, the error of the last failed attempt; None while the store answers."""
        return self._last_error

    def close(self) -> None:
        """End the subscription; a thread blocked iterating it stops within a poll interval."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._store.notifier.notify()
        self._store._unregister(self)

    def _position_of(self, event: RecordedEvent) -> int:
        return event.global_position if self._global_order else event.stream_position

    def _poll(self) -> list[RecordedEvent]:
        """Look once for the next page, and move the cursor past it.

        Returns:
            The page; empty when nothing is new, when the subscription or store was closed, or
            when the store is unavailable (then `waiting` is true and `_pause` gives the
            back-off).

        Raises:
            EventVaultError: any failure other than the store being unavailable.
        """
        try:
            page, self._cursor = self._fetch(self._cursor)
        except StoreUnavailableError as exc:
            if not (self._closed.is_set() or self._store.closed):
                self._unavailable(exc)
            return []
        except EventVaultError:
            if self._closed.is_set() or self._store.closed:
                return []
            raise
        if self._last_error is not None:
            logger.warning(
                "subscription to %s resumed after waiting %.1f s for the store",
                self._store.url,
                time.monotonic() - self._waiting_since,
            )
            self._last_error = None
        return page

    def _unavailable(self, error: StoreUnavailableError) -> None:
        if self._last_error is None:
            logger.warning(
                "subscription to %s is waiting for the store (retrying every %g s at most): %s",
                self._store.url,
                MAX_RETRY_INTERVAL,
                error,
            )
            self._waiting_since = time.monotonic()
            self._retry_interval = FIRST_RETRY_INTERVAL
        else:
            self._retry_interval = min(self._retry_interval * 2, MAX_RETRY_INTERVAL)
        self._last_error = error

    def _pause(self) -> float:
        """Seconds to wait after an empty poll: the poll interval, or the back-off while the
        store is unavailable. A wake-up from the notifier ends either early."""
        return self._poll_interval if self._last_error is None else self._retry_interval

    def _wait_for_page(self, timeout: float | None) -> list[RecordedEvent]:
        notifier = self._store.notifier
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            seen = notifier.generation
            page = self._poll()
            if page:
                return page
            wait = self._pause()
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
                While the store is unavailable a call may take longer: an attempt to reach
                it runs to its end (on PostgreSQL, at most about `unavailable_timeout`).

        Returns:
            The events, in order; empty when the timeout passed (also while `waiting`) or the
            subscription was closed.

        Raises:
            EventVaultError: the store failed other than by being unavailable.
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
