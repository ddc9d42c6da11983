"""`EventStore`: the one API every engine offers, and the spec of its guarantees.

An engine subclasses `EventStore` and supplies a handful of primitives (an atomic append of
validated events, one page of a read, an import transaction); validation, paging, subscriptions,
export and import are written once here, so every engine behaves the same way.
"""

from __future__ import annotations

import abc
import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Final, Self, TypeVar, cast

import msgspec

from eventvault.errors import (
    ImportFileError,
    InvalidArgumentError,
    ReadOnlyStoreError,
    StoreClosedError,
    StoreForkedError,
)
from eventvault.serialization import (
    DEFAULT_MAX_EVENT_BYTES,
    FORBIDDEN_NAME_CHARACTERS,
    MAX_POSITION,
    ChainVerifier,
    canonical_json_problem,
    to_micros,
    validate_stream_name,
)
from eventvault.store._append import PendingAppend, StoredRow, prepare, prepare_many
from eventvault.store._fork import ForkGuard
from eventvault.store._removal import (
    METADATA_EVENT_TYPE,
    REMOVALS_STREAM,
    ImportedRemovals,
    RemovalRequest,
    check_metadata,
    check_text,
    metadata_from_record,
    remove,
    set_metadata,
)
from eventvault.store.notify import Notifier
from eventvault.store.seam import (
    AppendValidator,
    Component,
    Dialect,
    SQLRow,
    Transaction,
    guard_reentry,
    known_components,
    validate_appends,
)
from eventvault.store.subscription import Subscription
from eventvault.types import (
    AppendResult,
    EventHash,
    ExpectedVersion,
    NewEvent,
    PayloadEvent,
    RawEvent,
    RecordedEvent,
    Removal,
    StreamAppend,
    StreamInfo,
    StreamMetadata,
    StreamState,
)

__all__ = ["EventStore", "StoreStats", "Subscription"]

_Positioned = TypeVar("_Positioned", RecordedEvent, PayloadEvent)
_Global = TypeVar("_Global", RecordedEvent, RawEvent)
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")
_Cursor = TypeVar("_Cursor")

DEFAULT_PAGE_SIZE: Final = 1000


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Figures about a store.

    Attributes:
        event_count: events stored.
        stream_count: streams with at least one event.
        head_position: the global position of the last event (0 when empty).
        first_recorded_at: when the first event was recorded, None when empty.
        last_recorded_at: when the last event was recorded, None when empty.
    """

    event_count: int
    stream_count: int
    head_position: int
    first_recorded_at: datetime | None
    last_recorded_at: datetime | None


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and (type(limit) is not int or limit < 0):
        raise InvalidArgumentError("limit", limit, f"must be an int >= 0 or None, not {limit!r}")
    return limit


def _check_position(name: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise InvalidArgumentError(name, value, f"must be an int >= 0, not {value!r}")


def _check_filters(
    event_types: Sequence[str] | None, stream_prefix: str | None
) -> tuple[tuple[str, ...] | None, str | None]:
    # A filter with characters no name may hold could never match; on PostgreSQL a NUL would
    # not even reach the server. Refuse it the same way on every engine.
    types: tuple[str, ...] | None = None
    if event_types is not None:
        if isinstance(event_types, str) or not all(isinstance(t, str) for t in event_types):
            raise InvalidArgumentError(
                "event_types", event_types, f"must be a list of str, not {event_types!r}"
            )
        types = tuple(event_types)
        for event_type in types:
            if FORBIDDEN_NAME_CHARACTERS.search(event_type):
                raise InvalidArgumentError(
                    "event_types",
                    event_types,
                    f"holds {event_type!r}, which has control characters or lone surrogates, "
                    "which no event type holds",
                )
    if stream_prefix is not None:
        if not isinstance(stream_prefix, str) or not stream_prefix:
            raise InvalidArgumentError(
                "stream_prefix", stream_prefix, f"must be a non-empty str, not {stream_prefix!r}"
            )
        if FORBIDDEN_NAME_CHARACTERS.search(stream_prefix):
            raise InvalidArgumentError(
                "stream_prefix",
                stream_prefix,
                f"{stream_prefix!r} has control characters or lone surrogates, which no stream "
                "name holds",
            )
    return types, stream_prefix


def _next_stream_position(backwards: bool) -> Callable[[_Positioned], int | None]:
    """Where the page after one ending at an event starts, reading a stream."""
    if backwards:
        return lambda event: event.stream_position - 1 if event.stream_position > 0 else None
    return lambda event: event.stream_position + 1


def _next_global_position(backwards: bool) -> Callable[[_Global], int | None]:
    """The `after` of the page after one ending at an event, reading the global log."""
    if backwards:
        return lambda event: event.global_position if event.global_position > 1 else None
    return lambda event: event.global_position


def _stream_name(info: StreamInfo) -> str:
    return info.stream_name


def _hash_position(item: EventHash) -> int:
    return item.global_position


class EventStore(abc.ABC):
    """An append-only log of events in named streams: the system of record.

    Guarantees, held by every engine and checked by the contract suite in `eventvault.testing`:

    1. Append-only: no operation changes a stored event.
    2. Atomic appends: all events of one append (also of one `append_to_streams`) are stored,
       or none; a reader never sees part of one.
    3. Optimistic concurrency: `expected_version` is required; a mismatch raises
       `WrongExpectedVersionError` and writes nothing.
    4. Idempotent retries: re-sending an append whose event ids are stored, in the same stream at
       the same positions, returns the original result and stores nothing twice.
    5. Durability: when an append returns, its events survive a process crash.
    6. Order: within a stream by stream position; across the store by global position, in commit
       order. A reader never sees a global position that is later filled in below one it saw.
    7. Delivery: a subscription delivers every matching event exactly once, in order, from its
       catch-up into the live log without gap or duplicate.

    A store is a context manager; leaving the block closes it.

    Attributes:
        url: the URL the store was opened with, any password masked.
        max_event_bytes: the limit on one event's encoded data plus metadata.
        read_only: appends, imports and transactions are refused with `ReadOnlyStoreError`.
    """

    url: str
    max_event_bytes: int
    read_only: bool

    def __init__(
        self,
        url: str,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        read_only: bool = False,
    ) -> None:
        if type(max_event_bytes) is not int or max_event_bytes < 1:
            raise InvalidArgumentError(
                "max_event_bytes", max_event_bytes, f"must be an int >= 1, not {max_event_bytes!r}"
            )
        self.url = url
        self.max_event_bytes = max_event_bytes
        self.read_only = read_only
        self._closed = False
        self._subscriptions: set[Subscription] = set()
        self._subscriptions_lock = threading.Lock()
        self._components_in_use: dict[str, Component] = {}
        self.core_migrations_applied: list[int] = []
        """The versions of the store's own tables that opening it applied (a new or upgraded
        SQLite file, a PostgreSQL schema opened with `auto_migrate`)."""
        self._components_lock = threading.Lock()
        self._append_validator: AppendValidator | None = None
        self._opened_in = os.getpid()
        self._refused: str | None = None
        # Until the engine installs a guard of its own, a forked child refuses the store.
        self._fork_guard = ForkGuard(after_in_child=self._refuse_after_fork)

    # -- what the engine is ------------------------------------------------------------------

    @property
    def engine(self) -> str:
        """The engine's short name (`sqlite`, `memory`, `postgres`): by default the class name
        without `EventStore`, in lower case."""
        return type(self).__name__.removesuffix("EventStore").lower()

    @property
    def embedded(self) -> bool:
        """Whether the store lives in this process (and its files), not behind a server."""
        return False

    @property
    def storage_file(self) -> str | None:
        """The file that holds the store, or None when it has none (memory, a server)."""
        return None

    def storage_size(self) -> int | None:
        """The bytes the store takes on disk (with any log beside its file); None when it keeps
        no file this process can measure."""
        return None

    # -- engine primitives -------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def notifier(self) -> Notifier:
        """Bumped after every commit that adds events; live subscribers wait on it."""

    @abc.abstractmethod
    def _append(self, appends: list[PendingAppend]) -> list[AppendResult]:
        """Store validated appends atomically, all or none; one result per append."""

    @abc.abstractmethod
    def _read_stream_page(
        self, stream_name: str, start: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        """Up to `limit` events of a stream from position `start` (inclusive).

        Forwards, `start` None means 0; backwards, it means the end of the stream.
        """

    def _read_stream_payload_page(
        self, stream_name: str, start: int, limit: int
    ) -> list[PayloadEvent]:
        """Up to `limit` events of a stream from position `start` (inclusive), forwards, with
        their payload bytes. Engines override this with a query of the five columns; this
        fallback re-encodes decoded events."""
        encode = msgspec.json.encode
        return [
            PayloadEvent(
                event.stream_position,
                event.event_type,
                event.schema_version,
                encode(event.data),
                to_micros(event.recorded_at),
            )
            for event in self._read_stream_page(stream_name, start, False, limit)
        ]

    @abc.abstractmethod
    def _read_all_page(
        self,
        after: int,
        backwards: bool,
        limit: int,
        event_types: tuple[str, ...] | None,
        stream_prefix: str | None,
    ) -> list[RecordedEvent]:
        """Up to `limit` events of the log after global position `after` (forwards), or
        before it (backwards, where 0 means from the end)."""

    @abc.abstractmethod
    def _read_raw_page(self, after: int, limit: int) -> list[RawEvent]:
        """Up to `limit` events after global position `after`, with their stored bytes."""

    @abc.abstractmethod
    def _read_hash_page(self, after: int, limit: int) -> list[EventHash]:
        """Up to `limit` (global position, hash) pairs of the events after global position
        `after`, removed events included, in global order: what the audit tree is built of."""

    @abc.abstractmethod
    def _get_event(
        self, event_id: uuid.UUID | None, stream: tuple[str, int] | None
    ) -> RawEvent | None:
        """The event with an id, or at a stream position, removed or not, with its stored
        bytes (`removed_by` set for a removed one); None when there is none."""

    @abc.abstractmethod
    def _list_streams_page(self, after: str | None, limit: int) -> list[StreamInfo]:
        """Up to `limit` streams whose names sort after `after`, in name order, leaving out
        streams whose every event was removed."""

    @abc.abstractmethod
    def _import(self, batches: Iterator[list[StoredRow]], removals: ImportedRemovals) -> None:
        """Store verified rows, keeping their positions, in one transaction; roll it back if
        the iterator raises. Raises `NotEmptyError` when the store holds events.

        `removals` fills as the batches are read: once the last batch is stored, and before
        the commit, mark each event of `removals.marks` removed and record `removed_before`
        and metadata per stream (rows of erased events come with empty data and metadata)."""

    @abc.abstractmethod
    def _stream_metadata(self, stream_name: str) -> StreamMetadata:
        """A stream's metadata (the defaults when none was set)."""

    @abc.abstractmethod
    def _retained_streams(self) -> list[str]:
        """The streams whose metadata sets a retention, in name order."""

    @abc.abstractmethod
    def get_stream_version(self, stream_name: str) -> int | None:
        """The stream position of a stream's last event.

        Args:
            stream_name: the stream.

        Returns:
            The version (2 for a stream of three events), or None when the stream has no events.

        Raises:
            InvalidStreamNameError: the name breaks the naming rules.
        """

    @abc.abstractmethod
    def head_position(self) -> int:
        """The global position of the last event in the store (0 when it is empty)."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Counts and times that describe the store."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the engine's connections and files."""

    @property
    @abc.abstractmethod
    def dialect(self) -> Dialect:
        """The SQL dialect of the store's database, for statements on component tables:
        `sqlite` (SQLite, and the in-memory engine's component database) or `postgresql`."""

    @abc.abstractmethod
    def _query_components(self, statement: str, params: Sequence[object]) -> list[SQLRow]:
        """Run a read-only statement on component tables, outside any transaction."""

    @abc.abstractmethod
    def _use(self, component: Component) -> None:
        """Bring a component's tables to its newest version, under a lock that serializes
        migrations across processes; or raise `MigrationRequiredError` where this store may
        not migrate."""

    @abc.abstractmethod
    def _component_versions(self) -> dict[str, int]:
        """The version of every component whose tables the store holds (the store's own as
        `eventvault`)."""

    @abc.abstractmethod
    def _run_transaction(self, work: Callable[[Transaction], object]) -> object:
        """Run `work(tx)` in one transaction on the store's database and commit it (or roll it
        back when the work raises, and re-raise); return what the work returned."""

    # -- writing -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        # Hot reads call this only `if self._closed:`, which costs a fraction of the call.
        if self._closed:
            if self._refused is not None:
                raise StoreForkedError(self.url, self._refused, self._opened_in, os.getpid())
            raise StoreClosedError(self.url)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                self.url, "it was opened with read_only=True; open it again to write"
            )

    def append_to_stream(
        self,
        stream_name: str,
        events: Sequence[NewEvent],
        *,
        expected_version: ExpectedVersion,
    ) -> AppendResult:
        """Append events to a stream, atomically, if its version is as expected.

        Args:
            stream_name: the stream, 1 to 200 characters without control characters.
            events: one or more events, stored in this order at consecutive positions.
            expected_version: `StreamState.ANY`, `StreamState.NO_STREAM`,
                `StreamState.STREAM_EXISTS`, or the stream position of the stream's last event.

        Returns:
            The stream position and global position of the last event written. A retry of an
            append already stored (same event ids, same stream, same positions) returns the
            original result and writes nothing.

        Raises:
            WrongExpectedVersionError: the stream's version is not the expected one.
            DuplicateEventIdError: an event id is stored elsewhere.
            InvalidStreamNameError, InvalidEventError, PayloadTooLargeError,
            InvalidExpectedVersionError: bad input.
            ReadOnlyStoreError: the store was opened read-only; nothing was written.
            StorageError: the engine failed; the append was not stored.
        """
        return self._append(self._prepare_append(stream_name, events, expected_version))[0]

    def _prepare_append(
        self, stream_name: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> list[PendingAppend]:
        """Check that the store takes appends, and validate and encode one: what both faces of
        `append_to_stream` do before they hand it to the engine."""
        self._check_open()
        self._check_writable()
        guard_reentry(id(self), self.url)
        pending = prepare(stream_name, events, expected_version, self.max_event_bytes)
        if self._append_validator is not None:
            self._append_validator(pending.stream_name, pending.events)
        return [pending]

    def _prepare_appends(self, appends: Sequence[StreamAppend]) -> list[PendingAppend]:
        """`_prepare_append` for `append_to_streams`."""
        self._check_open()
        self._check_writable()
        guard_reentry(id(self), self.url)
        pending = prepare_many(appends, self.max_event_bytes)
        if self._append_validator is not None:
            validate_appends(self._append_validator, pending)
        return pending

    async def _append_async(self, appends: list[PendingAppend]) -> list[AppendResult]:
        """`_append` for the async face, awaited on the event loop.

        By default it runs `_append` in a worker thread; an engine with a group commit
        overrides it to queue the appends from the loop itself (`GroupCommitter.submit_async`),
        so that concurrent coroutines share commits without a thread each.
        """
        return await asyncio.to_thread(self._append, appends)

    def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Append to several streams in one atomic transaction.

        Every stream's expected version is checked; if any does not match, nothing is written.

        Args:
            appends: one `StreamAppend` per stream (a stream may appear once).

        Returns:
            One result per `StreamAppend`, in order.

        Raises:
            WrongExpectedVersionError: naming the first stream whose version did not match.
            The other errors of `append_to_stream`.
        """
        return self._append(self._prepare_appends(appends))

    @property
    def append_validator(self) -> AppendValidator | None:
        """The check every append of this store object passes before it is written, or None."""
        return self._append_validator

    def set_append_validator(self, validator: AppendValidator | None) -> None:
        """Check every append of this store object (`append_to_stream`, `append_to_streams`,
        and appends inside `run_transaction`) before anything is written.

        The validator is called once per stream of an append, after the events are validated
        and encoded and before the engine sees them; when it raises, the whole append is
        refused and nothing is written. It holds for this store object, in this process: the
        schema registry installs one (`SchemaRegistry.enforce`). A store without one pays
        nothing for the hook.

        Args:
            validator: the check, or None to remove it.

        Raises:
            InvalidArgumentError: `validator` is neither callable nor None.
        """
        self._check_open()
        if validator is not None and not callable(validator):
            raise InvalidArgumentError(
                "validator", validator, f"must be callable or None, not {validator!r}"
            )
        self._append_validator = validator

    # -- removal: the documented exceptions to append-only ----------------------------------

    def delete_stream(
        self,
        stream_name: str,
        *,
        hard: bool = False,
        expected_version: ExpectedVersion = StreamState.ANY,
        actor: str,
        reason: str,
    ) -> Removal:
        """Remove every event of a stream from reads, keeping each event's hash.

        A soft delete hides the events: no read returns them, but their bytes stay in the
        store (and in exports) until a hard delete, a truncation or retention erases them. A
        hard delete also erases their data and metadata. Either way each event keeps its
        positions, id, type, time and hash, so every hash chain and audit proof still
        verifies, and the stream keeps its version: a later append continues it (one that
        expects `NO_STREAM` fails). The removal is recorded, in the same transaction, by an
        `EventsRemoved` event in the stream `$removals` naming who, when, what and why.

        Args:
            stream_name: the stream; system streams (named `$...`) cannot be removed.
            hard: erase the payloads too.
            expected_version: the stream's version the caller expects (`StreamState.ANY`:
                any).
            actor: who deletes it, recorded.
            reason: why, recorded.

        Returns:
            The `Removal`; its `count` is 0 (and nothing is recorded) when every event was
            already removed this way.

        Raises:
            StreamNotFoundError: the stream has no events.
            WrongExpectedVersionError: the stream's version is not the expected one.
            InvalidArgumentError: a system stream, or an empty actor or reason.
            ReadOnlyStoreError: the store was opened read-only.
        """
        if type(hard) is not bool:
            raise InvalidArgumentError("hard", hard, f"must be True or False, not {hard!r}")
        request = RemovalRequest(
            stream_name,
            "hard-delete" if hard else "soft-delete",
            actor,
            reason,
            expected_version=expected_version,
        )
        return self._run_removal(request)

    def truncate_stream(self, stream_name: str, *, before: int, actor: str, reason: str) -> Removal:
        """Remove a stream's events before a position, erasing their payloads and keeping
        their hashes.

        Later events stay readable; reads of the stream start at `before`. Each removed event
        keeps its positions, id, type, time and hash, so every hash chain and audit proof
        still verifies. Recorded like `delete_stream`. Snapshots of the stream from before
        `before` are deleted with them (`Component.on_stream_removal`).

        Args:
            stream_name: the stream.
            before: the first stream position to keep; at most the stream's version + 1
                (which removes every event).
            actor: who truncates it, recorded.
            reason: why, recorded.

        Returns:
            The `Removal` (`count` 0 when those events were already erased).

        Raises:
            StreamNotFoundError: the stream has no events.
            InvalidArgumentError: `before` is not an int >= 0 or lies past the stream's end, a
                system stream, or an empty actor or reason.
            ReadOnlyStoreError: the store was opened read-only.
        """
        _check_position("before", before)
        return self._run_removal(
            RemovalRequest(stream_name, "truncate", actor, reason, before=before)
        )

    def set_stream_metadata(
        self, stream_name: str, metadata: StreamMetadata, *, actor: str, reason: str
    ) -> None:
        """Set a stream's metadata: its retention (`StreamMetadata`), applied by
        `enforce_retention`.

        The change is recorded, in the same transaction, by a `StreamMetadataSet` event in
        `$removals`. The stream need not exist yet.

        Args:
            stream_name: the stream; not a system stream (`$...`).
            metadata: the new metadata, replacing the old.
            actor: who sets it, recorded.
            reason: why, recorded.

        Raises:
            InvalidArgumentError: bad metadata, a system stream, or an empty actor or reason.
            ReadOnlyStoreError: the store was opened read-only.
        """
        RemovalRequest(stream_name, "retention", actor, reason)  # the same checks
        check_metadata(metadata)
        self._check_open()
        self._check_writable()
        guard_reentry(id(self), self.url)
        self._set_metadata(stream_name, metadata, actor, reason)

    def _set_metadata(
        self, stream_name: str, metadata: StreamMetadata, actor: str, reason: str
    ) -> None:
        """Store checked metadata and its record, in a transaction of the store's database
        (an engine whose store lives elsewhere, the HTTP client, sends the change instead)."""
        self.run_transaction(
            lambda tx: set_metadata(tx._removals(), stream_name, metadata, actor, reason)
        )

    def get_stream_metadata(self, stream_name: str) -> StreamMetadata:
        """A stream's metadata.

        Args:
            stream_name: the stream (it need not exist).

        Returns:
            Its `StreamMetadata`; the defaults (no retention) when none was set.

        Raises:
            InvalidStreamNameError: the name breaks the naming rules.
        """
        self._check_open()
        validate_stream_name(stream_name)
        return self._stream_metadata(stream_name)

    def retained_streams(self) -> list[str]:
        """The streams whose metadata sets a retention: those `enforce_retention` visits.

        Returns:
            Their names, in name order (streams whose every event was removed included).
        """
        self._check_open()
        return self._retained_streams()

    def enforce_retention(self, *, actor: str, reason: str = "retention policy") -> list[Removal]:
        """Remove, in every stream whose metadata sets a retention, the events it no longer
        keeps: those older than `max_age` and those beyond the newest `max_count`.

        Each stream is one removal in a transaction of its own (erasing payloads, keeping
        hashes, recorded in `$removals` with kind `retention`). Run it periodically (`eventvault
        streams retain`, from cron or a timer); it removes only a prefix of each stream: an
        event is kept while any event before it is younger than `max_age`.

        Args:
            actor: who runs it, recorded.
            reason: why, recorded.

        Returns:
            The removals that removed something, by stream name.

        Raises:
            InvalidArgumentError: an empty actor or reason.
            ReadOnlyStoreError: the store was opened read-only.
        """
        check_text("actor", actor)
        check_text("reason", reason)
        self._check_open()
        self._check_writable()
        return self._enforce_retention(actor, reason)

    def _enforce_retention(self, actor: str, reason: str) -> list[Removal]:
        """Apply every stream's retention, one removal per stream (an engine whose store lives
        elsewhere, the HTTP client, asks the store's side to do it)."""
        removals = []
        for name in self._retained_streams():
            if self.get_stream_version(name) is None:
                continue
            removal = self._run_removal(RemovalRequest(name, "retention", actor, reason))
            if removal.count:
                removals.append(removal)
        return removals

    def _run_removal(self, request: RemovalRequest) -> Removal:
        self._check_open()
        self._check_writable()
        guard_reentry(id(self), self.url)
        return self._remove(request)

    def _remove(self, request: RemovalRequest) -> Removal:
        """Apply one checked removal in a transaction of the store's database, with what the
        components derived from the stream (an engine whose store lives elsewhere, the HTTP
        client, sends the request instead)."""
        # Components that may hold data derived from the stream: the registered ones, and any
        # this store used.
        components = {c.name: c for c in known_components()}
        components.update(self._components_in_use)
        chosen = list(components.values())
        return self.run_transaction(lambda tx: remove(tx._removals(), request, chosen))

    # -- storage beside the events (the seam) ------------------------------------------------

    def use(self, component: Component) -> None:
        """Make a component's tables ready in this store: create or upgrade them to the
        component's newest version, once per store object.

        Migrations are versioned per component, recorded in the database and serialized
        across processes; running them again applies nothing. SQLite and in-memory stores
        migrate when they are used; a PostgreSQL store only when opened with
        `?auto_migrate=true` (otherwise `eventvault migrate URL` does it).

        Args:
            component: the component, as its feature declares it.

        Raises:
            MigrationRequiredError: the tables are older than the component and this store
                may not migrate them.
            SchemaVersionError: the tables are newer than this eventvault knows.
            StorageError: a migration failed; nothing of it was applied.
        """
        self._check_open()
        if component.name in self._components_in_use:
            return
        with self._components_lock:
            if component.name not in self._components_in_use:
                self._use(component)
                self._components_in_use[component.name] = component

    def query(self, statement: str, params: Sequence[object] = ()) -> list[SQLRow]:
        """Read rows of component tables, outside any transaction: what is committed.

        On SQLite it runs on a reader connection, so it never waits for the writer.

        Args:
            statement: a query in the store's `dialect`, `{schema}` standing for the schema of
                the store's tables.
            params: its parameters.

        Returns:
            The rows, values as the driver gives them.

        Raises:
            StorageError: the query failed.
        """
        if self._closed:
            self._check_open()
        return self._query_components(statement, params)

    def component_versions(self) -> dict[str, int]:
        """The version of every component whose tables this store holds.

        Returns:
            Component name to version; the store's own tables appear as `eventvault`.
        """
        self._check_open()
        return self._component_versions()

    def run_transaction(self, work: Callable[[Transaction], _Result]) -> _Result:
        """Run `work(tx)` in one transaction on the store's own database.

        Everything the work does through `tx` (rows of components, appends with
        `tx.append_to_stream` / `tx.append_to_streams`) commits together when it returns, or
        not at all when it raises (the error is re-raised), also when the process dies
        half-way. Appends keep every guarantee of an ordinary append: expected versions,
        idempotent retries, order, the hash chain, notifications.

        On SQLite the work runs on the store's single writer, inside its group commit: keep
        it short, it holds up every append meanwhile. On PostgreSQL a transaction that
        collides with another writer (a deadlock, a serialization failure) is rolled back and
        the work is run again, so the work must have no effect outside `tx`.

        Args:
            work: a function of the transaction; its result is returned.

        Returns:
            What the work returned.

        Raises:
            TransactionUsageError: the work appended through the store instead of `tx`, or
                carried on after one of its statements failed.
            ReadOnlyStoreError: the store was opened read-only (read with `query`).
            StorageError: a statement or the commit failed; nothing was stored.
            The errors of `append_to_stream`, and whatever the work raises.
        """
        self._check_open()
        self._check_writable()
        guard_reentry(id(self), self.url)
        validator = self._append_validator
        if validator is None:
            return cast(_Result, self._run_transaction(work))

        def validated(tx: Transaction) -> _Result:
            tx.append_validator = validator
            return work(tx)

        return cast(_Result, self._run_transaction(validated))

    # -- reading -----------------------------------------------------------------------------

    def read_stream(
        self,
        stream_name: str,
        *,
        from_position: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Read a stream's events, lazily, a page at a time.

        Args:
            stream_name: the stream; one that does not exist reads as empty.
            from_position: the first stream position to read (inclusive). None: the start
                (forwards) or the last event (backwards). Past the largest position a store
                holds (`2**63 - 1`), where no event can be: forwards reads nothing, backwards
                reads from the last event.
            backwards: read from newer to older.
            limit: the most events to yield; None for all.

        Returns:
            An iterator of events in stream order (or reverse stream order).

        Raises:
            InvalidStreamNameError: the name breaks the naming rules.
            InvalidArgumentError: `from_position` or `limit` is not an int >= 0.
        """
        self._check_open()
        validate_stream_name(stream_name)
        _check_position("from_position", from_position)
        _check_limit(limit)
        if from_position is not None and from_position > MAX_POSITION:
            if not backwards:
                return iter(())
            from_position = None
        return self._iter_stream(stream_name, from_position, backwards, limit)

    def _iter_stream(
        self, stream_name: str, start: int | None, backwards: bool, limit: int | None
    ) -> Iterator[RecordedEvent]:
        def fetch(position: int | None, size: int) -> list[RecordedEvent]:
            return self._read_stream_page(stream_name, position, backwards, size)

        return self._paginate(fetch, start, _next_stream_position(backwards), limit)

    def _paginate(
        self,
        fetch: Callable[[_Cursor, int], list[_Item]],
        cursor: _Cursor,
        advance: Callable[[_Item], _Cursor | None],
        limit: int | None = None,
    ) -> Iterator[_Item]:
        """The one paging loop of every read: pages of `fetch(cursor, size)` until a short
        page, `limit` items, or `advance(last item)` gives None (nothing lies beyond it).

        The store is checked for close before every page, so an iterator left open fails
        cleanly instead of reading from closed connections.
        """
        remaining = limit
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            if self._closed:
                self._check_open()
            page = fetch(cursor, size)
            yield from page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            following = advance(page[-1])
            if following is None:
                return
            cursor = following

    def read_stream_payloads(
        self,
        stream_name: str,
        *,
        from_position: int | None = None,
        limit: int | None = None,
    ) -> Iterator[PayloadEvent]:
        """Read a stream's events forwards with their payloads undecoded, lazily, a page at a time.

        For readers that decode payloads into known types themselves (aggregate loads): it
        skips the work of building `RecordedEvent`s.

        Args:
            stream_name: the stream; one that does not exist reads as empty.
            from_position: the first stream position to read (inclusive); None: 0. Past the
                largest position a store holds (`2**63 - 1`) it reads nothing.
            limit: the most events to yield; None for all.

        Returns:
            An iterator of `PayloadEvent` in stream order.

        Raises:
            InvalidStreamNameError: the name breaks the naming rules.
            InvalidArgumentError: `from_position` or `limit` is not an int >= 0.
        """
        if self._closed:
            self._check_open()
        validate_stream_name(stream_name)
        _check_position("from_position", from_position)
        _check_limit(limit)
        if from_position is not None and from_position > MAX_POSITION:
            return iter(())

        def fetch(position: int | None, size: int) -> list[PayloadEvent]:
            return self._read_stream_payload_page(stream_name, position or 0, size)

        return self._paginate(fetch, from_position, _next_stream_position(False), limit)

    def read_all(
        self,
        *,
        after: int = 0,
        backwards: bool = False,
        limit: int | None = None,
        event_types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> Iterator[RecordedEvent]:
        """Read the global log, lazily, a page at a time.

        Args:
            after: a global position. Forwards, the events after it (0: from the start);
                backwards, the events before it (0: from the end). From the largest position
                a store holds (`2**63 - 1`) on, where no event can be, forwards reads nothing
                and backwards reads from the end.
            backwards: read from newer to older.
            limit: the most events to yield; None for all.
            event_types: only events of these types.
            stream_prefix: only events of streams whose names start with this.

        Returns:
            An iterator of events in global order (or reverse global order).

        Raises:
            InvalidArgumentError: `after` or `limit` is not an int >= 0, `event_types` is not
                a list of str, `stream_prefix` is empty, or a filter holds characters no name
                holds.
        """
        self._check_open()
        _check_position("after", after)
        _check_limit(limit)
        types, prefix = _check_filters(event_types, stream_prefix)
        if after > MAX_POSITION:
            if not backwards:
                return iter(())
            after = 0
        return self._iter_all(after, backwards, limit, types, prefix)

    def _iter_all(
        self,
        after: int,
        backwards: bool,
        limit: int | None,
        types: tuple[str, ...] | None,
        prefix: str | None,
    ) -> Iterator[RecordedEvent]:
        def fetch(position: int, size: int) -> list[RecordedEvent]:
            return self._read_all_page(position, backwards, size, types, prefix)

        return self._paginate(fetch, after, _next_global_position(backwards), limit)

    def list_streams(self) -> Iterator[StreamInfo]:
        """Every stream with at least one event, in name order, lazily.

        Returns:
            An iterator of `StreamInfo`.
        """
        self._check_open()
        return self._paginate(self._list_streams_page, None, _stream_name)

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe_to_all(
        self,
        *,
        after: int = 0,
        event_types: Sequence[str] | None = None,
        stream_prefix: str | None = None,
    ) -> Subscription:
        """Follow the global log: catch up from a position, then wait for live events.

        Args:
            after: deliver events after this global position (0: from the start). From the
                largest position a store holds (`2**63 - 1`) on, no event can follow: the
                subscription waits and delivers nothing.
            event_types: only events of these types.
            stream_prefix: only events of streams whose names start with this.

        Returns:
            A `Subscription`: iterate it to receive events, each exactly once, in global order;
            `close()` it (from any thread) to end the iteration. While the store is unavailable
            (`StoreUnavailableError`) it waits and retries instead of ending.

        Raises:
            InvalidArgumentError: `after` is not an int >= 0, or a filter is malformed.
        """
        self._check_open()
        _check_position("after", after)
        types, prefix = _check_filters(event_types, stream_prefix)

        filtered = types is not None or prefix is not None

        def fetch(position: int) -> tuple[list[RecordedEvent], int]:
            if position >= MAX_POSITION:
                return [], position
            # A filter may match nothing for a long stretch of the log: note how far the log
            # was settled before the read, so that the next poll starts there instead of
            # scanning the same non-matching events again.
            settled = self.head_position() if filtered else 0
            page = self._read_all_page(position, False, DEFAULT_PAGE_SIZE, types, prefix)
            if page:
                last = page[-1].global_position
                return page, max(last, settled) if len(page) < DEFAULT_PAGE_SIZE else last
            return page, max(position, settled)

        return self._register(Subscription(self, fetch, after, global_order=True))

    def subscribe_to_stream(self, stream_name: str, *, after: int | None = None) -> Subscription:
        """Follow one stream: catch up from a position, then wait for live events.

        Args:
            stream_name: the stream (it need not exist yet).
            after: deliver events after this stream position; None: from the start. From the
                largest position a store holds (`2**63 - 1`) on, no event can follow: the
                subscription waits and delivers nothing.

        Returns:
            A `Subscription` delivering the stream's events in stream order; it waits through
            outages of the store like `subscribe_to_all`'s.

        Raises:
            InvalidStreamNameError: the name breaks the naming rules.
            InvalidArgumentError: `after` is not an int >= 0.
        """
        self._check_open()
        validate_stream_name(stream_name)
        _check_position("after", after)

        def fetch(position: int) -> tuple[list[RecordedEvent], int]:
            if position >= MAX_POSITION:
                return [], position
            page = self._read_stream_page(stream_name, position + 1, False, DEFAULT_PAGE_SIZE)
            return page, page[-1].stream_position if page else position

        start = -1 if after is None else after
        return self._register(Subscription(self, fetch, start, global_order=False))

    def _register(self, subscription: Subscription) -> Subscription:
        with self._subscriptions_lock:
            self._subscriptions.add(subscription)
        return subscription

    def _unregister(self, subscription: Subscription) -> None:
        with self._subscriptions_lock:
            self._subscriptions.discard(subscription)

    # -- export and import -------------------------------------------------------------------

    def export_events(self, *, after: int = 0, until: int | None = None) -> Iterator[RawEvent]:
        """The log after a position, with the exact stored bytes of every event.

        Args:
            after: export the events after this global position (0: from the start); from
                the largest a store holds (`2**63 - 1`) on, where no event can follow, none.
            until: export no event after this global position (inclusive); None: read on to
                the end of the log, including events appended while the iterator runs. An
                export bounded by the head seen when it began (`head_position()`) holds exactly
                the log of that moment: events appended later are for the next export.

        Returns:
            A lazy iterator of `RawEvent` in global order, for `import_events` into another
            store (of any engine) or for an export file (`eventvault.export`).

        Raises:
            InvalidArgumentError: `after` or `until` is not an int >= 0 (at the call).
        """
        self._check_open()
        _check_position("after", after)
        _check_position("until", until)
        if after >= MAX_POSITION:
            return iter(())
        return self._iter_raw(after, until)

    def _iter_raw(self, after: int, until: int | None) -> Iterator[RawEvent]:
        advance = _next_global_position(False)
        if until is None:
            return self._paginate(self._read_raw_page, after, advance)
        bound = until

        def fetch(position: int, size: int) -> list[RawEvent]:
            # Positions rise by at least one per event, so at most `bound - position` rows lie
            # within the bound: a page asked for fewer rows, or cut at the bound, is short and
            # ends the loop, rightly, since nothing within the bound follows it.
            if position >= bound:
                return []
            page = self._read_raw_page(position, min(size, bound - position))
            return [event for event in page if event.global_position <= bound]

        return self._paginate(fetch, after, advance)

    def get_event(
        self,
        event_id: uuid.UUID | None = None,
        *,
        stream_name: str | None = None,
        stream_position: int | None = None,
    ) -> RawEvent | None:
        """One event, by its id or by its stream and position, with its stored bytes: what an
        audit proof names. Removed events are found too (see `RawEvent.removed_by`).

        Args:
            event_id: the event's id; or else
            stream_name: its stream, and
            stream_position: its position there.

        Returns:
            The event, or None when there is none.

        Raises:
            InvalidArgumentError: neither or both forms given, or a bad position.
            InvalidStreamNameError: the stream name breaks the naming rules.
        """
        self._check_open()
        if event_id is not None:
            if stream_name is not None or stream_position is not None:
                raise InvalidArgumentError(
                    "event_id", event_id, "give an event id, or a stream and position, not both"
                )
            if type(event_id) is not uuid.UUID:
                raise InvalidArgumentError(
                    "event_id", event_id, f"must be a uuid.UUID, not {type(event_id).__name__}"
                )
            return self._get_event(event_id, None)
        if stream_name is None or stream_position is None:
            raise InvalidArgumentError(
                "event_id", None, "give an event id, or a stream name and a stream position"
            )
        validate_stream_name(stream_name)
        _check_position("stream_position", stream_position)
        if stream_position > MAX_POSITION:
            return None
        return self._get_event(None, (stream_name, stream_position))

    def read_hashes(self, *, after: int = 0, limit: int | None = None) -> Iterator[EventHash]:
        """The global position and hash of every event after a position, lazily: the log as
        the audit tree covers it.

        Removed events are included (they keep their hashes); on PostgreSQL only events that
        readers may see (no position below them can still be filled in).

        Args:
            after: the events after this global position (0: from the start).
            limit: the most to yield; None for all.

        Returns:
            An iterator of `EventHash` in global order.

        Raises:
            InvalidArgumentError: `after` or `limit` is not an int >= 0.
        """
        self._check_open()
        _check_position("after", after)
        _check_limit(limit)
        if after >= MAX_POSITION:
            return iter(())
        return self._paginate(self._read_hash_page, after, _hash_position, limit)

    def import_events(
        self,
        events: Iterable[RawEvent],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Load exported events into this empty store, keeping ids, positions, times, hashes.

        Every event's hash is recomputed and checked against its bytes and the previous hash of
        its stream, and its positions checked, before anything is committed; all events are
        stored in one transaction, so a bad event leaves the store as empty as it was. Payload
        bytes must be in the canonical form an append writes (`canonical_json_problem`), as
        every export holds them: then every event read back re-encodes to the bytes its hash
        covers, which `verify_chain(store.read_stream(...))` relies on.

        Removed events (`RawEvent.removed_by`) are imported removed, as the source held them:
        an erased one keeps only its hash, which the next event of its stream chains to. The
        retention of each stream is taken from its last `StreamMetadataSet` record.

        Args:
            events: events in global order, as `export_events` gives them.
            on_progress: called with the number of events checked so far, every 1,000 events.

        Returns:
            The number of events imported.

        Raises:
            NotEmptyError: the store already holds events.
            HashChainError: an event's bytes do not match its hash (the file was changed).
            ImportFileError: positions out of order or with gaps, a field no append could have
                stored, or data or metadata bytes that are not canonical JSON objects or nest
                deeper than `MAX_NESTING_DEPTH` levels.
            ReadOnlyStoreError: the store was opened read-only.
        """
        self._check_open()
        self._check_writable()
        verifier = ChainVerifier()
        removals = ImportedRemovals()

        def batches() -> Iterator[list[StoredRow]]:
            batch: list[StoredRow] = []
            for event in events:
                try:
                    data, metadata = verifier.check(event)
                except ValueError as exc:
                    raise ImportFileError(str(exc)) from exc
                for name, raw in (("data", data), ("metadata", metadata)):
                    problem = None if not raw else canonical_json_problem(raw)
                    if problem is not None:
                        raise ImportFileError(
                            f"{event.stream_name!r}@{event.stream_position}: {name} {problem}"
                        )
                if event.removed_by is not None:
                    removals.take(
                        event.stream_name,
                        event.stream_position,
                        event.global_position,
                        event.removed_by,
                    )
                elif (
                    event.stream_name == REMOVALS_STREAM and event.event_type == METADATA_EVENT_TYPE
                ):
                    found = metadata_from_record(data)
                    if found is not None:
                        removals.metadata[found[0]] = found[1]
                batch.append(
                    StoredRow(
                        event.stream_name,
                        event.stream_position,
                        event.global_position,
                        event.event_id.bytes,
                        event.event_type,
                        event.schema_version,
                        data,
                        metadata,
                        to_micros(event.recorded_at),
                        bytes.fromhex(event.hash),
                    )
                )
                if len(batch) >= DEFAULT_PAGE_SIZE:
                    yield batch
                    batch = []
                    if on_progress is not None:
                        on_progress(verifier.count)
            if batch:
                yield batch
            if on_progress is not None:
                on_progress(verifier.count)

        self._import(batches(), removals)
        if verifier.count:
            self.notifier.notify()
        return verifier.count

    # -- lifecycle ---------------------------------------------------------------------------

    def _refuse_after_fork(self, reason: str | None = None) -> None:
        """In a forked child: make every operation raise `StoreForkedError`; `close()` then
        does nothing, so the child never touches what it shares with its parent.

        The default for an engine that installs no `ForkGuard` of its own.
        """
        if self._closed:
            return
        self._refused = reason or (
            f"the {self.engine} engine does not carry a store across fork(); open a new store "
            "in the child"
        )
        self._closed = True

    def _refuses_fork(self, *, paused: bool, in_transaction: bool) -> bool:
        """In a forked child, before an engine rebuilds the store: refuse it when its state at
        the fork cannot be trusted.

        Args:
            paused: the engine's `before` hook ran for the store; if not, another thread was
                still opening it when the process forked, and it may be half made.
            in_transaction: the fork came from inside one of the store's own transactions,
                which the child would inherit half done.

        Returns:
            True when the store is closed or now refused: the engine rebuilds nothing.
        """
        if self._closed:
            return True
        if not paused:
            self._refuse_after_fork("it was being opened while the process forked")
        elif in_transaction:
            self._refuse_after_fork(
                "the process forked inside one of its transactions (run_transaction); fork "
                "outside them"
            )
        else:
            return False
        return True

    def _forked(self) -> None:
        """In a forked child whose engine rebuilt the store: the base's own locks may have been
        held by a thread that does not exist here."""
        self._subscriptions_lock = threading.Lock()
        self._components_lock = threading.Lock()
        self._opened_in = os.getpid()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def close(self) -> None:
        """Close the store and end its subscriptions. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        with self._subscriptions_lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.close()
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.url!r} ({state})>"
