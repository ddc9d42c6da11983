"""Group commit: many concurrent appends, one transaction, one sync to disk.

A thread that appends while no commit is running becomes the leader and commits its own append
at once; appends that arrive meanwhile queue up, and the finishing leader hands the whole queue
to the first of them, which commits it as one transaction. A lone writer therefore commits
without any hand-off between threads; sixteen writers share each fsync.

The finished batch's waiters are woken in a chain: the leader wakes the first, and each wakes
the next as soon as it runs. Woken all at once, they would all contend for the interpreter lock
with the thread that commits the next batch; one at a time, each finds it free far more often.
On two cores this halves the system time per append at 16 threads (ADR 0001).
"""

from __future__ import annotations

import _thread
import itertools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


class _Waiter(Generic[RequestT, ResultT]):
    __slots__ = ("batch", "following", "outcome", "request", "signal")

    def __init__(self, request: RequestT) -> None:
        self.request = request
        # Only a waiter that queues behind a leader needs something to sleep on: a plain lock,
        # taken at once, that a leader releases to wake it (cheaper than an Event). A writer
        # that finds no commit running commits its own request and never creates one.
        self.signal: _thread.LockType | None = None
        # Set when this waiter is woken to lead: the batch it must commit.
        self.batch: list[_Waiter[RequestT, ResultT]] | None = None
        self.outcome: ResultT | BaseException | None = None
        # The next waiter of the same batch, which this one wakes once it runs again.
        self.following: _Waiter[RequestT, ResultT] | None = None

    def wake(self) -> None:
        signal = self.signal
        if signal is not None and signal.locked():
            signal.release()


class GroupCommitter(Generic[RequestT, ResultT]):
    """Batches concurrent requests into calls of one commit function.

    A request that arrives while no commit is running is committed at once by its own thread.
    Otherwise it queues; when the leader finishes, it hands everything queued (up to
    `max_batch`) to the first queued thread, which commits it as the next batch.

    Args:
        commit: given the requests of one batch, in arrival order, returns one outcome per
            request (its result, or the exception it must raise). An exception it raises fails
            the whole batch.
        max_batch: the most requests one batch takes.
    """

    def __init__(
        self,
        commit: Callable[[list[RequestT]], list[ResultT | BaseException]],
        max_batch: int = 512,
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._lock = threading.Lock()
        # Never empty while no commit runs: a finishing leader hands the queue on.
        self._queue: list[_Waiter[RequestT, ResultT]] = []
        self._leading = False

    def submit(self, request: RequestT) -> ResultT:
        """Queue a request, wait for the commit that holds it, and return its result.

        Raises:
            BaseException: the exception the commit function gave for this request.
        """
        waiter: _Waiter[RequestT, ResultT] = _Waiter(request)
        with self._lock:
            if not self._leading:
                self._leading = True
                batch: list[_Waiter[RequestT, ResultT]] | None = [waiter]
            else:
                self._queue.append(waiter)
                signal = waiter.signal = _thread.allocate_lock()
                signal.acquire()
                batch = None
        if batch is None:
            signal.acquire()
            batch = waiter.batch
            if batch is None:  # committed in another thread's batch
                following = waiter.following
                if following is not None:
                    following.wake()
                return self._result(waiter)
        self._lead(batch)
        return self._result(waiter)

    def has_queued(self) -> bool:
        """Whether requests are queued for the next batch. Asked by the commit function (the
        leader), True means another batch will be committed after the current one."""
        return bool(self._queue)

    def _lead(self, batch: list[_Waiter[RequestT, ResultT]]) -> None:
        try:
            outcomes = self._commit([waiter.request for waiter in batch])
        except BaseException as exc:
            outcomes = [exc] * len(batch)
        for waiter, outcome in zip(batch, outcomes, strict=True):
            waiter.outcome = outcome
            waiter.batch = None
        for waiter, following in itertools.pairwise(batch[1:]):
            waiter.following = following
        with self._lock:
            if self._queue:
                queued = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                successor = queued[0]
                successor.batch = queued
                successor.wake()
            else:
                self._leading = False
        # The waiters wake one another in turn: each is woken as the one before it runs, so
        # they do not all contend for the interpreter at once.
        if len(batch) > 1:
            batch[1].wake()

    @staticmethod
    def _result(waiter: _Waiter[RequestT, ResultT]) -> ResultT:
        outcome = waiter.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]
