"""Wake-ups for live subscriptions: a hint that the log may have grown, never the data itself.

A subscriber always re-queries after a wake-up, and also after a short timeout, so a wake-up
that is lost (another process wrote, a notification was dropped) delays an event, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["Notifier", "reset_shared_notifiers", "shared_notifier", "wake_future"]


class Notifier:
    """A counter that writers bump after each commit and subscribers wait on."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def generation(self) -> int:
        """How many notifications have been sent so far."""
        return self._generation

    def notify(self) -> None:
        """Wake every waiter."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            waiters = list(self._async_waiters)
        for loop, waiter in waiters:
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake_future, waiter)

    def wait(self, seen: int, timeout: float) -> int:
        """Block until a notification newer than `seen` arrives or `timeout` seconds pass.

        Returns:
            The current generation.
        """
        with self._condition:
            if self._generation == seen:
                self._condition.wait(timeout)
            return self._generation

    async def wait_async(self, seen: int, timeout: float) -> int:
        """The coroutine form of `wait`.

        Cancelling it is safe at any point: it only stops waiting.
        """
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        entry = (loop, woken)
        with self._condition:
            if self._generation != seen:
                return self._generation
            self._async_waiters.add(entry)
        # A timer on the loop, not asyncio.wait_for: before Python 3.12, wait_for can swallow
        # a cancellation that arrives as the wait ends.
        timer = loop.call_later(timeout, wake_future, woken)
        try:
            await woken
        finally:
            timer.cancel()
            with self._condition:
                self._async_waiters.discard(entry)
        return self._generation


def wake_future(waiter: asyncio.Future[None]) -> None:
    """Complete a waiter future unless it is done already (cancelled, or woken twice).

    Called on the waiter's event loop.
    """
    if not waiter.done():
        waiter.set_result(None)


_shared: dict[str, Notifier] = {}
_shared_lock = threading.Lock()


def shared_notifier(key: str) -> Notifier:
    """The one notifier of this process for a database (by its resolved path or URL).

    Every store opened on the same database in one process shares it, so an append through
    one wakes the subscribers of all of them at once.
    """
    with _shared_lock:
        notifier = _shared.get(key)
        if notifier is None:
            notifier = _shared[key] = Notifier()
        return notifier


def reset_shared_notifiers() -> None:
    """Forget every shared notifier: called in a forked child, where a lock held by one of the
    parent's other threads would stay held forever. Stores the child keeps take new ones."""
    global _shared_lock
    _shared_lock = threading.Lock()
    _shared.clear()
