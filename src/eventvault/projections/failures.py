"""Failures of projections, and what people do about them: retry, skip, reset.

A handler that raises stops its projection at that event: the runner records the event and the
error in `projection_failures` (and the history) in the transaction that commits the events
before it. A retry clears the record (the runner applies the event again); a skip moves the
checkpoint past the event; a reset empties the version's tables. Each is recorded in the
projection's history with who did it.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Final

from eventvault.errors import ProjectionStateError
from eventvault.projections.projection import Projection, ProjectionBase
from eventvault.projections.sql import physical_table
from eventvault.projections.state import (
    PROJECTIONS,
    add_history,
    checkpoint_in,
    db_now,
    fetch_sql,
    query,
    run_sql,
)
from eventvault.store.database import SQLDatabase
from eventvault.store.seam import SQLRow, Transaction
from eventvault.types import RecordedEvent

__all__ = [
    "Failure",
    "failure_in",
    "read_failure",
    "record_failure",
    "reset",
    "retry",
    "skip",
]


@dataclass(frozen=True, slots=True)
class Failure:
    """The event a projection stopped at, and why.

    Attributes:
        global_position: the event's global position.
        event_id: its id.
        event_type: its type.
        stream_name: its stream.
        stream_position: its position there.
        error: the exception, as `Type: message`.
        details: the traceback.
        failed_at: when, in microseconds since the epoch.
    """

    global_position: int
    event_id: str
    event_type: str
    stream_name: str
    stream_position: int
    error: str
    details: str
    failed_at: int


def record_failure(
    tx: Transaction, name: str, version: int, event: RecordedEvent, error: BaseException
) -> None:
    """Record that a projection's handler raised at an event: it stops there."""
    text = f"{type(error).__name__}: {error}"
    details = "".join(traceback.format_exception(error))
    run_sql(
        tx,
        "INSERT INTO {schema}.projection_failures (projection, version, global_position, "
        "event_id, event_type, stream_name, stream_position, error, details, failed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            name,
            version,
            event.global_position,
            str(event.event_id),
            event.event_type,
            event.stream_name,
            event.stream_position,
            text,
            details,
            db_now(tx),
        ),
    )
    add_history(tx, name, version, "failed", event.global_position, str(event.event_id), text)


_FAILURE_COLUMNS: Final = (
    "global_position, event_id, event_type, stream_name, stream_position, error, details, failed_at"
)


def _failure(row: SQLRow) -> Failure:
    position, event_id, event_type, stream, stream_position, error, details, failed_at = row
    return Failure(
        int(position),
        str(event_id),
        str(event_type),
        str(stream),
        int(stream_position),
        str(error),
        str(details),
        int(failed_at),
    )


def failure_in(tx: Transaction, name: str, version: int) -> Failure | None:
    """The failure a projection version stopped at, as a transaction sees it."""
    rows = fetch_sql(
        tx,
        f"SELECT {_FAILURE_COLUMNS} FROM {{schema}}.projection_failures "
        "WHERE projection = ? AND version = ?",
        (name, version),
    )
    return _failure(rows[0]) if rows else None


def read_failure(db: SQLDatabase, name: str, version: int) -> Failure | None:
    """The failure a projection version stopped at, as committed."""
    rows = query(
        db,
        f"SELECT {_FAILURE_COLUMNS} FROM {{schema}}.projection_failures "
        "WHERE projection = ? AND version = ?",
        (name, version),
    )
    return _failure(rows[0]) if rows else None


# -- operations for people: retry, skip, reset ---------------------------------------------


def retry(db: SQLDatabase, projection: ProjectionBase, *, actor: str) -> Failure:
    """Let a failed projection apply the event it stopped at again (after a fix).

    Returns:
        The failure that was cleared.

    Raises:
        ProjectionStateError: the projection has not failed.
    """

    def work(tx: Transaction) -> Failure:
        failure = failure_in(tx, projection.name, projection.version)
        if failure is None:
            raise ProjectionStateError(projection.describe(), "it has not failed: nothing to retry")
        run_sql(
            tx,
            "DELETE FROM {schema}.projection_failures WHERE projection = ? AND version = ?",
            (projection.name, projection.version),
        )
        add_history(
            tx,
            projection.name,
            projection.version,
            "retry",
            failure.global_position,
            failure.event_id,
            f"by {actor}; it had failed with {failure.error}",
        )
        return failure

    db.use(PROJECTIONS)
    return db.run_transaction(work)


def skip(
    db: SQLDatabase, projection: ProjectionBase, *, actor: str, position: int | None = None
) -> Failure:
    """Pass over the event a failed projection stopped at, recording the skip.

    Args:
        db: where the projection's checkpoint lives.
        projection: the projection.
        actor: who skips it, for the history.
        position: the global position of the event to skip; when given, it must be the one
            the projection failed at (a guard against skipping another event than meant).

    Returns:
        The failure skipped.

    Raises:
        ProjectionStateError: the projection has not failed, or failed at another position.
    """

    def work(tx: Transaction) -> Failure:
        name, version = projection.name, projection.version
        failure = failure_in(tx, name, version)
        if failure is None:
            raise ProjectionStateError(projection.describe(), "it has not failed: nothing to skip")
        if position is not None and position != failure.global_position:
            raise ProjectionStateError(
                projection.describe(),
                f"it failed at position {failure.global_position}, not {position}",
            )
        run_sql(
            tx,
            "UPDATE {schema}.projection_checkpoints SET position = ?, updated_at = ? "
            "WHERE projection = ? AND version = ? AND position < ?",
            (failure.global_position, db_now(tx), name, version, failure.global_position),
        )
        run_sql(
            tx,
            "DELETE FROM {schema}.projection_failures WHERE projection = ? AND version = ?",
            (name, version),
        )
        add_history(
            tx,
            name,
            version,
            "skip",
            failure.global_position,
            failure.event_id,
            f"by {actor}: {failure.event_type} {failure.stream_name}@{failure.stream_position} "
            f"passed over; it had failed with {failure.error}",
        )
        return failure

    db.use(PROJECTIONS)
    return db.run_transaction(work)


def reset(db: SQLDatabase, projection: ProjectionBase, *, actor: str) -> int:
    """Empty a projection version's tables and move its checkpoint back to 0 (it rebuilds from
    the start of the log). Queries of an active version see empty tables until it catches up.

    Returns:
        The checkpoint it had.
    """

    def work(tx: Transaction) -> int:
        name, version = projection.name, projection.version
        before = checkpoint_in(tx, name, version)
        if before is None:
            return 0
        if isinstance(projection, Projection):
            for table in projection.tables:
                tx.execute(f"DELETE FROM {{schema}}.{physical_table(table, version)}")
        run_sql(
            tx,
            "UPDATE {schema}.projection_checkpoints SET position = 0, updated_at = ? "
            "WHERE projection = ? AND version = ?",
            (db_now(tx), name, version),
        )
        run_sql(
            tx,
            "DELETE FROM {schema}.projection_failures WHERE projection = ? AND version = ?",
            (name, version),
        )
        add_history(
            tx, name, version, "reset", before, None, f"by {actor}; checkpoint was {before}"
        )
        return before

    db.use(PROJECTIONS)
    return db.run_transaction(work)
