"""Run work in a forked child with a deadline, and a thread that appends until told to stop."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable

from eventvault import EventStore, NewEvent, StreamState
from eventvault.types import AppendResult

CHILD_DEADLINE = 30
"""Seconds a forked child may take; one that hangs is killed by SIGALRM."""


def in_forked_child(work: Callable[[], str]) -> str:
    """Fork, run `work` in the child, and return what it returned (a short text).

    The child is killed by SIGALRM if it takes more than `CHILD_DEADLINE` seconds, so a hang
    fails the test instead of stalling it; an error in the child comes back as its traceback.

    Raises:
        AssertionError: the child hung, crashed or raised.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(reader)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(CHILD_DEADLINE)
        try:
            text = f"ok {work()}"
        except BaseException:
            text = f"error {traceback.format_exc()}"
        os.write(writer, text.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        text = incoming.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise AssertionError(
            f"the child was killed by signal {os.WTERMSIG(status)}: it hung (no answer in "
            f"{CHILD_DEADLINE} s) or crashed"
        )
    outcome, _, detail = text.partition(" ")
    if outcome != "ok":
        raise AssertionError(f"the child failed:\n{detail}")
    return detail


class Appender:
    """A thread that appends one event at a time to `stream` until `stop()`."""

    def __init__(self, store: EventStore, stream: str) -> None:
        self.store = store
        self.stream = stream
        self.acknowledged: list[AppendResult] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                result = self.store.append_to_stream(
                    self.stream,
                    [NewEvent("Ticked", {"n": len(self.acknowledged)})],
                    expected_version=StreamState.ANY,
                )
                self.acknowledged.append(result)
        except BaseException as exc:
            self.error = exc

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and self.error is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acknowledged)} appends in {timeout} s")
            time.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise AssertionError(f"the appending thread failed: {self.error!r}")
