"""Transactions beside the events on PostgreSQL: component rows and appends in one transaction.

A transaction runs on a connection of the store's pool, `READ COMMITTED`. Its appends follow
the ordinary technique (stream locks in key order, then positions reserved under the position
lock), with one difference: the transaction may have written component rows before it appends,
so its id may be older than those of transactions that reserved positions since. Its events are
stored with a horizon (`reserve_positions_in_transaction`) instead of its own id, so readers
deliver them only once every transaction holding a lower position has finished
(docs/adr/0004-postgres-global-order.md, "Transactions beside the events").
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors

from eventvault.errors import StorageError
from eventvault.serialization import now_micros, uuid_from_bytes
from eventvault.store._append import PendingAppend, StreamHead, plan_batch
from eventvault.store.postgres._batch import Row, event_columns, rollback_quietly, stream_columns
from eventvault.store.postgres._config import quote_schema
from eventvault.store.postgres._connections import Connections
from eventvault.store.postgres._errors import is_connection_error, translate
from eventvault.store.postgres._notifications import Notifications
from eventvault.store.postgres._sql import Statements
from eventvault.store.seam import Dialect, Transaction, check_finished, run_work, with_schema
from eventvault.types import AppendResult

__all__ = ["PostgresTransaction", "run_transaction"]

logger = logging.getLogger("eventvault.postgres")

MAX_TRANSACTION_ATTEMPTS: Final = 20
"""Runs of one transaction's work that collide with other writers before giving up."""


def _transient(exc: BaseException) -> bool:
    """Whether a statement failed only because of a concurrent transaction."""
    return isinstance(exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure)


class PostgresTransaction(Transaction):
    """A transaction of the PostgreSQL engine, on one connection of the pool."""

    dialect: Dialect = "postgresql"

    def __init__(
        self,
        conn: psycopg.Connection[Row],
        sql: Statements,
        schema: str,
        max_event_bytes: int,
        location: str,
    ) -> None:
        super().__init__(max_event_bytes)
        self._conn = conn
        self._sql = sql
        self._schema = quote_schema(schema)
        self._location = location
        self.heads: dict[str, StreamHead] = {}
        self.last_position: int | None = None
        # Set when the transaction must be run again: it collided with another writer.
        self.collided = False

    def _run(self, statement: str, params: Sequence[object] | Sequence[Sequence[object]]) -> Any:
        try:
            return self._conn.execute(statement, params)
        except psycopg.Error as exc:
            self.collided = self.collided or _transient(exc)
            raise translate(exc, self._location) from exc

    def _fetch(self, statement: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return list(self._run(with_schema(statement, self._schema), params).fetchall())

    def _execute(self, statement: str, params: Sequence[object]) -> int:
        return int(self._run(with_schema(statement, self._schema), params).rowcount)

    def _execute_many(self, statement: str, params: Sequence[Sequence[object]]) -> int:
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(with_schema(statement, self._schema), params)
                return max(cursor.rowcount, 0)
        except psycopg.Error as exc:
            self.collided = self.collided or _transient(exc)
            raise translate(exc, self._location) from exc

    def _stream_version(self, stream_name: str) -> int | None:
        rows = self._run(self._sql.stream_version, (stream_name,)).fetchall()
        return int(rows[0][0]) if rows else None

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        sql = self._sql
        names = sorted({append.stream_name for append in appends})
        given = [i for append in appends for i in append.given_ids]
        # The stream locks first, in key order, as every writer takes them: the heads read
        # under them are current until this transaction ends.
        self._run(sql.lock_streams, (names,))
        heads = {
            str(r[0]): (int(r[1]), bytes(r[2]))
            for r in self._run(sql.stream_heads, (names,)).fetchall()
        }
        found: dict[uuid.UUID, tuple[str, int, int]] = {}
        if given:
            for r in self._run(sql.find_ids, (given,)).fetchall():
                found[uuid_from_bytes(bytes(r[0]))] = (str(r[1]), int(r[2]), int(r[3]))
        # Decided before positions are reserved: a refused append reserves nothing.
        plan = plan_batch([appends], heads, found, 1, now_micros())
        outcome = plan.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        if not plan.rows:
            return outcome  # a retry of appends already stored
        row = self._run(sql.reserve_in_transaction, (len(plan.rows),)).fetchone()
        first, horizon = int(row[0]), str(row[1])
        rows = [r._replace(global_position=r.global_position + first - 1) for r in plan.rows]
        new_heads = {
            name: head._replace(global_position=head.global_position + first - 1)
            for name, head in plan.heads.items()
        }
        try:
            self._conn.execute(sql.insert_events_in_transaction, [horizon, *event_columns(rows)])
            self._conn.execute(sql.upsert_streams, stream_columns(new_heads))
        except pg_errors.UniqueViolation as exc:
            # An event id committed elsewhere after this transaction looked: run it again.
            self.collided = True
            raise translate(exc, self._location) from exc
        except psycopg.Error as exc:
            self.collided = _transient(exc)
            raise translate(exc, self._location) from exc
        self.heads.update(new_heads)
        self.last_position = rows[-1].global_position
        shift = first - 1
        return [AppendResult(r.stream_position, r.global_position + shift) for r in outcome]


def run_transaction(
    work: Callable[[Transaction], object],
    *,
    store_id: int,
    connections: Connections,
    sql: Statements,
    schema: str,
    max_event_bytes: int,
    notifications: Notifications | None,
    forget_heads: Callable[[list[str]], None],
    transaction_class: type[PostgresTransaction] = PostgresTransaction,
) -> object:
    """Run a transaction's work on a pooled connection and commit it; run it again when it
    collided with another writer (a deadlock, a serialization failure, an event id stored
    concurrently), up to `MAX_TRANSACTION_ATTEMPTS` times.

    A database beside the store (`store/postgres/database.py`) runs its transactions here too,
    with no `notifications` and a `transaction_class` that refuses appends.

    Returns:
        What the work returned.

    Raises:
        StorageError: the transaction collided too often, or the connection failed during the
            commit (then it may or may not be stored).
        Whatever the work raised, after a rollback.
    """
    location = connections.location
    last: BaseException | None = None
    for _ in range(MAX_TRANSACTION_ATTEMPTS):
        with connections.connection() as conn:
            tx = transaction_class(conn, sql, schema, max_event_bytes, location)
            committing = False
            try:
                conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                result = run_work(store_id, work, tx)
                check_finished(tx)
                if tx.last_position is not None and notifications is not None:
                    # Commits with the events: subscribers elsewhere wake when they can read.
                    conn.execute(sql.notify, (notifications.channel, str(tx.last_position)))
                committing = True
                conn.execute("COMMIT")
            except BaseException as exc:
                rollback_quietly(conn)
                cause = exc.__cause__ if exc.__cause__ is not None else exc
                if committing and is_connection_error(cause):
                    raise StorageError(
                        f"PostgreSQL at {location!r}: the connection failed during the commit "
                        "of a transaction, which may or may not be stored"
                    ) from exc
                if (
                    tx.collided
                    or _transient(cause)
                    or (
                        not committing
                        and isinstance(cause, psycopg.Error)
                        and is_connection_error(cause)
                    )
                ):
                    last = exc
                    logger.info("transaction on %s collided (%s); running it again", location, exc)
                    continue
                if isinstance(exc, psycopg.Error):
                    raise translate(exc, location) from exc
                raise
        if tx.heads and notifications is not None:
            # The writer's remembered heads of these streams are stale now.
            forget_heads(list(tx.heads))
            notifications.notifier.notify()
        return result
    raise StorageError(
        f"PostgreSQL at {location!r}: a transaction collided with concurrent writers "
        f"{MAX_TRANSACTION_ATTEMPTS} times in a row; nothing was stored (last: {last})"
    )
