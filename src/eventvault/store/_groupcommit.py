"""Group commit: many concurrent appends, one transaction, one sync to disk.

A thread that appends while no commit is running becomes the leader: it takes every append
queued so far, commits them in one transaction, hands each waiter its own result, and passes
leadership to the first append that queued meanwhile. A lone writer therefore commits its own
append with no hand-off between threads; sixteen writers share each fsync.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


class _Waiter(Generic[RequestT, ResultT]):
    __slots__ = ("outcome", "promoted", "request", "signal")

    def __init__(self, request: RequestT) -> None:
        self.request = request
        # Only a waiter that queues behind a leader needs something to sleep on: a plain lock,
        # taken at once, that the leader releases to wake it (cheaper than an Event). A lone
        # writer commits its own request and never creates one.
        self.signal: _thread.LockType | None = None
        self.promoted = False
        self.outcome: ResultT | BaseException | None = None

    def wake(self) -> None:
        signal = self.signal
        if signal is not None and signal.locked():
            signal.release()


class GroupCommitter(Generic[RequestT, ResultT]):
    """Batches concurrent requests into calls of one commit function.

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
        self._queue: list[_Waiter[RequestT, ResultT]] = []
        self._leading = False

    def submit(self, request: RequestT) -> ResultT:
        """Queue a request, wait for the commit that holds it, and return its result.

        Raises:
            BaseException: the exception the commit function gave for this request.
        """
        waiter: _Waiter[RequestT, ResultT] = _Waiter(request)
        with self._lock:
            self._queue.append(waiter)
            lead = not self._leading
            if lead:
                self._leading = True
            else:
                signal = waiter.signal = _thread.allocate_lock()
                signal.acquire()
        if not lead:
            signal.acquire()
            if not waiter.promoted:
                return self._result(waiter)
        self._lead()
        return self._result(waiter)

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            outcomes = self._commit([waiter.request for waiter in batch])
        except BaseException as exc:
            outcomes = [exc] * len(batch)
        for waiter, outcome in zip(batch, outcomes, strict=True):
            waiter.outcome = outcome
            waiter.promoted = False
            waiter.wake()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.promoted = True
                successor.wake()
            else:
                self._leading = False

    @staticmethod
    def _result(waiter: _Waiter[RequestT, ResultT]) -> ResultT:
        outcome = waiter.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]
