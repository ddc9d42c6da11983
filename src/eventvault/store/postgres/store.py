"""The PostgreSQL engine: many writer processes, an honest global order, live subscriptions.

Writers. Appends of one process share a transaction (group commit, see `_groupcommit`). Each
transaction first calls `reserve_positions(n)`, which assigns its transaction id and its block
of global positions together under a short advisory lock, so a larger transaction id always
holds larger positions. Commits (and their WAL flushes) of many processes then run in parallel.

Readers deliver an event only when its writing transaction's id is below the snapshot's xmin:
every transaction that could still commit a lower position has then finished, so a reader never
sees a position that is filled in later. See docs/adr/0004-postgres-global-order.md.

An append batch takes the fast path when the writer remembers the head of every stream it
touches: one statement, `append_events`, which also notifies subscribers when asked to, in one
round trip; a stale head makes the insert collide with the stream-position constraint. Otherwise
(or after such a collision) the careful path decides it in two round trips (multi-statement
queries): lock the streams, reserve, read the heads and look up given event ids; then insert,
update the streams, commit, notify.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from eventvault.errors import (
    EventVaultError,
    ImportFileError,
    InvalidEventError,
    NotAnEventVaultDatabaseError,
    NotEmptyError,
    SchemaVersionError,
    StorageError,
    StoreClosedError,
)
from eventvault.serialization import (
    DEFAULT_MAX_EVENT_BYTES,
    decode_rows,
    from_micros,
    now_micros,
    raw_rows,
    uuid_from_bytes,
    validate_stream_name,
)
from eventvault.store._append import (
    PendingAppend,
    StoredRow,
)
from eventvault.store._fork import ForkGuard, keep_forever
from eventvault.store._groupcommit import GroupCommitter
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.notify import Notifier
from eventvault.store.postgres._arrays import ADAPTERS, append_arguments
from eventvault.store.postgres._batch import (
    Outcome,
    Row,
    event_columns,
    plan,
    release_quietly,
    rollback_quietly,
    stream_columns,
)
from eventvault.store.postgres._config import parse_url
from eventvault.store.postgres._errors import (
    is_connection_error,
    is_retryable_conflict,
    translate,
)
from eventvault.store.postgres._horizon import (
    BLOCKERS_SQL,
    XID_MODULUS,
    HorizonStatus,
    blocker_from_row,
    describe,
)
from eventvault.store.postgres._listener import Listener
from eventvault.store.postgres._sql import COPY_TYPES, Statements
from eventvault.store.postgres.migrations import (
    SCHEMA_VERSION,
    apply_migrations,
    check_encoding,
    stored_version,
)
from eventvault.types import AppendResult, RawEvent, RecordedEvent, StreamInfo, StreamState

__all__ = ["PostgresEventStore"]

logger = logging.getLogger("eventvault.postgres")

MAX_WRITE_ATTEMPTS: Final = 20
"""Tries of one append transaction that collides with concurrent writers before giving up."""
READ_ATTEMPTS: Final = 4
"""Tries of one read whose connection died (server restart, terminated backend)."""
STALL_LOG_INTERVAL: Final = 30.0
"""Seconds between two warnings about the same stalled horizon."""
MAX_REMEMBERED_HEADS: Final = 50_000
"""Stream heads remembered for the fast path; past that, the memory starts over."""
MAX_APPEND_BYTES: Final = 200 * 1024 * 1024
"""The most data and metadata one append (one call) may carry on PostgreSQL, in bytes."""
MAX_BATCH_BYTES: Final = 64 * 1024 * 1024
"""The most payload one group-commit transaction carries, unless one append alone is larger."""
ANNOUNCE_INTERVAL: Final = 0.002
"""While appends queue back to back, the longest time between two notifications for
subscribers in other processes (seconds)."""


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


class PostgresEventStore(EventStore):
    """An event store in a PostgreSQL schema, shared by any number of processes and machines.

    Args:
        url: `postgresql://user:password@host:port/database`, with optional eventvault options
            as query parameters: `schema` (default `eventvault`), `auto_migrate` (`true` to
            create or upgrade the schema on first use), `pool_max` (connections, default 10).
            Other parameters (`sslmode`, ...) go to libpq.
        max_event_bytes: the limit on one event's encoded data plus metadata (default 1 MiB).
        schema: overrides the URL's `schema`.
        auto_migrate: overrides the URL's `auto_migrate`.
        pool_max: overrides the URL's `pool_max`.
        horizon_wait: the most seconds a read of the global log waits for transactions that
            were in flight when it started, so that it sees every event committed before it.
        stall_warning_after: seconds readers may be held below the head by an open
            transaction before a warning naming it is logged (logger `eventvault.postgres`).
        read_only: every session of the store is read-only (`default_transaction_read_only`),
            nothing is migrated, and appends and imports raise `ReadOnlyStoreError`.

    Raises:
        InvalidURLError: a bad URL or option.
        NotAnEventVaultDatabaseError: the schema holds no eventvault store (run
            `eventvault migrate URL`, or pass `auto_migrate=true`), or something else.
        SchemaVersionError: the schema is newer than this eventvault, or older and
            `auto_migrate` is off.
        StorageError: the server cannot be reached.
    """

    def __init__(
        self,
        url: str,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        schema: str | None = None,
        auto_migrate: bool | None = None,
        pool_max: int | None = None,
        horizon_wait: float = 0.5,
        stall_warning_after: float = 5.0,
        read_only: bool = False,
    ) -> None:
        options = parse_url(url, schema=schema, auto_migrate=auto_migrate, pool_max=pool_max)
        super().__init__(options.display_url, max_event_bytes=max_event_bytes, read_only=read_only)
        self.schema = options.schema
        self.channel = f"eventvault_{options.schema}"
        self._conninfo = options.conninfo
        self._sql = Statements(options.schema)
        self._horizon_wait = horizon_wait
        self._stall_warning_after = stall_warning_after
        if "application_name" not in conninfo_to_dict(options.conninfo):
            self._conninfo = make_conninfo(
                options.conninfo, application_name=f"eventvault/{options.schema}"
            )
        self._check_schema(options.auto_migrate and not read_only)
        self._pool_max = options.pool_max
        self._pool = self._new_pool()
        self._notifier = Notifier()
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        self._blocked_since: float | None = None
        self._last_stall_log = 0.0
        # Stream heads (version, last hash) this store committed or read under lock: the fast
        # path plans appends against them. Touched only by the group commit's leader.
        self._heads: dict[str, tuple[int, bytes]] = {}
        # Whether a committed batch still waits for its NOTIFY, and when the last one went.
        self._unannounced = False
        self._announced_at = 0.0
        self._last_committed = 0
        self._committer: GroupCommitter[list[PendingAppend], list[AppendResult]] = GroupCommitter(
            self._commit_batch
        )
        self._fork_guard = ForkGuard(after_in_child=self._rebuild)

    # -- connections -------------------------------------------------------------------------

    def _new_pool(self) -> ConnectionPool[psycopg.Connection[Row]]:
        configure = self._read_only_session if self.read_only else None
        return ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_max,
            kwargs={"autocommit": True, "prepare_threshold": 0, "context": ADAPTERS},
            configure=configure,
            open=True,
            name=f"eventvault-{self.schema}",
        )

    @staticmethod
    def _read_only_session(conn: psycopg.Connection[Row]) -> None:
        # The server refuses any write in the session, whatever reaches it.
        conn.execute("SET default_transaction_read_only = on")

    def _rebuild(self) -> None:
        """In a forked child: a pool, listener and group committer of its own.

        The pool's connections (and the listener's) are sockets shared with the parent: the
        child never uses or closes them, only keeps them, and opens its own.
        """
        if self._closed:
            return
        keep_forever(self._pool, self._listener)
        self._listener = None
        self._listener_lock = threading.Lock()
        self._notifier = Notifier()
        self._heads = {}
        self._unannounced = False
        self._committer = GroupCommitter(self._commit_batch)
        self._forked()
        self._pool = self._new_pool()

    def _check_schema(self, auto_migrate: bool) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                if self.read_only:
                    self._read_only_session(conn)
                check_encoding(conn, self.url)
                version = stored_version(conn, self.schema)
                if version == SCHEMA_VERSION:
                    return
                if version is not None and version > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"{self.url} (schema {self.schema})", version, SCHEMA_VERSION
                    )
                if auto_migrate:
                    apply_migrations(conn, self.schema, self.url)
                    return
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc
        if version is None:
            raise NotAnEventVaultDatabaseError(
                self.url,
                f"schema {self.schema!r} holds no eventvault store; create it with "
                f"`eventvault migrate URL`, or open the URL with ?auto_migrate=true",
            )
        raise SchemaVersionError(
            f"{self.url} (schema {self.schema}: version {version} needs upgrading with "
            "`eventvault migrate URL`)",
            version,
            SCHEMA_VERSION,
        )

    def _fetch(self, query: str, params: Sequence[object] | Mapping[str, object]) -> list[Row]:
        """Run one read statement, on a fresh connection again if its connection died."""
        for attempt in range(READ_ATTEMPTS):
            self._check_open()
            try:
                with self._pool.connection() as conn:
                    return conn.execute(query, params, binary=True).fetchall()
            except (PoolClosed, PoolTimeout) as exc:
                if self._closed:
                    raise StoreClosedError(self.url) from exc
                raise translate(exc, self.url) from exc
            except psycopg.Error as exc:
                if self._closed:
                    raise StoreClosedError(self.url) from exc
                if attempt + 1 < READ_ATTEMPTS and is_connection_error(exc):
                    logger.info("read on %s lost its connection (%s); retrying", self.url, exc)
                    # Other idle connections may have died with it: replace them now.
                    self._pool.check()
                    continue
                raise translate(exc, self.url) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _execute(self, statement: str, params: Sequence[object]) -> int:
        """Run one write statement in its own transaction (autocommit); returns its row count.

        For eventvault's own tables beside the log (aggregate snapshots), never for events.
        """
        self._check_open()
        try:
            with self._pool.connection() as conn:
                return conn.execute(statement, params).rowcount
        except (PoolClosed, PoolTimeout) as exc:
            if self._closed:
                raise StoreClosedError(self.url) from exc
            raise translate(exc, self.url) from exc
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc

    @property
    def notifier(self) -> Notifier:
        with self._listener_lock:
            if self._listener is None and not self._closed:
                self._listener = Listener(self._conninfo, self.channel, self._notifier)
        return self._notifier

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        return self._committer.submit(appends)

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
            if self._unannounced and not self._committer.has_queued():
                self._announce()

    def _announce_now(self) -> bool:
        """Whether this batch's round trip carries the NOTIFY for subscribers elsewhere.

        A batch with appends queued behind it leaves its announcement to a batch that follows:
        that one commits later, so its notification covers both, and under a steady stream of
        batches most commits notify nobody. The last notification is never older than
        ANNOUNCE_INTERVAL while batches keep committing, and `_run` sends an owed one when the
        queue runs dry without it.
        """
        return (
            not self._committer.has_queued()
            or time.monotonic() - self._announced_at >= ANNOUNCE_INTERVAL
        )

    def _announced(self, last_position: int, sent: bool) -> None:
        """Record that a batch committed up to `last_position`, and whether subscribers were
        notified of it."""
        self._last_committed = max(self._last_committed, last_position)
        if sent:
            self._announced_at = time.monotonic()
        self._unannounced = not sent

    def _announce(self) -> None:
        """Notify subscribers of batches committed without a notification (best effort: they
        poll, so a lost notification only delays them)."""
        self._unannounced = False
        payload = str(self._last_committed)
        try:
            with self._pool.connection() as conn:
                conn.execute(self._sql.notify, (self.channel, payload), prepare=True)
        except (psycopg.Error, PoolClosed, PoolTimeout) as exc:
            logger.info("NOTIFY failed on %s (subscribers will poll): %s", self.url, exc)
            return
        self._announced_at = time.monotonic()

    def _run_attempts(self, requests: list[list[PendingAppend]]) -> list[Outcome]:
        last: BaseException | None = None
        for _ in range(MAX_WRITE_ATTEMPTS):
            self._check_open()
            try:
                with self._pool.connection() as conn:
                    outcomes, written = self._attempt(conn, requests)
            except _Retry as retry:
                last = retry.__cause__
                continue
            except _Unsure as unsure:
                stored = self._first_stored(unsure.event_id)
                if stored is None:
                    last = unsure.error
                    continue  # not stored: safe to run again, ids and all
                logger.info("append on %s committed, then failed: %s", self.url, unsure.error)
                outcomes, written = unsure.finish(stored), True
            except (PoolClosed, PoolTimeout) as exc:
                if self._closed:
                    raise StoreClosedError(self.url) from exc
                raise translate(exc, self.url) from exc
            if written:
                self._notifier.notify()
            return outcomes
        if last is not None and is_connection_error(last):
            what = "lost its connection before it could commit"
        else:
            what = "collided with concurrent writers"
        raise StorageError(
            f"PostgreSQL at {self.url!r}: an append {what} {MAX_WRITE_ATTEMPTS} times in a row; "
            f"nothing was stored (last: {str(last).strip() or type(last).__name__})"
        )

    def _attempt(
        self, conn: psycopg.Connection[Row], requests: list[list[PendingAppend]]
    ) -> tuple[list[Outcome], bool]:
        fast = self._fast_plan(requests)
        if fast is not None:
            outcomes = self._fast_write(conn, *fast)
            if outcomes is not None:
                return outcomes, True
        return self._careful_attempt(conn, requests)

    def _fast_plan(
        self, requests: list[list[PendingAppend]]
    ) -> tuple[list[Outcome], list[StoredRow], dict[str, tuple[int, int, bytes]]] | None:
        """Plan a batch against remembered stream heads, or None when the careful path must
        decide it: a head is unknown, or some append would fail or be a retry (a remembered
        head may be stale, so only the careful path may refuse an append)."""
        heads: dict[str, tuple[int | None, bytes]] = {}
        for request in requests:
            for append in request:
                name = append.stream_name
                if name in heads:
                    continue
                cached = self._heads.get(name)
                if cached is not None:
                    heads[name] = cached
                elif append.expected_version is not StreamState.NO_STREAM:
                    return None
        # Global positions 1, 2, ... stand for offsets in the block the server will reserve.
        outcomes, rows, touched = plan(requests, heads, {}, 1, now_micros())
        if not rows or any(isinstance(outcome, BaseException) for outcome in outcomes):
            return None
        return outcomes, rows, touched

    def _fast_write(
        self,
        conn: psycopg.Connection[Row],
        outcomes: list[Outcome],
        rows: list[StoredRow],
        touched: dict[str, tuple[int, int, bytes]],
    ) -> list[Outcome] | None:
        """Write a planned batch in one statement, `append_events` (with its notification when
        `_announce_now` says so).

        Returns:
            The outcomes with their real global positions, or None when a remembered head was
            stale or an event id is stored already (the careful path decides those).

        Raises:
            _RequestFailed: the statement failed on the batch's data; nothing was stored.
            _Unsure: the connection was lost, perhaps after the commit.
        """
        params = append_arguments(rows)
        names = sorted(touched)
        announce = self._announce_now()
        try:
            # One statement, one round trip, its own autocommitted transaction. Given the
            # channel, it notifies subscribers too: the NOTIFY commits with the events and
            # holds the notification queue's lock through that commit, which in measurements
            # cost less than a second transaction (ADR 0004, "NOTIFY").
            params.append(self.channel if announce else None)
            cursor = conn.execute(self._sql.append_events, params, prepare=True)
            row = cursor.fetchone()
            if row is None:  # pragma: no cover - the function always returns a row
                raise StorageError("append_events returned nothing")
            first = int(row[0])
        except psycopg.Error as exc:
            rollback_quietly(conn)
            if is_retryable_conflict(exc):
                for name in names:
                    self._heads.pop(name, None)
                return None
            if not is_connection_error(exc):
                # One autocommitted statement that answered with an error stored nothing.
                raise _RequestFailed(translate(exc, self.url)) from exc
            # A dropped connection may have come after the commit: the batch's first event id
            # says whether it is stored.
            raise _Unsure(
                exc,
                rows[0][3],
                lambda first: self._fast_done(outcomes, rows, touched, first, False),
            ) from exc
        return self._fast_done(outcomes, rows, touched, first, announce)

    def _fast_done(
        self,
        outcomes: list[Outcome],
        rows: list[StoredRow],
        touched: dict[str, tuple[int, int, bytes]],
        first: int,
        announced: bool,
    ) -> list[Outcome]:
        """Finish a committed one-statement append: remember its heads, and give each append
        its real global positions (the batch starts at `first`)."""
        self._announced(first + len(rows) - 1, announced)
        self._remember(touched)
        shift = first - 1
        return [
            outcome
            if isinstance(outcome, BaseException)
            else [AppendResult(r.stream_position, r.global_position + shift) for r in outcome]
            for outcome in outcomes
        ]

    def _first_stored(self, event_id: bytes) -> int | None:
        """The global position of a stored event id, None when it is not stored (or the
        server cannot say: then the caller must not assume it is stored)."""
        try:
            rows = self._fetch(self._sql.position_of_id, (uuid.UUID(bytes=event_id),))
        except EventVaultError:
            return None
        return int(rows[0][0]) if rows else None

    def _remember(self, touched: Mapping[str, tuple[int, int, bytes]]) -> None:
        if len(self._heads) + len(touched) > MAX_REMEMBERED_HEADS:
            self._heads.clear()
        for name, (version, _, last_hash) in touched.items():
            self._heads[name] = (version, last_hash)

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
            heads: dict[str, tuple[int | None, bytes]] = {
                str(r[0]): (int(r[1]), bytes(r[2])) for r in cursor.fetchall()
            }
            found: dict[uuid.UUID, tuple[str, int, int]] = {}
            if given:
                cursor.nextset()
                for r in cursor.fetchall():
                    found[uuid_from_bytes(bytes(r[0]))] = (str(r[1]), int(r[2]), int(r[3]))
            outcomes, rows, touched = plan(requests, heads, found, first, now_micros())
            # Round trip 2: write, commit, then announce in a transaction of its own: NOTIFY
            # in the writing transaction would hold a cluster-wide lock across its commit and
            # serialize every writer's WAL flush; a separate, asynchronously committed
            # transaction costs no flush.
            statements: list[str] = []
            params = []
            if rows:
                statements += [sql.insert_events, sql.upsert_streams]
                params += [*event_columns(rows), *stream_columns(touched)]
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
                params += [self.channel, str(rows[-1][2])]
            cursor.execute("; ".join(statements), params)
            if rows:
                self._announced(rows[-1][2], True)
            self._remember(touched)
        except psycopg.Error as exc:
            rollback_quietly(conn)
            if rows and self._stored(conn, rows[-1][2]):
                # Stored; only the announcement failed. Subscribers poll: nothing is lost.
                logger.info("append committed but NOTIFY failed on %s: %s", self.url, exc)
                self._announced(rows[-1][2], False)
                return outcomes, True
            if first is not None and not is_connection_error(exc):
                release_quietly(conn, sql.release, first, first + count - 1)
            if is_retryable_conflict(exc):
                raise _Retry from exc
            if is_connection_error(exc):
                if first is None:
                    raise _Retry from exc  # nothing was written: safe on a fresh connection
                raise StorageError(
                    f"PostgreSQL at {self.url!r}: the connection failed during the commit of "
                    f"an append, which may or may not be stored; retry it with the same event "
                    f"ids to find out ({exc})"
                ) from exc
            raise _RequestFailed(translate(exc, self.url)) from exc
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

    def _import(self, batches: Iterator[list[StoredRow]]) -> None:
        sql = self._sql
        self._check_open()
        try:
            with self._pool.connection() as conn:
                # Hold the position lock for the whole import: writers wait for it, then get
                # larger transaction ids and positions above the imported ones.
                conn.execute(sql.lock_log)
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_current_xact_id()")
                        row = conn.execute(sql.max_position).fetchone()
                        if row is not None and row[0]:
                            raise NotEmptyError(self.url, int(row[0]))
                        heads: dict[str, StoredRow] = {}
                        with conn.cursor().copy(sql.copy_events) as copy:
                            copy.set_types(COPY_TYPES)
                            for batch in batches:
                                for stored in batch:
                                    copy.write_row(
                                        (*stored[:3], uuid.UUID(bytes=stored[3]), *stored[4:])
                                    )
                                    heads[stored[0]] = stored
                        if heads:
                            conn.execute(
                                sql.upsert_streams,
                                stream_columns(
                                    {name: (r[1], r[2], r[9]) for name, r in heads.items()}
                                ),
                            )
                            last = max(r[2] for r in heads.values())
                            conn.execute(sql.advance_sequence, (last,))
                            conn.execute(sql.notify, (self.channel, str(last)))
                finally:
                    if not conn.closed:
                        conn.execute(sql.unlock_log)
        except psycopg.errors.UniqueViolation as exc:
            raise ImportFileError(
                f"an event id appears twice in the events imported ({exc})"
            ) from exc
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc

    # -- reading -----------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        if backwards:
            bound = 2**63 - 1 if start is None else start
            query = self._sql.read_stream_backward
        else:
            bound = start or 0
            query = self._sql.read_stream_forward
        return decode_rows(self._fetch(query, (stream_name, bound, limit)))

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        if backwards:
            return decode_rows(self._backward_rows(after, limit, event_types, stream_prefix))
        return decode_rows(self._forward_rows(after, limit, event_types, stream_prefix))

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        return raw_rows(self._forward_rows(after, limit, None, None))

    @staticmethod
    def _filters(
        query: str, event_types: tuple[str, ...] | None, stream_prefix: str | None
    ) -> tuple[str, list[object]]:
        params: list[object] = []
        if event_types is not None:
            query += " AND event_type = ANY(%s::text[])"
            params.append(list(event_types))
        if stream_prefix is not None:
            query += " AND starts_with(stream_name, %s)"
            params.append(stream_prefix)
        return query, params

    def _forward_rows(
        self,
        after: int,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[Row]:
        """The deliverable rows of one page after `after`.

        The page is the first `limit` committed rows; each says whether its transaction is
        below the horizon. Positions and transaction ids rise together, so the deliverable rows
        are a prefix. Rows committed beyond the horizon mean transactions that began before
        this read are still open: wait (briefly) until those rows become deliverable, so a read
        sees everything committed before it started.
        """
        query, extra = self._filters(self._sql.read_forward, event_types, stream_prefix)
        query += " ORDER BY global_position LIMIT %s"
        params = [after, *extra, limit]
        waited_for: int | None = None
        deadline = 0.0
        delay = 0.0005
        while True:
            rows = self._fetch(query, params)
            cut = next((i for i, row in enumerate(rows) if not row[10]), None)
            if cut is None:
                self._horizon_clear()
                return rows
            if waited_for is None:
                waited_for = int(rows[cut][2])
                deadline = time.monotonic() + self._horizon_wait
            elif cut > 0 and int(rows[cut - 1][2]) >= waited_for:
                # Everything committed before this read began is deliverable now.
                self._horizon_clear()
                return rows[:cut]
            if time.monotonic() >= deadline or self._closed:
                self._horizon_blocked()
                return rows[:cut]
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _visible_head(self) -> int:
        """The highest position readers may deliver, after waiting (briefly) for transactions
        in flight when the call started."""
        deadline: float | None = None
        target = 0
        delay = 0.0005
        while True:
            rows = self._fetch(self._sql.heads, ())
            visible, head = int(rows[0][0]), int(rows[0][1])
            if deadline is None:
                target = head
                deadline = time.monotonic() + self._horizon_wait
            if visible >= target:
                self._horizon_clear()
                return visible
            if time.monotonic() >= deadline or self._closed:
                self._horizon_blocked()
                return visible
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _backward_rows(
        self,
        after: int,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[Row]:
        # Every position below a deliverable one is settled, so bounding the scan by the
        # visible head is enough; no row of it can be filled in later.
        head = self._visible_head()
        bound = head if after == 0 else min(after - 1, head)
        if bound < 1:
            return []
        query, extra = self._filters(self._sql.read_backward, event_types, stream_prefix)
        query += " ORDER BY global_position DESC LIMIT %s"
        return self._fetch(query, [bound, *extra, limit])

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        rows = self._fetch(self._sql.list_streams, ("" if after is None else after, limit))
        return [StreamInfo(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def get_stream_version(self, stream_name: str) -> int | None:
        self._check_open()
        validate_stream_name(stream_name)
        rows = self._fetch(self._sql.stream_version, (stream_name,))
        return int(rows[0][0]) if rows else None

    def head_position(self) -> int:
        self._check_open()
        return self._visible_head()

    def stats(self) -> StoreStats:
        self._check_open()
        head = self._visible_head()
        count, streams, first, last = self._fetch(self._sql.stats, ())[0]
        return StoreStats(
            event_count=int(count),
            stream_count=int(streams),
            head_position=head,
            first_recorded_at=None if first is None else from_micros(int(first)),
            last_recorded_at=None if last is None else from_micros(int(last)),
        )

    # -- the horizon -------------------------------------------------------------------------

    def _horizon_clear(self) -> None:
        self._blocked_since = None

    def _horizon_blocked(self) -> None:
        now = time.monotonic()
        if self._blocked_since is None:
            self._blocked_since = now
            return
        if (
            now - self._blocked_since >= self._stall_warning_after
            and now - self._last_stall_log >= STALL_LOG_INTERVAL
        ):
            self._last_stall_log = now
            try:
                status = self.horizon_status()
            except EventVaultError as exc:
                logger.warning("readers of %s are stalled; status unavailable: %s", self.url, exc)
                return
            if status.blocked:
                logger.warning("%s (schema %s): %s", self.url, self.schema, describe(status))

    def horizon_status(self) -> HorizonStatus:
        """How far readers can see now, and which open transactions hold them back.

        Readers deliver an event only after every transaction that began before it was
        committed has finished (in the whole cluster, not only this store). A transaction left
        open for long, even one that touched other tables, therefore stalls subscriptions;
        this names it (pid, xid, state, age, query) so that it can be ended.

        Returns:
            A `HorizonStatus`; `blockers` is empty when readers are not held back.

        Raises:
            StorageError: the server cannot be reached.
        """
        self._check_open()
        xmin_text, visible, head = self._fetch(self._sql.horizon, ())[0]
        blockers: tuple[Any, ...] = ()
        if int(visible) < int(head):
            beyond = self._fetch(self._sql.first_beyond, (int(visible),))
            if beyond:
                xid32 = int(beyond[0][0]) % XID_MODULUS
                rows = self._fetch(BLOCKERS_SQL, {"xid": str(xid32)})
                blockers = tuple(blocker_from_row(row) for row in rows)
        since = self._blocked_since
        return HorizonStatus(
            head_position=int(head),
            visible_position=int(visible),
            snapshot_xmin=int(xmin_text),
            waiting_since=None if since is None else time.monotonic() - since,
            blockers=blockers,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def _close(self) -> None:
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.request_stop()
            try:
                with self._pool.connection(timeout=2.0) as conn:
                    conn.execute(self._sql.notify, (self.channel, "close"))
            except (psycopg.Error, PoolClosed, PoolTimeout):
                logger.info("could not wake the LISTEN thread of %s; it stops on its own", self.url)
            listener.join()
        self._pool.close(timeout=5.0)
