"""The PostgreSQL engine: many writer processes, an honest global order, live subscriptions.

The engine is split by job: `_connections` (the pool and reads through it), `_writer` (group
commit, the fast and careful append paths, import), `_reader` (pages of the log that never skip
a late commit, and the horizon readers wait for), `_notifications` (NOTIFY and the LISTEN
thread), `migrations` (the versioned schema). This module puts them together behind the
`EventStore` API. See docs/adr/0004-postgres-global-order.md for the ordering argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from eventvault.errors import (
    MigrationRequiredError,
    NotAnEventVaultDatabaseError,
    SchemaVersionError,
)
from eventvault.serialization import (
    DEFAULT_MAX_EVENT_BYTES,
    decode_rows,
    from_micros,
    raw_rows,
    validate_stream_name,
)
from eventvault.store._append import PendingAppend, StoredRow
from eventvault.store._fork import ForkGuard, keep_forever
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.notify import Notifier
from eventvault.store.postgres._batch import Row
from eventvault.store.postgres._config import connect_timeout, parse_url, quote_schema
from eventvault.store.postgres._connections import Connections, read_only_session
from eventvault.store.postgres._errors import translate
from eventvault.store.postgres._horizon import HorizonStatus
from eventvault.store.postgres._notifications import Notifications
from eventvault.store.postgres._reader import Reader
from eventvault.store.postgres._seam import run_transaction
from eventvault.store.postgres._sql import Statements
from eventvault.store.postgres._writer import Writer
from eventvault.store.postgres.migrations import (
    SCHEMA_VERSION,
    apply_component,
    apply_migrations,
    check_encoding,
    component_versions,
    stored_version,
)
from eventvault.store.seam import (
    CORE_COMPONENT,
    Component,
    Dialect,
    SQLRow,
    Transaction,
    with_schema,
)
from eventvault.types import AppendResult, RawEvent, RecordedEvent, StreamInfo

__all__ = ["PostgresEventStore"]


class PostgresEventStore(EventStore):
    """An event store in a PostgreSQL schema, shared by any number of processes and machines.

    Args:
        url: `postgresql://user:password@host:port/database`, with optional eventvault options
            as query parameters: `schema` (default `eventvault`), `auto_migrate` (`true` to
            create or upgrade the schema on first use), `pool_max` (connections, default 10),
            `unavailable_timeout` (seconds, default 5: how long a call waits for a connection
            before it checks whether the server can be reached, and fails with
            `StoreUnavailableError` naming it when it cannot). Other parameters (`sslmode`,
            `connect_timeout`, ...) go to libpq; `connect_timeout` defaults to
            `unavailable_timeout` (at least 2 s).
        max_event_bytes: the limit on one event's encoded data plus metadata (default 1 MiB).
        schema: overrides the URL's `schema`.
        auto_migrate: overrides the URL's `auto_migrate`.
        pool_max: overrides the URL's `pool_max`.
        unavailable_timeout: overrides the URL's `unavailable_timeout`.
        horizon_wait: the most seconds a read of the global log waits for transactions that
            were in flight when it started, so that it sees every event committed before it.
        stall_warning_after: seconds readers may be held below the head by an open
            transaction before a warning naming it is logged (logger `eventvault.postgres`).
        read_only: every session of the store is read-only (`default_transaction_read_only`),
            nothing is migrated (whatever `auto_migrate` says), and appends, imports and
            transactions raise `ReadOnlyStoreError`.

    Raises:
        InvalidURLError: a bad URL or option.
        NotAnEventVaultDatabaseError: the schema holds no eventvault store (run
            `eventvault migrate URL`, or pass `auto_migrate=true`), or something else.
        SchemaVersionError: the schema is newer than this eventvault, or older and
            `auto_migrate` is off.
        StoreUnavailableError: the server cannot be reached (the message names it and the
            connection error).
    """

    def __init__(
        self,
        url: str,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        schema: str | None = None,
        auto_migrate: bool | None = None,
        pool_max: int | None = None,
        unavailable_timeout: float | None = None,
        horizon_wait: float = 0.5,
        stall_warning_after: float = 5.0,
        read_only: bool = False,
    ) -> None:
        options = parse_url(
            url,
            schema=schema,
            auto_migrate=auto_migrate,
            pool_max=pool_max,
            unavailable_timeout=unavailable_timeout,
        )
        super().__init__(options.display_url, max_event_bytes=max_event_bytes, read_only=read_only)
        self.schema = options.schema
        self.channel = f"eventvault_{options.schema}"
        self._conninfo = options.conninfo
        given = conninfo_to_dict(options.conninfo)
        if "application_name" not in given:
            self._conninfo = make_conninfo(
                self._conninfo, application_name=f"eventvault/{options.schema}"
            )
        if "connect_timeout" not in given:
            # libpq's default waits for an unanswering host for minutes.
            self._conninfo = make_conninfo(
                self._conninfo, connect_timeout=connect_timeout(options.unavailable_timeout)
            )
        self._sql = Statements(options.schema)
        self._auto_migrate = options.auto_migrate and not read_only
        self._check_schema(self._auto_migrate)
        self._pool_max = options.pool_max
        self._unavailable_timeout = options.unavailable_timeout
        self._horizon_wait = horizon_wait
        self._stall_warning_after = stall_warning_after
        self._connect_parts()
        self._fork_guard = ForkGuard(after_in_child=self._rebuild)

    # -- connections -------------------------------------------------------------------------

    def _connect_parts(self) -> None:
        """The pool, notifications, reader and writer of this process."""
        self._connections = Connections(
            self._conninfo,
            self.url,
            pool_max=self._pool_max,
            unavailable_timeout=self._unavailable_timeout,
            name=f"eventvault-{self.schema}",
            is_closed=lambda: self._closed,
            read_only=self.read_only,
        )
        self._notifications = Notifications(
            self._connections, self._conninfo, self.channel, self._sql.notify
        )
        self._reader = Reader(
            self._connections,
            self._sql,
            schema=self.schema,
            horizon_wait=self._horizon_wait,
            stall_warning_after=self._stall_warning_after,
            is_closed=lambda: self._closed,
        )
        self._writer = Writer(self._connections, self._sql, self._notifications)

    def _rebuild(self) -> None:
        """In a forked child: a pool, listener, reader and writer of its own.

        The pool's connections (and the listener's) are sockets shared with the parent: the
        child never uses or closes them, only keeps them, and opens its own.
        """
        if self._closed:
            return
        keep_forever(self._connections, self._notifications, self._reader, self._writer)
        self._forked()
        self._connect_parts()

    def _check_schema(self, auto_migrate: bool) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                if self.read_only:
                    read_only_session(conn)
                check_encoding(conn, self.url)
                version = stored_version(conn, self.schema)
                if version == SCHEMA_VERSION:
                    return
                if version is not None and version > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"{self.url} (schema {self.schema})", version, SCHEMA_VERSION
                    )
                if auto_migrate:
                    self.core_migrations_applied = apply_migrations(conn, self.schema, self.url)
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
        """Run one read statement (see `Connections.fetch`)."""
        return self._connections.fetch(query, params)

    def _execute(self, statement: str, params: Sequence[object]) -> int:
        """Run one write statement in its own transaction (autocommit); returns its row count.

        For eventvault's own tables beside the log (aggregate snapshots), never for events.
        """
        try:
            with self._connections.connection() as conn:
                return conn.execute(statement, params).rowcount
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc

    @property
    def notifier(self) -> Notifier:
        return self._notifications.listening()

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        return self._writer.append(appends)

    async def _append_async(self, appends: list[PendingAppend]) -> list[AppendResult]:
        return await self._writer.append_async(appends)

    def _import(self, batches: Iterator[list[StoredRow]]) -> None:
        self._writer.import_rows(batches)

    # -- reading -----------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        return decode_rows(self._reader.stream_rows(stream_name, start, backwards, limit))

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        if backwards:
            return decode_rows(self._reader.backward_rows(after, limit, event_types, stream_prefix))
        return decode_rows(self._reader.forward_rows(after, limit, event_types, stream_prefix))

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        return raw_rows(self._reader.forward_rows(after, limit, None, None))

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
        return self._reader.visible_head()

    def stats(self) -> StoreStats:
        self._check_open()
        head = self._reader.visible_head()
        count, streams, first, last = self._fetch(self._sql.stats, ())[0]
        return StoreStats(
            event_count=int(count),
            stream_count=int(streams),
            head_position=head,
            first_recorded_at=None if first is None else from_micros(int(first)),
            last_recorded_at=None if last is None else from_micros(int(last)),
        )

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
        return self._reader.horizon_status()

    # -- storage beside the events (the seam) ------------------------------------------------

    def _use(self, component: Component) -> None:
        try:
            with self._connections.connection() as conn:
                current = component_versions(conn, self.schema).get(component.name, 0)
                if current == component.version:
                    return
                if current > component.version:
                    raise SchemaVersionError(
                        f"{self.url} (schema {self.schema}, component {component.name})",
                        current,
                        component.version,
                    )
                if not self._auto_migrate:
                    raise MigrationRequiredError(
                        self.url, component.name, current, component.version
                    )
                apply_component(conn, self.schema, component, self.url)
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc

    @property
    def dialect(self) -> Dialect:
        return "postgresql"

    def _query_components(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        return self._fetch(with_schema(statement, quote_schema(self.schema)), params)

    def _component_versions(self) -> dict[str, int]:
        try:
            with self._connections.connection() as conn:
                versions = component_versions(conn, self.schema)
                core = stored_version(conn, self.schema) or 0
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc
        return {CORE_COMPONENT: core, **versions}

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        return run_transaction(
            work,
            store_id=id(self),
            connections=self._connections,
            sql=self._sql,
            schema=self.schema,
            max_event_bytes=self.max_event_bytes,
            notifications=self._notifications,
            forget_heads=self._writer.forget,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def _close(self) -> None:
        self._notifications.close()
        self._connections.close()
