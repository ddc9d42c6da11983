"""The worker that keeps one projection current: lease, catch up, live; stop at a failure.

`ProjectionRunner` starts one per projection, on a thread of its own. The worker takes the
projection's lease (one runner applies its events at a time, across processes and machines),
catches up from its checkpoint in batches, then waits for the store's wake-up (`store.notifier`:
in-process at once, NOTIFY on PostgreSQL, a short poll across SQLite processes) and applies new
events as they commit. Each batch is one transaction that checks the lease's fencing token,
moves the checkpoint by compare-and-set and writes the read model: all or nothing
(docs/adr/0011-projection-ownership-and-checkpoints.md).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from eventvault.errors import EventVaultError, LeaseLostError, StoreClosedError
from eventvault.projections import failures, state
from eventvault.projections.failures import Failure
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.sql import ReadModel
from eventvault.store.database import SQLDatabase
from eventvault.store.seam import Transaction
from eventvault.types import RecordedEvent

if TYPE_CHECKING:
    from eventvault.projections.runner import ProjectionRunner

__all__ = ["Worker"]

logger = logging.getLogger("eventvault.projections")

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


class Worker:
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
            return position, failures.failure_in(tx, self.name, self.version)

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
        if failures.read_failure(self.db, self.name, self.version) is None:
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
                failures.record_failure(tx, self.name, self.version, *failure)

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
        self.failure = failures.read_failure(self.db, self.name, self.version)
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
