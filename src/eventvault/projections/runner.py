"""`ProjectionRunner`: keeps projections current, each on a thread of its own.

For each projection a worker takes the projection's lease (one runner applies its events at a
time, across processes and machines), catches up from its checkpoint in batches, then waits for
the store's wake-up (`store.notifier`: in-process at once, NOTIFY on PostgreSQL, a short poll
across SQLite processes) and applies new events as they commit. Each batch is one transaction
that checks the lease's fencing token, moves the checkpoint by compare-and-set and writes the
read model: all or nothing. A handler that raises stops its projection at that event, recorded;
the other projections go on. When a new version has caught up it becomes the one queries read,
in one transaction. `stop()` (SIGTERM, Ctrl-C under `run`) ends every worker after its current
batch.
"""

from __future__ import annotations

import collections
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
    EventVaultError,
    LeaseLostError,
    ProjectionDefinitionError,
    StoreClosedError,
)
from eventvault.projections import state
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.sql import ReadModel
from eventvault.projections.state import PROJECTIONS, Failure
from eventvault.projections.status import ProjectionStatus, StatusReader
from eventvault.store.base import EventStore
from eventvault.store.database import Database, SQLDatabase, connect_database
from eventvault.store.seam import Transaction
from eventvault.store.subscription import POLL_INTERVAL
from eventvault.types import RecordedEvent

__all__ = ["DEFAULT_LEASE_SECONDS", "ProjectionRunner"]

logger = logging.getLogger("eventvault.projections")

DEFAULT_LEASE_SECONDS: Final = 3.0
"""How long a lease lasts unrenewed: a runner that dies is replaced within about this long."""
RETRY_AFTER: Final = 1.0
"""Seconds a worker waits after a storage error (a lost connection, a locked file)."""
RATE_WINDOW: Final = 5.0
"""Seconds over which events per second are measured."""
SETTLED_WRITE_DISTANCE: Final = 10_000
"""How far the log may run past a filtered projection's checkpoint, through events it does not
handle, before the checkpoint is moved there on its own."""


class _Moved(Exception):
    """The checkpoint is not where this worker left it (a reset, a skip): reload it."""


class _Retired(Exception):
    """A newer version of the projection is active: this one has nothing more to do."""


class _Imprecise(Exception):
    """A batch failed after statements were queued: the error may belong to an earlier event
    than the one being handled. The batch is applied again, statements run at once."""


class _HandlerFailed(Exception):
    """A handler raised at the event at `index` of a batch."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


class _Rate:
    """Events per second over the last `RATE_WINDOW` seconds."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, count: int) -> None:
        now = time.monotonic()
        self._samples.append((now, count))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()

    def per_second(self) -> float:
        now = time.monotonic()
        while self._samples and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        if not self._samples:
            return 0.0
        span = max(now - self._samples[0][0], 1.0)
        return sum(count for _, count in self._samples) / span


class _Worker:
    """One projection's loop: lease, catch up, live; stops at a failing event."""

    def __init__(
        self, runner: ProjectionRunner, projection: ProjectionBase, db: SQLDatabase
    ) -> None:
        self.runner = runner
        self.projection = projection
        self.db = db
        self.name = projection.name
        self.version = projection.version
        self.token: int | None = None
        self.prepared = False
        self.checkpoint = 0
        self.cursor = 0
        self.state = "stopped"
        self.failure: Failure | None = None
        self.retired = False
        self.last_error: str | None = None
        self.applied = 0
        self.rate = _Rate()
        self._renewed = 0.0
        self.active: int | None = None
        self._seen = 0
        self._tables = projection.table_names() if isinstance(projection, Projection) else {}
        self.thread = threading.Thread(
            target=self._main, name=f"projection-{projection.describe()}", daemon=True
        )

    # -- the loop ----------------------------------------------------------------------------

    def _main(self) -> None:
        runner = self.runner
        while not runner.stopping:
            try:
                if self.token is None and not self._acquire():
                    runner.pause(runner.acquire_interval)
                    continue
                if not self.prepared:
                    self._prepare()
                if self.failure is not None:
                    self._while_failed()
                    continue
                if not self._step():
                    self._idle()
            except _Moved:
                logger.info(
                    "%s: checkpoint moved (a reset or a skip); reloading",
                    self.projection.describe(),
                )
                self._reload()
            except LeaseLostError:
                logger.warning("%s: lease lost to another runner", self.projection.describe())
                self.token = None
                self.state = "stopped"
            except _Retired:
                logger.info(
                    "%s: a newer version is active; this one stops", self.projection.describe()
                )
                self.retired = True
                self.state = "stopped"
                self.token = None
                break
            except StoreClosedError:
                break
            except EventVaultError as exc:
                # Not an event's fault (a lost connection, a locked file, a table that cannot
                # be created): report it where status shows it, and try again.
                self._met(exc)
                runner.pause(RETRY_AFTER)
            finally:
                runner.progressed()
        self._release()
        runner.progressed()

    def _met(self, exc: EventVaultError) -> None:
        """Note an error that is not an event's, log it once, and report it with the lease."""
        error = f"{type(exc).__name__}: {exc}"
        if error != self.last_error:
            logger.error("%s: %s; retrying", self.projection.describe(), error)
        self.last_error = error
        if self.token is not None:
            try:
                self._renew(self.state)
                self._reload()
            except EventVaultError as again:
                logger.debug("%s: cannot report it (%s)", self.projection.describe(), again)

    def _acquire(self) -> bool:
        def work(tx: Transaction) -> int | None:
            token = state.try_acquire(
                tx, self.name, self.version, self.runner.owner, self.runner.lease_seconds
            )
            if token is None:
                return None
            active = state.active_version(tx, self.name)
            if active is not None and active > self.version:
                raise _Retired
            return token

        try:
            taken = self.db.run_transaction(work)
        except _Retired:
            raise
        except EventVaultError as exc:
            if isinstance(exc, StoreClosedError):
                raise
            error = f"{type(exc).__name__}: {exc}"
            if error != self.last_error:
                logger.warning("%s: lease not taken (%s)", self.projection.describe(), error)
            self.last_error = error
            return False
        if taken is None:
            return False
        self.token = taken
        self.prepared = False
        self.state = "running"
        self._renewed = time.monotonic()
        self.active = None
        logger.info("%s: lease taken (token %d)", self.projection.describe(), self.token)
        return True

    def _prepare(self) -> None:
        """Create this version's tables and checkpoint if new, and read where it stands."""

        def work(tx: Transaction) -> tuple[int, Failure | None]:
            self._fence(tx, "running")
            position = state.prepare_version(tx, self.projection)
            return position, state.failure_in(tx, self.name, self.version)

        self.checkpoint, self.failure = self.db.run_transaction(work)
        self.cursor = self.checkpoint
        self.prepared = True
        self.last_error = None
        self.state = "failed" if self.failure is not None else "running"
        logger.info("%s: at position %d", self.projection.describe(), self.checkpoint)

    def _fence(self, tx: Transaction, state_name: str) -> None:
        assert self.token is not None
        state.fence(
            tx,
            self.name,
            self.version,
            self.token,
            self.runner.lease_seconds,
            state=state_name,
            rate=self.rate.per_second(),
            seen=max(self.cursor, self.checkpoint),
            error=self.last_error,
        )

    def _renew(self, state_name: str) -> None:
        self.db.run_transaction(lambda tx: self._fence(tx, state_name))
        self._renewed = time.monotonic()
        self.state = state_name

    def _renew_due(self) -> bool:
        return time.monotonic() - self._renewed >= self.runner.lease_seconds / 3

    def _reload(self) -> None:
        if self.token is None:
            return
        with_checkpoint = state.read_checkpoint(self.db, self.name, self.version)
        self.checkpoint = self.cursor = with_checkpoint or 0

    def _release(self) -> None:
        token = self.token
        self.token = None
        self.state = "stopped"
        if token is None or self.retired:
            return
        try:
            self.db.run_transaction(lambda tx: state.release(tx, self.name, self.version, token))
        except EventVaultError as exc:
            logger.debug("%s: release failed (%s)", self.projection.describe(), exc)

    def _while_failed(self) -> None:
        """Hold the lease while failed; resume when a retry or skip clears the failure."""
        self.state = "failed"
        if self._renew_due():
            self._renew("failed")
        if state.read_failure(self.db, self.name, self.version) is None:
            logger.info("%s: failure cleared; resuming", self.projection.describe())
            self.failure = None
            self._reload()
            self.state = "running"
            return
        self.runner.pause(min(self.runner.lease_seconds / 3, 0.5))

    def _idle(self) -> None:
        """Wait for the store's wake-up (or the poll across processes), renewing the lease."""
        if self._renew_due():
            self._renew("live")
        notifier = self.runner.store.notifier
        notifier.wait(self._seen, self.runner.poll_interval)

    # -- applying ----------------------------------------------------------------------------

    def _step(self) -> bool:
        """Read the next batch and apply it; False when there was nothing new (live)."""
        runner = self.runner
        store = runner.store
        projection = self.projection
        self._seen = store.notifier.generation
        # The head before the read: a short page means every event up to it was looked at,
        # also those the filters passed over.
        settled = store.head_position()
        size = projection.batch_size
        page = list(
            store.read_all(
                after=self.cursor,
                limit=size,
                event_types=projection.event_types,
                stream_prefix=projection.stream_prefix,
            )
        )
        if page:
            last = page[-1].global_position
            events = [e for e in page if projection.wants(e.stream_name)]
            if len(page) < size:
                last = max(last, settled)
            self._commit(events, last, "catching up" if len(page) == size else "live")
            if self.failure is None:  # else it stays before the failed event
                self.cursor = last
            return True
        # Caught up: everything up to `settled` (read before the page) was looked at.
        self.cursor = max(self.cursor, settled)
        if self.cursor - self.checkpoint >= SETTLED_WRITE_DISTANCE:
            self._commit([], self.cursor, "live")
        if self.active != self.version:
            self._take_over_queries()
        if self.state != "live":
            self._renew("live")
        return False

    def _take_over_queries(self) -> None:
        """Once caught up, make this version the one queries read (if none newer is)."""

        def work(tx: Transaction) -> int | None:
            self._fence(tx, "live")
            active = state.active_version(tx, self.name)
            if active is not None and active > self.version:
                raise _Retired
            if active != self.version:
                retired = state.switch_to(tx, self.projection)
                logger.info(
                    "%s: caught up; queries read it now (retired: %s)",
                    self.projection.describe(),
                    retired or "none",
                )
            return self.version

        self.active = self.db.run_transaction(work)

    def _commit(self, events: Sequence[RecordedEvent], position: int, state_name: str) -> None:
        """Apply events and move the checkpoint to `position`, in one fenced transaction; on a
        handler's error, commit the events before it and record the failure instead."""
        if isinstance(self.projection, Projection):
            try:
                try:
                    self._transaction(events, position, state_name)
                except _Imprecise:
                    self._transaction(events, position, state_name, immediate=True)
            except _HandlerFailed as failed:
                self._fail(events, failed)
                return
        else:
            delivered, error = self._deliver(events)
            if error is not None:
                self._fail(events, _HandlerFailed(delivered, error))
                return
            self._transaction([], position, state_name)
        self.applied += len(events)
        self.rate.add(len(events))
        self.state = state_name
        self.last_error = None
        self._renewed = time.monotonic()

    def _transaction(
        self,
        events: Sequence[RecordedEvent],
        position: int,
        state_name: str,
        failure: tuple[RecordedEvent, Exception] | None = None,
        *,
        immediate: bool = False,
    ) -> None:
        expected = self.checkpoint

        def work(tx: Transaction) -> None:
            self._fence(tx, "failed" if failure is not None else state_name)
            active = state.active_version(tx, self.name)
            if active is not None and active > self.version:
                raise _Retired
            if not state.advance(tx, self.name, self.version, expected, position):
                raise _Moved
            if events:
                read_model = ReadModel(tx, self._tables, immediate=immediate)
                for index, event in enumerate(events):
                    try:
                        self._apply(read_model, event)
                    except Exception as exc:
                        if read_model.queued_any:
                            raise _Imprecise from exc
                        raise _HandlerFailed(index, exc) from exc
                try:
                    read_model.flush()
                except Exception as exc:
                    raise _Imprecise from exc
            if failure is not None:
                state.record_failure(tx, self.name, self.version, *failure)

        self.db.run_transaction(work)
        self.checkpoint = position

    def _fail(self, events: Sequence[RecordedEvent], failed: _HandlerFailed) -> None:
        """Commit the events before the failing one with the failure, and stop there."""
        while True:
            index = failed.index
            event = events[index]
            before = events[index - 1].global_position if index else self.checkpoint
            applied = events[:index] if isinstance(self.projection, Projection) else []
            try:
                self._transaction(applied, before, "failed", (event, failed.error), immediate=True)
            except _HandlerFailed as again:
                # A handler that failed later now fails earlier (it is not deterministic):
                # stop at the earlier event.
                failed = again
                continue
            break
        self.applied += index
        self.rate.add(index)
        self.cursor = before
        self.failure = state.read_failure(self.db, self.name, self.version)
        self.state = "failed"
        logger.error(
            "%s: stopped at %s@%d (global position %d): %s",
            self.projection.describe(),
            event.stream_name,
            event.stream_position,
            event.global_position,
            failed.error,
        )

    def _decode(self, event: RecordedEvent) -> tuple[Callable[..., None], object | None]:
        handler = self.projection.handlers[event.event_type]
        if handler.event_class is None:
            return handler.method, None
        registry = self.projection.registry
        assert registry is not None
        return handler.method, registry.decode(event)

    def _apply(self, read_model: ReadModel, event: RecordedEvent) -> None:
        method, decoded = self._decode(event)
        if decoded is None:
            method(self.projection, read_model, event)
        else:
            method(self.projection, read_model, decoded, event)

    def _deliver(self, events: Sequence[RecordedEvent]) -> tuple[int, Exception | None]:
        """Hand events to a sink's handlers, outside any transaction; stop at the first error.

        Returns:
            How many were handed over, and the error of the next one (None: all were).
        """
        for index, event in enumerate(events):
            try:
                method, decoded = self._decode(event)
                if decoded is None:
                    method(self.projection, event)
                else:
                    method(self.projection, decoded, event)
            except Exception as exc:
                return index, exc
        return len(events), None


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
        self._workers: list[_Worker] = []
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
            self._workers.append(_Worker(self, projection, db))
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
