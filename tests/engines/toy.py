"""A small engine that lives outside the package: what docs/howto-write-an-engine.md describes.

`toy://NAME` opens a log kept in this process under NAME: it outlives `close()` and every store
opened on the same name shares it (durable for the life of the process, so the contract suite's
reopening tests apply). `toy://` opens a new, private log. The engine implements the primitives
of `EventStore` and nothing else; validation, paging, subscriptions, export and import come from
the base class, and the append rules from `plan_batch`.

The log is one `ToyLog`: rows as the engines store them, an index per stream and per event id,
the tables of components (the seam) in a private SQLite database, and one lock under which every
change is decided and applied, so an append or a transaction is atomic and global positions
follow commit order.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence

from eventvault import EventStore, StoreStats
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
from eventvault.store._removal import (
    ImportedRemovals,
    RemovalTarget,
    RowRemovals,
    RowTransaction,
)
from eventvault.store.notify import Notifier
from eventvault.store.registry import ConnectOptions
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
from eventvault.store.url import StoreURL
from eventvault.types import (
    AppendResult,
    EventHash,
    RawEvent,
    RecordedEvent,
    StreamInfo,
    StreamMetadata,
)

__all__ = ["ToyEventStore", "ToyLog", "open_toy"]


class ToyLog:
    """The storage of one toy store: everything below is read and changed under `lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.rows: list[StoredRow] = []
        self.positions: list[int] = []  # the global position of each row, for bisect
        self.streams: dict[str, list[StoredRow]] = {}
        self.ids: dict[uuid.UUID, tuple[str, int, int]] = {}
        self.removed = RowRemovals()  # removals: which rows are removed, where streams start
        self.notifier = Notifier()
        self.tables = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.tables.execute(COMPONENT_MIGRATIONS_DDL)

    def replace(self, old: StoredRow, new: StoredRow) -> None:
        """Put an erased row in place of the row it was."""
        self.rows[self.index_after(old.global_position - 1)] = new

    def head(self) -> int:
        return self.positions[-1] if self.positions else 0

    def add(self, rows: list[StoredRow]) -> None:
        for row in rows:
            self.rows.append(row)
            self.positions.append(row.global_position)
            self.streams.setdefault(row.stream_name, []).append(row)
            self.ids[uuid.UUID(bytes=row.event_id)] = (
                row.stream_name,
                row.stream_position,
                row.global_position,
            )

    def index_after(self, position: int) -> int:
        """The index of the first row after global position `position`."""
        return bisect.bisect_right(self.positions, position)

    def plan(
        self, appends: list[PendingAppend], staged: Sequence[StoredRow]
    ) -> tuple[list[AppendResult], list[StoredRow]]:
        """Decide one request against the log and the rows a transaction staged before it."""
        heads: dict[str, tuple[int, bytes]] = {}
        found: dict[uuid.UUID, tuple[str, int, int]] = {}
        for append in appends:
            stream = self.streams.get(append.stream_name)
            if stream:
                heads[append.stream_name] = (stream[-1].stream_position, stream[-1].hash)
            found.update((i, self.ids[i]) for i in append.given_ids if i in self.ids)
        for row in staged:
            heads[row.stream_name] = (row.stream_position, row.hash)
            found[uuid.UUID(bytes=row.event_id)] = (
                row.stream_name,
                row.stream_position,
                row.global_position,
            )
        first = (staged[-1].global_position if staged else self.head()) + 1
        plan = plan_batch([appends], heads, found, first, now_micros())
        outcome = plan.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome, plan.rows


_logs: dict[str, ToyLog] = {}
_logs_lock = threading.Lock()


def _named_log(name: str) -> ToyLog:
    with _logs_lock:
        return _logs.setdefault(name, ToyLog())


class ToyEventStore(EventStore):
    """A store on a `ToyLog`.

    Args:
        log: the storage.
        url: the URL it was opened with.
        max_event_bytes: the limit on one event's encoded data plus metadata.
        read_only: refuse appends, imports and transactions.
    """

    def __init__(
        self,
        log: ToyLog,
        url: str = "toy://",
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        read_only: bool = False,
    ) -> None:
        super().__init__(url, max_event_bytes=max_event_bytes, read_only=read_only)
        self._log = log

    @property
    def notifier(self) -> Notifier:
        return self._log.notifier

    @property
    def embedded(self) -> bool:
        return True

    # -- writing -----------------------------------------------------------------------------

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        with self._log.lock:
            self._check_open()
            results, rows = self._log.plan(appends, [])
            self._log.add(rows)
        if rows:
            self._log.notifier.notify()
        return results

    def _import(self, batches: Iterator[list[StoredRow]], removals: ImportedRemovals) -> None:
        log = self._log
        with log.lock:
            self._check_open()
            if log.rows:
                raise NotEmptyError(self.url, log.head())
            staged: list[StoredRow] = []
            seen: set[bytes] = set()
            for batch in batches:
                for row in batch:
                    if row.event_id in seen:
                        raise ImportFileError(
                            f"event id {uuid.UUID(bytes=row.event_id)} appears twice in the import"
                        )
                    seen.add(row.event_id)
                staged.extend(batch)
            log.add(staged)
            log.removed.import_removals(removals)

    # -- reading -----------------------------------------------------------------------------

    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with self._log.lock:
            stream = self._log.streams.get(stream_name, [])
            first = self._log.removed.start(stream_name)
            if backwards:
                end = len(stream) if start is None else min(start + 1, len(stream))
                rows = list(reversed(stream[max(first, end - limit) : end]))
            else:
                begin = max(start or 0, first)
                rows = stream[begin : begin + limit]
        return decode_rows(rows)

    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        log = self._log

        def wanted(row: StoredRow) -> bool:
            if event_types is not None and row.event_type not in event_types:
                return False
            if not log.removed.visible(row):
                return False
            return stream_prefix is None or row.stream_name.startswith(stream_prefix)

        picked: list[StoredRow] = []
        with log.lock:
            if backwards:
                end = len(log.rows) if after == 0 else log.index_after(after - 1)
                indexes: Iterator[int] = reversed(range(end))
            else:
                indexes = iter(range(log.index_after(after), len(log.rows)))
            for index in indexes:
                if len(picked) == limit:
                    break
                if wanted(log.rows[index]):
                    picked.append(log.rows[index])
        return decode_rows(picked)

    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        log = self._log
        with log.lock:
            start = log.index_after(after)
            removed = log.removed.removed_by
            rows = [(*r, removed.get(r.global_position)) for r in log.rows[start : start + limit]]
        return raw_rows(rows, removed_at=10)

    def _get_event(
        self, event_id: uuid.UUID | None, stream: tuple[str, int] | None
    ) -> RawEvent | None:
        with self._log.lock:
            if event_id is not None:
                found = self._log.ids.get(event_id)
                stream = None if found is None else (found[0], found[1])
            assert stream is not None or event_id is not None
            if stream is None:
                return None
            rows = self._log.streams.get(stream[0], [])
            if stream[1] >= len(rows):
                return None
            row = rows[stream[1]]
            return raw_rows([(*row, self._log.removed.removed_by.get(row.global_position))], 10)[0]

    def _read_hash_page(self, after: int, limit: int) -> list[EventHash]:
        log = self._log
        with log.lock:
            start = log.index_after(after)
            return [EventHash(r.global_position, r.hash) for r in log.rows[start : start + limit]]

    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        with self._log.lock:
            names = sorted(self._log.streams)
            begin = 0 if after is None else bisect.bisect_right(names, after)
            listed = [
                StreamInfo(name, stream[-1].stream_position, stream[-1].global_position)
                for name in names[begin:]
                for stream in (self._log.streams[name],)
                if self._log.removed.listed(name, stream[-1].stream_position)
            ]
            return listed[:limit]

    def _stream_metadata(self, stream_name: str) -> StreamMetadata:
        with self._log.lock:
            return self._log.removed.metadata.get(stream_name, StreamMetadata())

    def _retained_streams(self) -> list[str]:
        with self._log.lock:
            return self._log.removed.retained()

    def get_stream_version(self, stream_name: str) -> int | None:
        self._check_open()
        validate_stream_name(stream_name)
        with self._log.lock:
            stream = self._log.streams.get(stream_name)
            return stream[-1].stream_position if stream else None

    def head_position(self) -> int:
        self._check_open()
        with self._log.lock:
            return self._log.head()

    def stats(self) -> StoreStats:
        self._check_open()
        log = self._log
        with log.lock:
            return StoreStats(
                event_count=len(log.rows),
                stream_count=len(log.streams),
                head_position=log.head(),
                first_recorded_at=from_micros(log.rows[0].recorded_at) if log.rows else None,
                last_recorded_at=from_micros(log.rows[-1].recorded_at) if log.rows else None,
            )

    # -- storage beside the events (the seam) ------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    def _translate(self, exc: sqlite3.Error) -> EventVaultError:
        return StorageError(f"component tables of {self.url!r}: {exc}")

    def _query_components(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        with self._log.lock:
            self._check_open()
            try:
                return self._log.tables.execute(with_schema(statement, "main"), params).fetchall()
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _use(self, component: Component) -> None:
        with self._log.lock:
            self._check_open()
            self._in_sqlite_transaction(
                lambda: apply_component(self._log.tables, component, self.url)
            )

    def _component_versions(self) -> dict[str, int]:
        with self._log.lock:
            return {CORE_COMPONENT: 1, **component_versions(self._log.tables)}

    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        log = self._log
        with log.lock:
            self._check_open()
            tx = _ToyTransaction(self, log)

            def run() -> object:
                result = run_work(id(self), work, tx)
                check_finished(tx)
                return result

            result = self._in_sqlite_transaction(run)
            # The component rows are committed; the events join the log under the same lock,
            # so no reader sees one without the other.
            log.add(tx.staged)
            if tx.removals is not None:
                log.removed.apply(tx.removals, log.streams, log.replace)
        if tx.staged:
            log.notifier.notify()
        return result

    def _in_sqlite_transaction(self, body: Callable[[], object]) -> object:
        tables = self._log.tables
        try:
            tables.execute("BEGIN IMMEDIATE")
            try:
                result = body()
                tables.execute("COMMIT")
            except BaseException:
                if tables.in_transaction:
                    tables.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return result

    def _close(self) -> None:
        """Nothing to release: the log outlives the store, as a file would."""


class _ToyTransaction(SQLiteStatements):
    """Component rows in the log's SQLite database; events staged until the commit."""

    def __init__(self, store: ToyEventStore, log: ToyLog) -> None:
        super().__init__(log.tables, store.max_event_bytes, store._translate)
        self._log = log
        self.staged: list[StoredRow] = []
        self.removals: RowTransaction | None = None

    def _removals(self) -> RemovalTarget:
        if self.removals is None:
            self.removals = self._log.removed.target(self, self._log.streams)
        return self.removals

    def _stream_version(self, stream_name: str) -> int | None:
        for row in reversed(self.staged):
            if row.stream_name == stream_name:
                return row.stream_position
        stream = self._log.streams.get(stream_name)
        return stream[-1].stream_position if stream else None

    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        results, rows = self._log.plan(appends, self.staged)
        self.staged.extend(rows)
        return results


def open_toy(url: StoreURL, options: ConnectOptions) -> ToyEventStore:
    """The engine's opener: `toy://NAME` (a named log of this process) or `toy://` (a new one).

    Raises:
        InvalidURLError: the URL has a path or options.
    """
    if url.location or url.options:
        raise InvalidURLError(url.text, "a toy URL is toy://NAME, without a path or options")
    log = _named_log(url.host) if url.host else ToyLog()
    return ToyEventStore(
        log, url.text, max_event_bytes=options.max_event_bytes, read_only=options.read_only
    )
