"""The in-memory engine: the executable reference of the store's semantics.

Events are kept as the same encoded rows the durable engines store, so a payload mutated by the
caller after an append cannot change what was recorded, and reads decode exactly as elsewhere.
Component tables (the seam) live in a private in-memory SQLite database, so features run their
`sqlite` statements here unchanged; a transaction commits that database and the events it
appended under the store's one lock. Nothing survives `close()`; each `connect("memory://")`
is a new, empty store.

Opened read-only, it is a new, empty store that refuses appends and imports: it can be read, and
nothing can ever be in it. In a forked child, a store is the child's own copy of the events and
component tables as they were at the fork (an append or transaction in flight finishes first,
so the copy holds it whole or not at all); neither process sees the other's later writes.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from eventvault.errors import (
    EventVaultError,
    ImportFileError,
    InvalidURLError,
    NotEmptyError,
    StorageError,
)
from eventvault.serialization import (
    DEFAULT_MAX_EVENT_BYTES,
    decode_rows,
    from_micros,
    now_micros,
    raw_rows,
    validate_stream_name,
)
from eventvault.store._append import PendingAppend, StoredRow, plan_batch
from eventvault.store._fork import ForkGuard
from eventvault.store._removal import (
    ImportedRemovals,
    RemovalTarget,
    RowRemovals,
    RowTransaction,
)
from eventvault.store.base import EventStore, StoreStats
from eventvault.store.notify import Notifier
from eventvault.store.seam import (
    CORE_COMPONENT,
    Component,
    Dialect,
    SQLRow,
    Transaction,
    check_finished,
    run_work,
    with_schema,
)
from eventvault.store.sqlite._seam import (
    COMPONENT_MIGRATIONS_DDL,
    SQLiteStatements,
    apply_component,
    component_versions,
)
from eventvault.types import (
    AppendResult,
    EventHash,
    PayloadEvent,
    RawEvent,
    RecordedEvent,
    StreamInfo,
    StreamMetadata,
)

if TYPE_CHECKING:
    from eventvault.store.registry import ConnectOptions
    from eventvault.store.url import StoreURL

__all__ = ["MemoryEventStore", "open_memory"]


class MemoryEventStore(EventStore):
    """An event store held in this process's memory.

    Args:
        url: the URL it was opened with, for messages.
        max_event_bytes: the limit on one event's encoded data plus metadata.
        read_only: refuse appends, imports and transactions (the store stays empty).
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        read_only: bool = False,
    ) -> None:
        super().__init__(url, max_event_bytes=max_event_bytes, read_only=read_only)
        self._lock = threading.RLock()
        self._log: list[StoredRow] = []
        self._streams: dict[str, list[StoredRow]] = {}
        self._ids: dict[uuid.UUID, tuple[str, int, int]] = {}
        self._removed = RowRemovals()
        self._notifier = Notifier()
        self._tables: sqlite3.Connection | None = None
        self._paused = False
        self._forked_in_transaction = False
        self._fork_guard = ForkGuard(
            before=self._pause, after_in_parent=self._resume, after_in_child=self._rebuild
        )

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    @property
    def embedded(self) -> bool:
        return True

    # -- fork --------------------------------------------------------------------------------

    def _pause(self) -> None:
        # The lock already this thread's: the fork comes from inside a transaction's work.
        self._forked_in_transaction = bool(cast(Any, self._lock)._is_owned())
        # Holding the lock across the fork: the child's copy has every append whole or not at all.
        self._lock.acquire()
        self._paused = True

    def _resume(self) -> None:
        self._paused = False
        self._lock.release()

    def _rebuild(self) -> None:
        if self._refuses_fork(paused=self._paused, in_transaction=self._forked_in_transaction):
            return
        # The lock copied into the child is held (by the forking thread); take a new one. The
        # component tables' private database was idle at the fork: it is the child's copy.
        self._paused = False
        self._lock = threading.RLock()
        self._notifier = Notifier()
        self._forked()

    def _head(self) -> int:
        return self._log[-1].global_position if self._log else 0

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        with self._lock:
            self._check_open()
            results, rows = self._plan(appends, [])
            self._store_rows(rows)
        if rows:
            self._notifier.notify()
        return results

    def _plan(
        self, appends: list[PendingAppend], staged: list[StoredRow]
    ) -> tuple[list[AppendResult], list[StoredRow]]:
        """Decide one request against the log and the rows a transaction staged after it."""
        heads: dict[str, tuple[int, bytes]] = {}
        found: dict[uuid.UUID, tuple[str, int, int]] = {}
        names = {append.stream_name for append in appends}
        for append in appends:
            stream = self._streams.get(append.stream_name)
            if stream:
                heads[append.stream_name] = (stream[-1].stream_position, stream[-1].hash)
            found.update((i, self._ids[i]) for i in append.given_ids if i in self._ids)
        for row in staged:
            if row.stream_name in names:
                heads[row.stream_name] = (row.stream_position, row.hash)
            found[uuid.UUID(bytes=row.event_id)] = (
                row.stream_name,
                row.stream_position,
                row.global_position,
            )
        first = (staged[-1].global_position if staged else self._head()) + 1
        plan = plan_batch([appends], heads, found, first, now_micros())
        outcome = plan.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome, plan.rows

    def _store_rows(self, rows: list[StoredRow]) -> None:
        for row in rows:
            self._log.append(row)
            self._streams.setdefault(row.stream_name, []).append(row)
            self._ids[uuid.UUID(bytes=row.event_id)] = (
                row.stream_name,
                row.stream_position,
                row.global_position,
            )

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with self._lock:
            stream = self._streams.get(stream_name, [])
            first = self._removed.start(stream_name)
            if backwards:
                end = len(stream) if start is None else min(start + 1, len(stream))
                rows = stream[max(first, end - limit) : end][::-1]
            else:
                begin = max(start or 0, first)
                rows = stream[begin : begin + limit]
        return decode_rows(rows)

    def _read_stream_payload_page(
        self, stream_name: str, start: int, limit: int
    ) -> list[PayloadEvent]:
        with self._lock:
            begin = max(start, self._removed.start(stream_name))
            rows = self._streams.get(stream_name, [])[begin : begin + limit]
        return [
            PayloadEvent(r.stream_position, r.event_type, r.schema_version, r.data, r.recorded_at)
            for r in rows
        ]

    def _rows_after(self, after: int) -> int:
        """The index in the log of the first event after global position `after`."""
        return bisect.bisect_right(self._log, after, key=lambda row: row.global_position)

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        removed = self._removed.removed_by

        def wanted(row: StoredRow) -> bool:
            return (
                (event_types is None or row.event_type in event_types)
                and (stream_prefix is None or row.stream_name.startswith(stream_prefix))
                and row.global_position not in removed
            )

        picked: list[StoredRow] = []
        with self._lock:
            if backwards:
                index = len(self._log) if after == 0 else self._rows_after(after - 1)
                while index > 0 and len(picked) < limit:
                    index -= 1
                    if wanted(self._log[index]):
                        picked.append(self._log[index])
            else:
                index = self._rows_after(after)
                while index < len(self._log) and len(picked) < limit:
                    if wanted(self._log[index]):
                        picked.append(self._log[index])
                    index += 1
        return decode_rows(picked)

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        with self._lock:
            index = self._rows_after(after)
            removed = self._removed.removed_by
            rows = [
                (*row, removed.get(row.global_position)) for row in self._log[index : index + limit]
            ]
        return raw_rows(rows, removed_at=10)

    def _get_event(
        self, event_id: uuid.UUID | None, stream: tuple[str, int] | None
    ) -> RawEvent | None:
        with self._lock:
            if event_id is not None:
                found = self._ids.get(event_id)
                stream = None if found is None else (found[0], found[1])
            assert stream is not None or event_id is not None
            if stream is None:
                return None
            rows = self._streams.get(stream[0], [])
            if stream[1] >= len(rows):
                return None
            row = rows[stream[1]]
            return raw_rows([(*row, self._removed.removed_by.get(row.global_position))], 10)[0]

    def _read_hash_page(self, after: int, limit: int) -> list[EventHash]:
        with self._lock:
            index = self._rows_after(after)
            return [EventHash(r.global_position, r.hash) for r in self._log[index : index + limit]]

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        with self._lock:
            names = sorted(self._streams)
            begin = 0 if after is None else bisect.bisect_right(names, after)
            infos: list[StreamInfo] = []
            for name in names[begin:]:
                last = self._streams[name][-1]
                if self._removed.listed(name, last.stream_position):
                    infos.append(StreamInfo(name, last.stream_position, last.global_position))
                    if len(infos) == limit:
                        break
            return infos

    def _stream_metadata(self, stream_name: str) -> StreamMetadata:
        with self._lock:
            return self._removed.metadata.get(stream_name, StreamMetadata())

    def _retained_streams(self) -> list[str]:
        with self._lock:
            return self._removed.retained()

    def _replace_row(self, old: StoredRow, new: StoredRow) -> None:
        """Put an erased row in the log in place of the row it was (under the lock)."""
        self._log[self._rows_after(old.global_position - 1)] = new

    def _import(self, batches: Iterator[list[StoredRow]], removals: ImportedRemovals) -> None:
        with self._lock:
            self._check_open()
            if self._log:
                raise NotEmptyError(self.url, self._head())
            staged: list[StoredRow] = []
            seen: set[bytes] = set()
            for batch in batches:
                for row in batch:
                    if row.event_id in seen:
                        raise ImportFileError(
                            f"event id {uuid.UUID(bytes=row.event_id)} appears twice in the "
                            "events imported"
                        )
                    seen.add(row.event_id)
                staged.extend(batch)
            for row in staged:
                self._store_rows([row])
            self._removed.import_removals(removals)

    def get_stream_version(self, stream_name: str) -> int | None:
        self._check_open()
        validate_stream_name(stream_name)
        with self._lock:
            stream = self._streams.get(stream_name)
            return stream[-1].stream_position if stream else None

    def head_position(self) -> int:
        self._check_open()
        with self._lock:
            return self._head()

    def stats(self) -> StoreStats:
        self._check_open()
        with self._lock:
            log = self._log
            return StoreStats(
                event_count=len(log),
                stream_count=len(self._streams),
                head_position=self._head(),
                first_recorded_at=from_micros(log[0].recorded_at) if log else None,
                last_recorded_at=from_micros(log[-1].recorded_at) if log else None,
            )

    # -- storage beside the events (the seam) ------------------------------------------------

    def _component_db(self) -> sqlite3.Connection:
        """The in-memory SQLite database of the component tables (under the lock)."""
        if self._tables is None:
            self._tables = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False
            )
            # As in a SQLite store, the record of component migrations is always there (a
            # removal reads which components the store holds).
            self._tables.execute(COMPONENT_MIGRATIONS_DDL)
        return self._tables

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    def _query_components(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        with self._lock:
            self._check_open()
            try:
                return (
                    self._component_db().execute(with_schema(statement, "main"), params).fetchall()
                )
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> EventVaultError:
        return StorageError(f"component tables of {self.url!r}: {exc}")

    def _use(self, component: Component) -> None:
        with self._lock:
            self._check_open()
            db = self._component_db()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    apply_component(db, component, self.url)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _component_versions(self) -> dict[str, int]:
        with self._lock:
            versions = component_versions(self._component_db())
        return {CORE_COMPONENT: 1, **versions}

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        with self._lock:
            self._check_open()
            db = self._component_db()
            tx = _MemoryTransaction(self, db)
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = run_work(id(self), work, tx)
                    check_finished(tx)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            # The component rows are committed; the events join the log under the same
            # lock, so no reader sees one without the other.
            self._store_rows(tx.staged)
            if tx.removals is not None:
                self._removed.apply(tx.removals, self._streams, self._replace_row)
        if tx.staged:
            self._notifier.notify()
        return result

    def _close(self) -> None:
        with self._lock:
            self._log = []
            self._streams = {}
            self._ids = {}
            self._removed = RowRemovals()
            if self._tables is not None:
                self._tables.close()
                self._tables = None


class _MemoryTransaction(SQLiteStatements):
    """A transaction of the in-memory engine: component rows in its SQLite database, events
    staged until the commit."""

    def __init__(self, store: MemoryEventStore, db: sqlite3.Connection) -> None:
        super().__init__(db, store.max_event_bytes, store._translate)
        self._store = store
        self.staged: list[StoredRow] = []
        self.removals: RowTransaction | None = None

    def _removals(self) -> RemovalTarget:
        if self.removals is None:
            self.removals = self._store._removed.target(self, self._store._streams)
        return self.removals

    def _stream_version(self, stream_name: str) -> int | None:
        for row in reversed(self.staged):
            if row.stream_name == stream_name:
                return row.stream_position
        stream = self._store._streams.get(stream_name)
        return stream[-1].stream_position if stream else None

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        results, rows = self._store._plan(appends, self.staged)
        self.staged.extend(rows)
        return results


def open_memory(url: StoreURL, options: ConnectOptions) -> MemoryEventStore:
    """Open a `memory://` URL: a new, empty store.

    Raises:
        InvalidURLError: the URL has a path, a host or options.
    """
    if url.host or url.location or url.options:
        raise InvalidURLError(
            url.display, "the in-memory engine takes no path or options: memory://"
        )
    return MemoryEventStore(
        url.text, max_event_bytes=options.max_event_bytes, read_only=options.read_only
    )
