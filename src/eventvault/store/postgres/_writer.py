"""The write side of the PostgreSQL engine: group commit, the fast and careful paths, import.

Appends of one process share a transaction (group commit, see `_groupcommit`). Each
transaction first locks its streams, then calls `reserve_positions(n)`, which assigns its
transaction id and its block of global positions together under a short advisory lock, so a
larger transaction id always holds larger positions; commits (and their WAL flushes) of many
processes then run in parallel (docs/adr/0004-postgres-global-order.md).

An append batch takes the fast path when the writer remembers the head of every stream it
touches: one statement, `append_events`, which also notifies subscribers when asked to, in one
round trip; a stale head makes the insert collide with the stream-position constraint. Otherwise
(or after such a collision) the careful path decides it in two round trips (multi-statement
queries): lock the streams, reserve, read the heads and look up given event ids; then insert,
update the streams, commit, notify. Both decide with `plan_batch`, the append rules every engine
shares.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Final, cast

import psycopg

from eventvault.errors import (
    EventVaultError,
    ImportFileError,
    InvalidEventError,
    NotEmptyError,
    StorageError,
    StoreUnavailableError,
)
from eventvault.serialization import now_micros, uuid_from_bytes
from eventvault.store._append import (
    BatchPlan,
    Outcome,
    PendingAppend,
    StoredRow,
    StreamHead,
    plan_batch,
    plan_on_remembered_heads,
)
from eventvault.store._groupcommit import GroupCommitter
from eventvault.store.postgres._arrays import append_arguments
from eventvault.store.postgres._batch import (
    Row,
    event_columns,
    release_quietly,
    rollback_quietly,
    stream_columns,
)
from eventvault.store.postgres._connections import Connections
from eventvault.store.postgres._errors import (
    is_connection_error,
    is_retryable_conflict,
    is_unavailable,
    translate,
    unavailable,
)
from eventvault.store.postgres._notifications import Notifications
from eventvault.store.postgres._sql import COPY_TYPES, Statements
from eventvault.types import AppendResult

__all__ = ["Writer"]

logger = logging.getLogger("eventvault.postgres")

_MAYBE_STORED: Final = (
    " during the commit of an append, which may or may not be stored; retry it with the same "
    "event ids to find out"
)
MAX_WRITE_ATTEMPTS: Final = 20
"""Tries of one append transaction that collides with concurrent writers before giving up."""
MAX_REMEMBERED_HEADS: Final = 50_000
"""Stream heads remembered for the fast path; past that, the memory starts over."""
MAX_APPEND_BYTES: Final = 200 * 1024 * 1024
"""The most data and metadata one append (one call) may carry on PostgreSQL, in bytes."""
MAX_BATCH_BYTES: Final = 64 * 1024 * 1024
"""The most payload one group-commit transaction carries, unless one append alone is larger."""


class _Retry(Exception):
    """The write transaction collided with another writer, or lost its connection before it
    wrote anything: run it again."""


class _Unsure(Exception):
    """A one-statement append lost its connection, perhaps after its commit: whether its first
    event id is stored decides, once the connection is given back to the pool (which may hold
    no other)."""

    def __init__(
        self, error: psycopg.Error, event_id: bytes, finish: Callable[[int], list[Outcome]]
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.event_id = event_id
        self.finish = finish


class _RequestFailed(Exception):
    """A statement failed on the data of the batch before COMMIT: nothing was stored."""

    def __init__(self, error: EventVaultError) -> None:
        super().__init__(str(error))
        self.error = error


class Writer:
    """Everything one store writes to the log.

    Args:
        connections: the store's pool.
        sql: the store's statements.
        notifications: the store's notifier and what it owes subscribers.
    """

    def __init__(
        self, connections: Connections, sql: Statements, notifications: Notifications
    ) -> None:
        self._connections = connections
        self._url = connections.location
        self._sql = sql
        self._notifications = notifications
        # Stream heads (version, last hash) this store committed or read under lock: the fast
        # path plans appends against them. Touched only by the group commit's leader.
        self._heads: dict[str, tuple[int, bytes]] = {}
        self._committer: GroupCommitter[list[PendingAppend], list[AppendResult]] = GroupCommitter(
            self._commit_batch
        )

    def append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        """Commit one request (the appends of one call) in the next group commit."""
        return self._committer.submit(appends)

    async def append_async(self, appends: list[PendingAppend]) -> list[AppendResult]:
        """`append` from a coroutine: queued from the event loop, committed by a thread of the
        group commit (`GroupCommitter.submit_async`)."""
        return await self._committer.submit_async(appends)

    def forget(self, names: list[str]) -> None:
        """Forget the remembered heads of streams another path (a transaction beside the
        events) wrote to: the fast path would only collide with them."""
        for name in names:
            self._heads.pop(name, None)

    def _commit_batch(self, requests: list[list[PendingAppend]]) -> list[Outcome]:
        """Commit a batch of appends, in transactions of at most MAX_BATCH_BYTES of payload
        (an append larger than that alone); refuse an append over MAX_APPEND_BYTES.

        PostgreSQL refuses a protocol message over 1 GB; the careful path sends payloads as
        hex text, twice their size. Larger transactions would also hold the group's other
        callers for long.
        """
        outcomes: list[Outcome | None] = [None] * len(requests)
        group: list[int] = []
        group_bytes = 0

        def commit_group() -> None:
            for index, outcome in zip(
                group, self._commit_group([requests[i] for i in group]), strict=True
            ):
                outcomes[index] = outcome

        for index, request in enumerate(requests):
            size = sum(len(e.data) + len(e.metadata) for a in request for e in a.events)
            if size > MAX_APPEND_BYTES:
                outcomes[index] = InvalidEventError(
                    f"an append of {size} bytes of data and metadata is over the PostgreSQL "
                    f"engine's limit of {MAX_APPEND_BYTES} bytes per append; split it into "
                    "several appends"
                )
                continue
            if group and group_bytes + size > MAX_BATCH_BYTES:
                commit_group()
                group, group_bytes = [], 0
            group.append(index)
            group_bytes += size
        if group:
            commit_group()
        if any(outcome is None for outcome in outcomes):  # pragma: no cover - a bug
            raise RuntimeError("an append of the batch got no outcome")
        return cast(list[Outcome], outcomes)

    def _commit_group(self, requests: list[list[PendingAppend]]) -> list[Outcome]:
        """Commit a group of appends in one transaction; a failing append fails alone.

        Version checks and idempotent retries are decided before anything is written, so an
        append that breaks them is left out of the transaction. A statement that fails on the
        data itself (before COMMIT) fails the batch; then each append is committed alone.
        """
        try:
            return self._run(requests)
        except _RequestFailed as failed:
            if len(requests) == 1:
                return [failed.error]
        outcomes: list[Outcome] = []
        for request in requests:
            try:
                outcomes.extend(self._run([request]))
            except _RequestFailed as failed:
                outcomes.append(failed.error)
            except EventVaultError as exc:
                outcomes.append(exc)
        return outcomes

    def _run(self, requests: list[list[PendingAppend]]) -> list[Outcome]:
        try:
            return self._run_attempts(requests)
        finally:
            self._notifications.settle(self._committer.has_queued())

    def _run_attempts(self, requests: list[list[PendingAppend]]) -> list[Outcome]:
        last: BaseException | None = None
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                with self._connections.connection() as conn:
                    outcomes, written = self._attempt(conn, requests)
            except _Retry as retry:
                last = retry.__cause__
                continue
            except _Unsure as unsure:
                try:
                    stored = self._first_stored(unsure.event_id)
                except StoreUnavailableError as exc:
                    raise unavailable(
                        unsure.error,
                        self._url,
                        " while an append committed, and cannot tell whether it is stored; "
                        "retry it with the same event ids to find out",
                    ) from exc
                if stored is None:
                    last = unsure.error
                    continue  # not stored: safe to run again, ids and all
                logger.info("append on %s committed, then failed: %s", self._url, unsure.error)
                outcomes, written = unsure.finish(stored), True
            if written:
                self._notifications.notifier.notify()
            return outcomes
        if last is not None and is_unavailable(last):
            raise unavailable(
                last,
                self._url,
                f" before an append could commit, {MAX_WRITE_ATTEMPTS} times in a row; "
                "nothing was stored",
            ) from last
        if last is not None and is_connection_error(last):
            what = "lost its connection before it could commit"
        else:
            what = "collided with concurrent writers"
        raise StorageError(
            f"PostgreSQL at {self._url!r}: an append {what} {MAX_WRITE_ATTEMPTS} times in a row; "
            f"nothing was stored (last: {str(last).strip() or type(last).__name__})"
        )

    def _attempt(
        self, conn: psycopg.Connection[Row], requests: list[list[PendingAppend]]
    ) -> tuple[list[Outcome], bool]:
        fast = self._fast_plan(requests)
        if fast is not None:
            outcomes = self._fast_write(conn, fast)
            if outcomes is not None:
                return outcomes, True
        return self._careful_attempt(conn, requests)

    def _fast_plan(self, requests: list[list[PendingAppend]]) -> BatchPlan | None:
        """Plan a batch against remembered stream heads, or None when the careful path must
        decide it: a head is unknown, or some append would fail or be a retry (a remembered
        head may be stale, so only the careful path may refuse an append)."""
        # Global positions 1, 2, ... stand for offsets in the block the server will reserve.
        return plan_on_remembered_heads(requests, self._heads, now_micros())

    def _fast_write(self, conn: psycopg.Connection[Row], plan: BatchPlan) -> list[Outcome] | None:
        """Write a planned batch in one statement, `append_events` (with its notification when
        `Notifications.due` says so).

        Returns:
            The outcomes with their real global positions, or None when a remembered head was
            stale or an event id is stored already (the careful path decides those).

        Raises:
            _RequestFailed: the statement failed on the batch's data; nothing was stored.
            _Unsure: the connection was lost, perhaps after the commit.
        """
        params = append_arguments(plan.rows)
        announce = self._notifications.due(self._committer.has_queued())
        try:
            # One statement, one round trip, its own autocommitted transaction. Given the
            # channel, it notifies subscribers too: the NOTIFY commits with the events and
            # holds the notification queue's lock through that commit, which in measurements
            # cost less than a second transaction (ADR 0004, "NOTIFY").
            params.append(self._notifications.channel if announce else None)
            cursor = conn.execute(self._sql.append_events, params, prepare=True)
            row = cursor.fetchone()
            if row is None:  # pragma: no cover - the function always returns a row
                raise StorageError("append_events returned nothing")
            first = int(row[0])
        except psycopg.Error as exc:
            rollback_quietly(conn)
            if is_retryable_conflict(exc):
                for name in plan.heads:
                    self._heads.pop(name, None)
                return None
            if not is_connection_error(exc):
                # One autocommitted statement that answered with an error stored nothing.
                raise _RequestFailed(translate(exc, self._url)) from exc
            # A dropped connection may have come after the commit: the batch's first event id
            # says whether it is stored.
            raise _Unsure(
                exc, plan.rows[0].event_id, lambda first: self._fast_done(plan, first, False)
            ) from exc
        return self._fast_done(plan, first, announce)

    def _fast_done(self, plan: BatchPlan, first: int, announced: bool) -> list[Outcome]:
        """Finish a committed one-statement append: remember its heads, and give each append
        its real global positions (the batch starts at `first`)."""
        self._notifications.committed(first + len(plan.rows) - 1, announced)
        self._remember(plan.heads)
        return plan.shifted(first - 1)

    def _first_stored(self, event_id: bytes) -> int | None:
        """The global position of a stored event id, None when it is not stored (or the
        server cannot say: then the caller must not assume it is stored)."""
        try:
            rows = self._connections.fetch(self._sql.position_of_id, (uuid.UUID(bytes=event_id),))
        except StoreUnavailableError:
            raise
        except EventVaultError:
            return None
        return int(rows[0][0]) if rows else None

    def _remember(self, heads: Mapping[str, StreamHead]) -> None:
        if len(self._heads) + len(heads) > MAX_REMEMBERED_HEADS:
            self._heads.clear()
        for name, head in heads.items():
            self._heads[name] = (head.version, head.hash)

    def _careful_attempt(
        self, conn: psycopg.Connection[Row], requests: list[list[PendingAppend]]
    ) -> tuple[list[Outcome], bool]:
        """The careful path: lock and read the heads, look up given ids, then write."""
        sql = self._sql
        names = sorted({append.stream_name for request in requests for append in request})
        given = [i for request in requests for append in request for i in append.given_ids]
        count = sum(len(append.events) for request in requests for append in request)
        first: int | None = None
        outcomes: list[Outcome] = []
        rows: list[StoredRow] = []
        cursor = psycopg.ClientCursor(conn)
        try:
            # Round trip 1. Lock the streams, so that their writers take global positions in
            # stream order (advisory locks, which give the transaction no id); then
            # reserve_positions, the first write: it assigns the transaction id under the
            # position lock (a row lock would assign one before). The heads read under the
            # stream locks are current. Statements of a round trip go as one multi-statement
            # query (client-side bound): on a busy host that is markedly cheaper than one
            # protocol message per statement.
            query = f"BEGIN; {sql.lock_streams}; {sql.reserve}; {sql.stream_heads}"
            params: list[object] = [names, count, names]
            if given:
                query += f"; {sql.find_ids}"
                params.append(given)
            cursor.execute(query, params)
            cursor.nextset()
            cursor.nextset()
            row = cursor.fetchone()
            if row is None:  # pragma: no cover - the function always returns a row
                raise StorageError("reserve_positions returned nothing")
            first = int(row[0])
            cursor.nextset()
            heads: dict[str, tuple[int, bytes]] = {
                str(r[0]): (int(r[1]), bytes(r[2])) for r in cursor.fetchall()
            }
            found: dict[uuid.UUID, tuple[str, int, int]] = {}
            if given:
                cursor.nextset()
                for r in cursor.fetchall():
                    found[uuid_from_bytes(bytes(r[0]))] = (str(r[1]), int(r[2]), int(r[3]))
            plan = plan_batch(requests, heads, found, first, now_micros())
            outcomes, rows = plan.outcomes, plan.rows
            # Round trip 2: write, commit, then announce in a transaction of its own: NOTIFY
            # in the writing transaction would hold a cluster-wide lock across its commit and
            # serialize every writer's WAL flush; a separate, asynchronously committed
            # transaction costs no flush.
            statements: list[str] = []
            params = []
            if rows:
                statements += [sql.insert_events, sql.upsert_streams]
                params += [*event_columns(rows), *stream_columns(plan.heads)]
            used = len(rows)
            if used < count:
                statements.append(sql.release)
                params += [first + used, first + count - 1]
            statements.append("COMMIT")
            if rows:
                statements += [
                    "BEGIN",
                    "SET LOCAL synchronous_commit TO off",
                    sql.notify,
                    "COMMIT",
                ]
                params += [self._notifications.channel, str(rows[-1].global_position)]
            cursor.execute("; ".join(statements), params)
            if rows:
                self._notifications.committed(rows[-1].global_position, True)
            self._remember(plan.heads)
        except psycopg.Error as exc:
            rollback_quietly(conn)
            if rows and self._stored(conn, rows[-1].global_position):
                # Stored; only the announcement failed. Subscribers poll: nothing is lost.
                logger.info("append committed but NOTIFY failed on %s: %s", self._url, exc)
                self._notifications.committed(rows[-1].global_position, False)
                return outcomes, True
            if first is not None and not is_connection_error(exc):
                release_quietly(conn, sql.release, first, first + count - 1)
            if is_retryable_conflict(exc):
                raise _Retry from exc
            if is_connection_error(exc):
                if first is None:
                    raise _Retry from exc  # nothing was written: safe on a fresh connection
                if is_unavailable(exc):
                    raise unavailable(exc, self._url, _MAYBE_STORED) from exc
                raise StorageError(
                    f"PostgreSQL at {self._url!r}: the connection failed{_MAYBE_STORED} ({exc})"
                ) from exc
            raise _RequestFailed(translate(exc, self._url)) from exc
        except BaseException:
            rollback_quietly(conn)
            raise
        finally:
            cursor.close()
        return outcomes, bool(rows)

    def _stored(self, conn: psycopg.Connection[Row], position: int) -> bool:
        """Whether the event at `position` is committed (False when that cannot be told)."""
        if conn.closed:
            return False
        try:
            row = conn.execute(self._sql.stored, (position,)).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    def import_rows(self, batches: Iterator[list[StoredRow]]) -> None:
        sql = self._sql
        try:
            with self._connections.connection() as conn:
                # Hold the position lock for the whole import: writers wait for it, then get
                # larger transaction ids and positions above the imported ones.
                conn.execute(sql.lock_log)
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_current_xact_id()")
                        row = conn.execute(sql.max_position).fetchone()
                        if row is not None and row[0]:
                            raise NotEmptyError(self._url, int(row[0]))
                        heads: dict[str, StreamHead] = {}
                        with conn.cursor().copy(sql.copy_events) as copy:
                            copy.set_types(COPY_TYPES)
                            for batch in batches:
                                for stored in batch:
                                    copy.write_row(
                                        (*stored[:3], uuid.UUID(bytes=stored.event_id), *stored[4:])
                                    )
                                    heads[stored.stream_name] = StreamHead(
                                        stored.stream_position, stored.global_position, stored.hash
                                    )
                        if heads:
                            conn.execute(sql.upsert_streams, stream_columns(heads))
                            last = max(head.global_position for head in heads.values())
                            conn.execute(sql.advance_sequence, (last,))
                            conn.execute(sql.notify, (self._notifications.channel, str(last)))
                finally:
                    if not conn.closed:
                        conn.execute(sql.unlock_log)
        except psycopg.errors.UniqueViolation as exc:
            raise ImportFileError(
                f"an event id appears twice in the events imported ({exc})"
            ) from exc
        except psycopg.Error as exc:
            raise translate(exc, self._url) from exc
