"""`ProjectionRunner`: keeps projections current, each on a worker thread of its own.

A worker per projection (`worker.py`) takes its lease, catches up, goes live and stops at a
failing event, which is recorded; the other projections go on. When a new version has caught
up it becomes the one queries read, in one transaction. `stop()` (SIGTERM, Ctrl-C under `run`)
ends every worker after its current batch.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Final

from eventvault.errors import (
    ProjectionDefinitionError,
)
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.state import PROJECTIONS
from eventvault.projections.status import ProjectionStatus, StatusReader
from eventvault.projections.worker import Worker
from eventvault.store.base import EventStore
from eventvault.store.database import Database, SQLDatabase, connect_database
from eventvault.store.subscription import POLL_INTERVAL

__all__ = ["DEFAULT_LEASE_SECONDS", "ProjectionRunner"]

logger = logging.getLogger("eventvault.projections")

DEFAULT_LEASE_SECONDS: Final = 3.0
"""How long a lease lasts unrenewed: a runner that dies is replaced within about this long."""


class ProjectionRunner:
    """Keeps projections current: one worker thread per projection.

    Args:
        store: the event store the projections read.
        projections: the projections (instances) to run; names must be unique.
        owner: this runner's id in leases; default `host:pid:random`.
        lease_seconds: how long a lease lasts without renewal; another runner takes over a
            projection within about this long after this one dies. A batch must take less.
        poll_interval: the most seconds a live worker waits before looking at the log anyway
            (appends by other processes on SQLite are seen this way).

    Raises:
        ProjectionDefinitionError: two projections share a name or a table, a projection has
            no name or handles nothing.
    """

    def __init__(
        self,
        store: EventStore,
        projections: Iterable[ProjectionBase],
        *,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.store = store
        self.projections = list(projections)
        check_projections(self.projections)
        if not 0.1 <= lease_seconds <= 3600:
            raise ProjectionDefinitionError(
                "runner", f"lease_seconds must be 0.1 to 3600, not {lease_seconds!r}"
            )
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_seconds = lease_seconds
        self.acquire_interval = lease_seconds / 6
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._databases: dict[str, Database] = {}
        self._workers: list[Worker] = []
        self._started = False

    @property
    def databases(self) -> dict[str, Database]:
        """The databases beside the store this runner opened, by URL (for `StatusReader`)."""
        return self._databases

    @property
    def stopping(self) -> bool:
        """Whether `stop()` was called."""
        return self._stop.is_set()

    def pause(self, seconds: float) -> None:
        """Wait up to `seconds`, or until `stop()`."""
        self._stop.wait(seconds)

    def progressed(self) -> None:
        """Wake whoever waits in `wait_until_caught_up`."""
        with self._progress:
            self._progress.notify_all()

    def database_for(self, projection: ProjectionBase) -> SQLDatabase:
        """Where a projection's read model and checkpoint live: the store, or its `database`."""
        url = projection.database if isinstance(projection, Projection) else None
        if url is None:
            return self.store
        database = self._databases.get(url)
        if database is None:
            database = self._databases[url] = connect_database(url)
        return database

    def start(self) -> None:
        """Start a worker thread per projection (once).

        Raises:
            MigrationRequiredError: a PostgreSQL store's projection tables need
                `eventvault migrate` (or `?auto_migrate=true`).
        """
        if self._started:
            return
        self._started = True
        for projection in self.projections:
            db = self.database_for(projection)
            db.use(PROJECTIONS)
            self._workers.append(Worker(self, projection, db))
        for worker in self._workers:
            worker.thread.start()

    def stop(self) -> None:
        """Ask every worker to stop after its current batch (from any thread or a signal
        handler); `join` waits for them."""
        self._stop.set()
        self.store.notifier.notify()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the workers to end, then close the databases beside the store."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            worker.thread.join(left)
        if all(not worker.thread.is_alive() for worker in self._workers):
            for database in self._databases.values():
                database.close()

    def run(self, *, handle_signals: bool = True) -> None:
        """Run until `stop()`, SIGTERM or Ctrl-C; every worker ends after its current batch.

        Args:
            handle_signals: on the main thread, make SIGTERM and SIGINT call `stop()` (the
                previous handlers come back afterwards).
        """
        previous: dict[signal.Signals, Callable[[int, FrameType | None], object] | int | None] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, frame: FrameType | None) -> None:
                self.stop()

            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, on_signal)
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()
            self.join()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def caught_up(self, position: int) -> bool:
        """Whether every worker has looked at the log up to `position` (its version the one
        queries read), failed or retired."""
        return all(
            worker.retired
            or worker.failure is not None
            or (
                worker.token is not None
                and worker.cursor >= position
                and worker.active == worker.version
            )
            for worker in self._workers
        )

    def wait_until_caught_up(
        self, timeout: float | None = None, position: int | None = None
    ) -> bool:
        """Block until every projection has applied the log up to a position (default: the
        head now), or stopped at a failure.

        Returns:
            True when caught up; False when the timeout passed first.
        """
        target = self.store.head_position() if position is None else position
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            while not self.caught_up(target):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._progress.wait(0.05 if left is None else min(left, 0.05))
        return True

    def catch_up(self, timeout: float | None = None) -> bool:
        """Start, apply the log up to its head now (or to a failure), then stop.

        Returns:
            True when every projection caught up (or stopped at a failure) in time.
        """
        self.start()
        try:
            return self.wait_until_caught_up(timeout)
        finally:
            self.stop()
            self.join()

    def status(self) -> list[ProjectionStatus]:
        """The status of every projection of this runner, as its database holds it (what
        `projection_status` gives any process)."""
        reader = StatusReader(self.store, self.projections, databases=self._databases)
        return reader.read()

    def workers(self) -> list[tuple[ProjectionBase, str, int]]:
        """Each projection with its worker's state and position, as this process sees them."""
        return [(w.projection, w.state, max(w.cursor, w.checkpoint)) for w in self._workers]


def check_projections(projections: Sequence[ProjectionBase]) -> None:
    """Refuse projections that cannot run side by side: not instances, no name, no handler,
    a name or a table claimed twice in one database.

    Raises:
        ProjectionDefinitionError: naming the projection at fault.
    """
    names: set[str] = set()
    tables: dict[tuple[str | None, str], str] = {}
    for projection in projections:
        if not isinstance(projection, ProjectionBase):
            raise ProjectionDefinitionError(
                projection, "give the runner projection instances (Balances()), not classes"
            )
        cls = type(projection)
        if getattr(projection, "name", None) is None:
            raise ProjectionDefinitionError(cls, "declare name, the projection's stable name")
        if not projection.handlers:
            raise ProjectionDefinitionError(cls, "it handles no event: mark methods @handles(...)")
        if projection.name in names:
            raise ProjectionDefinitionError(cls, f"two projections are named {projection.name!r}")
        names.add(projection.name)
        if isinstance(projection, Projection):
            for table in projection.tables:
                key = (projection.database, table)
                if key in tables:
                    raise ProjectionDefinitionError(
                        cls, f"table {table!r} is also {tables[key]!r}'s, in the same database"
                    )
                tables[key] = projection.name
