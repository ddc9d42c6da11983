"""How each projection is doing, read from the database by any process: state, checkpoint, lag
in events and seconds, events per second, owner, the error it stopped at.

`ProjectionStatus` is a plain value, ready for the CLI (`eventvault projections status`), the
server and metrics.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from eventvault.projections import state
from eventvault.projections.failures import Failure, read_failure
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.state import PROJECTIONS
from eventvault.store.base import EventStore
from eventvault.store.database import Database, SQLDatabase, connect_database

__all__ = ["ProjectionState", "ProjectionStatus", "StatusReader", "projection_status"]


class ProjectionState(enum.Enum):
    """What a projection is doing.

    - `RUNNING`: a runner holds it and is starting.
    - `CATCHING_UP`: a runner is applying a backlog, a full batch at a time.
    - `LIVE`: a runner has applied everything and applies new events as they come.
    - `STOPPED`: no runner holds it (none runs it, or the one that did died; another takes
      over once the lease expires).
    - `FAILED`: a handler raised; it stays at that event until `retry` or `skip`.
    """

    RUNNING = "running"
    CATCHING_UP = "catching up"
    LIVE = "live"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """One projection version's health.

    Attributes:
        name: the projection's name.
        version: its version (the one the code declares).
        active_version: the version queries read now (None: none has caught up yet).
        kind: `projection` (SQL read model, exactly once) or `sink` (at least once).
        location: where its checkpoint lives: the store's URL or the database's.
        state: what it is doing.
        checkpoint: the global position of the last event it applied (0: none).
        head: the store's head position when this was read.
        lag_events: positions between what it has looked at and the head.
        lag_seconds: how long ago the oldest event it still has to apply was recorded (0 when
            caught up).
        events_per_second: its runner's recent rate.
        eta_seconds: lag over rate, while it catches up; None when unknown.
        owner: the runner holding it (None: none).
        lease_expires_at: when that runner's lease runs out unless renewed.
        failure: the event it stopped at and the error, when failed.
        runner_error: the last error its runner met that is not an event's (a lost
            connection, a table that cannot be created), until it next commits.
    """

    name: str
    version: int
    active_version: int | None
    kind: str
    location: str
    state: ProjectionState
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    events_per_second: float
    eta_seconds: float | None
    owner: str | None
    lease_expires_at: datetime | None
    failure: Failure | None
    runner_error: str | None = None

    @property
    def last_error(self) -> str | None:
        """The error it stopped at, or else its runner's last error, `Type: message`; None
        when there is none."""
        return self.runner_error if self.failure is None else self.failure.error

    def to_dict(self) -> dict[str, object]:
        """The status as JSON-ready values (for `--json`, the server and metrics)."""
        failure = self.failure
        return {
            "name": self.name,
            "version": self.version,
            "active_version": self.active_version,
            "kind": self.kind,
            "location": self.location,
            "state": self.state.value,
            "checkpoint": self.checkpoint,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "owner": self.owner,
            "lease_expires_at": None
            if self.lease_expires_at is None
            else self.lease_expires_at.isoformat(),
            "runner_error": self.runner_error,
            "failure": None
            if failure is None
            else {
                "global_position": failure.global_position,
                "event_id": failure.event_id,
                "event_type": failure.event_type,
                "stream_name": failure.stream_name,
                "stream_position": failure.stream_position,
                "error": failure.error,
            },
        }


class StatusReader:
    """Reads the status of projections, keeping the databases beside the store open between
    reads (for a display that refreshes).

    Args:
        store: the event store.
        projections: the projections.
        databases: databases already open, by URL (a runner's), to read through.
    """

    def __init__(
        self,
        store: EventStore,
        projections: Iterable[ProjectionBase],
        *,
        databases: Mapping[str, Database] | None = None,
    ) -> None:
        self.store = store
        self.projections = list(projections)
        self._given = dict(databases or {})
        self._opened: dict[str, Database] = {}

    def _database(self, projection: ProjectionBase) -> SQLDatabase:
        url = projection.database if isinstance(projection, Projection) else None
        if url is None:
            return self.store
        database = self._given.get(url) or self._opened.get(url)
        if database is None:
            database = self._opened[url] = connect_database(url)
        return database

    def database_for(self, projection: ProjectionBase) -> SQLDatabase:
        """Where a projection's checkpoint lives, open, with the projection tables ready."""
        db = self._database(projection)
        db.use(PROJECTIONS)
        return db

    def read(self) -> list[ProjectionStatus]:
        """The status of every projection, in the order given.

        Raises:
            StorageError: a database cannot be read.
        """
        head = self.store.head_position()
        return [self.read_one(projection, head) for projection in self.projections]

    def read_one(self, projection: ProjectionBase, head: int | None = None) -> ProjectionStatus:
        """The status of one projection (see `read`)."""
        db = self.database_for(projection)
        name, version = projection.name, projection.version
        if head is None:
            head = self.store.head_position()
        lease = state.read_lease(db, name, version)
        checkpoint = state.read_checkpoint(db, name, version) or 0
        failure = read_failure(db, name, version)
        active = state.read_active_version(db, name)
        now = state.database_now(db)
        held = lease is not None and bool(lease.owner) and lease.expires_at > now
        if failure is not None:
            current = ProjectionState.FAILED
        elif held and lease is not None:
            current = ProjectionState(lease.state if lease.state != "failed" else "running")
        else:
            current = ProjectionState.STOPPED
        seen = max(checkpoint, lease.seen_position if held and lease is not None else 0)
        lag = max(head - seen, 0)
        lag_seconds = 0.0
        if lag:
            oldest = next(
                self.store.read_all(after=seen, limit=1, event_types=projection.event_types),
                None,
            )
            if oldest is not None:
                lag_seconds = max(time.time() - oldest.recorded_at.timestamp(), 0.0)
        rate = lease.events_per_second if held and lease is not None else 0.0
        return ProjectionStatus(
            name=name,
            version=version,
            active_version=active,
            kind="projection" if isinstance(projection, Projection) else "sink",
            location=db.url,
            state=current,
            checkpoint=checkpoint,
            head=head,
            lag_events=lag,
            lag_seconds=lag_seconds,
            events_per_second=rate,
            eta_seconds=lag / rate if lag and rate > 0 else None,
            owner=lease.owner if held and lease is not None else None,
            lease_expires_at=datetime.fromtimestamp(lease.expires_at / 1e6, UTC)
            if held and lease is not None
            else None,
            failure=failure,
            runner_error=lease.error or None if held and lease is not None else None,
        )

    def close(self) -> None:
        """Close the databases this reader opened."""
        for database in self._opened.values():
            database.close()
        self._opened.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def projection_status(
    store: EventStore, projections: Iterable[ProjectionBase]
) -> list[ProjectionStatus]:
    """The status of projections, read from their databases (any process may ask).

    Args:
        store: the event store they read.
        projections: the projections.

    Returns:
        One `ProjectionStatus` per projection, in the order given.

    Raises:
        StorageError: a database cannot be read.
        MigrationRequiredError: a PostgreSQL store's projection tables were never created.
    """
    with StatusReader(store, projections) as reader:
        return reader.read()
