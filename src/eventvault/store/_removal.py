"""The engine-independent rules of removal: stream deletion, truncation and retention.

The log is append-only; the one exception is a removal, which hides a prefix of a stream's
events from every read and (except a soft delete) erases their payloads, keeping each event's
positions, id, type, time and hash, so that every hash chain, Merkle tree and proof over the log
still verifies. A removal always covers a prefix of its stream: a stream's events before
`removed_before` are removed, those from it on are not. Every removal is recorded by an
`EventsRemoved` event in the stream `$removals`, appended in the same transaction (who, when,
what, why); every changed event names that record in `removed_by`.

`remove` decides and applies one removal inside one of the store's transactions, against a
`RemovalTarget`: the SQL engines' events are tables of the transaction's own database
(`SQLRemovals`, one set of statements per dialect); engines that keep their rows in Python lists
use `RowRemovals`. Components that keep data derived from a stream's events declare statements
(`Component.on_stream_removal`) that run in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Protocol

import msgspec

from eventvault.errors import (
    InvalidArgumentError,
    InvalidExpectedVersionError,
    StorageError,
    StreamNotFoundError,
    WrongExpectedVersionError,
)
from eventvault.serialization import MAX_POSITION, now_micros, validate_stream_name
from eventvault.store._append import StoredRow, version_matches
from eventvault.store.seam import Component, Dialect, Transaction
from eventvault.types import (
    METADATA_EVENT_TYPE,
    REMOVALS_STREAM,
    REMOVED_EVENT_TYPE,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    Removal,
    RemovalKind,
    StreamMetadata,
    StreamState,
)

__all__ = [
    "METADATA_EVENT_TYPE",
    "REMOVALS_STREAM",
    "REMOVED_EVENT_TYPE",
    "ImportedRemovals",
    "RemovalRequest",
    "RemovalTarget",
    "RowRemovals",
    "SQLRemovals",
    "check_metadata",
    "metadata_from_record",
    "remove",
    "set_metadata",
]

SYSTEM_PREFIX: Final = "$"
"""Streams whose names start with this hold the store's own records; they cannot be removed."""
_MICROS: Final = timedelta(microseconds=1)
_LONGEST_AGE: Final = timedelta(microseconds=MAX_POSITION)
"""The longest `max_age` a store's column of microseconds holds (about 292,000 years)."""


@dataclass(frozen=True, slots=True)
class RemovalRequest:
    """One removal asked of the store, validated.

    Attributes:
        stream_name: the stream.
        kind: what to remove: `truncate` (the events before `before`), `soft-delete` and
            `hard-delete` (every event), `retention` (what the stream's metadata says).
        actor: who asks (recorded).
        reason: why (recorded).
        before: for `truncate`, the first stream position to keep.
        expected_version: for the deletes, the stream's version the caller expects.
    """

    stream_name: str
    kind: RemovalKind
    actor: str
    reason: str
    before: int | None = None
    expected_version: ExpectedVersion = StreamState.ANY

    def __post_init__(self) -> None:
        validate_stream_name(self.stream_name)
        if self.stream_name.startswith(SYSTEM_PREFIX):
            raise InvalidArgumentError(
                "stream_name",
                self.stream_name,
                f"{self.stream_name!r} is a system stream (its name starts with "
                f"{SYSTEM_PREFIX!r}): it holds the store's own records, which cannot be removed",
            )
        check_text("actor", self.actor)
        check_text("reason", self.reason)
        expected = self.expected_version
        if type(expected) is not StreamState and not (type(expected) is int and expected >= 0):
            raise InvalidExpectedVersionError(expected)


def check_text(name: str, value: object) -> str:
    """Refuse an actor or reason that is not a non-empty str of at most 1,000 characters."""
    if type(value) is not str or not value.strip() or len(value) > 1000:
        raise InvalidArgumentError(
            name, value, f"must be a non-empty str of at most 1000 characters, not {value!r:.60}"
        )
    return value


def check_metadata(metadata: object) -> StreamMetadata:
    """Refuse stream metadata with values no retention can apply.

    Raises:
        InvalidArgumentError: not a `StreamMetadata`, a `max_age` that is not a positive
            timedelta of at most `2**63 - 1` microseconds, or a `max_count` that is not an int
            from 1 to `2**63 - 1` (what the store's columns hold).
    """
    if not isinstance(metadata, StreamMetadata):
        raise InvalidArgumentError(
            "metadata", metadata, f"must be a StreamMetadata, not {type(metadata).__name__}"
        )
    age, count = metadata.max_age, metadata.max_count
    if age is not None and (
        not isinstance(age, timedelta) or not timedelta(0) < age <= _LONGEST_AGE
    ):
        raise InvalidArgumentError(
            "max_age",
            age,
            f"must be a positive timedelta of at most {_LONGEST_AGE.days} days or None, "
            f"not {age!r}",
        )
    if count is not None and (type(count) is not int or not 1 <= count <= MAX_POSITION):
        raise InvalidArgumentError(
            "max_count", count, f"must be an int from 1 to 2**63 - 1 or None, not {count!r}"
        )
    return metadata


def metadata_row(metadata: StreamMetadata) -> tuple[int | None, int | None]:
    """(max_age in microseconds, max_count): the columns that store a stream's metadata."""
    age = None if metadata.max_age is None else metadata.max_age // _MICROS
    return age, metadata.max_count


def metadata_of(max_age_us: object, max_count: object) -> StreamMetadata:
    """A `StreamMetadata` from its stored columns."""
    return StreamMetadata(
        max_age=None if max_age_us is None else timedelta(microseconds=int(str(max_age_us))),
        max_count=None if max_count is None else int(str(max_count)),
    )


class _MetadataRecord(msgspec.Struct):
    stream_name: str
    max_age_us: int | None
    max_count: int | None


def metadata_from_record(data: bytes) -> tuple[str, StreamMetadata] | None:
    """The stream and metadata a `StreamMetadataSet` record sets; None when it holds no such
    fields (a record written by hand)."""
    try:
        record = msgspec.json.decode(data, type=_MetadataRecord)
    except msgspec.MsgspecError:
        return None
    return record.stream_name, metadata_of(record.max_age_us, record.max_count)


class RemovalTarget(Protocol):
    """What `remove` needs of one transaction of an engine."""

    def stream_version(self, stream_name: str) -> int | None:
        """The stream's version, removed events included (None: no events)."""
        ...

    def removal_state(self, stream_name: str) -> tuple[int, StreamMetadata]:
        """The stream's `removed_before` (0 when nothing was removed) and metadata."""
        ...

    def first_recorded_since(self, stream_name: str, start: int, since_us: int) -> int | None:
        """The first stream position from `start` on whose event was recorded at or after
        `since_us`; None when there is none."""
        ...

    def affected(
        self, stream_name: str, start: int, before: int, erase: bool
    ) -> tuple[int, int | None, bytes | None]:
        """What a removal of positions below `before` would change: erasing, every event
        before `before` whose payload is not erased yet; hiding, every event from `start` to
        `before` that is not removed yet. Returns their count, the first one's position, and
        the hash of the event at `before - 1`."""
        ...

    def mark(self, stream_name: str, start: int, before: int, erase: bool, record: int) -> int:
        """Apply what `affected` described, naming the record; returns the events changed."""
        ...

    def set_removed_before(self, stream_name: str, before: int) -> None:
        """Raise the stream's `removed_before` to `before` (never lower it)."""
        ...

    def set_metadata(self, stream_name: str, metadata: StreamMetadata) -> None:
        """Store the stream's metadata."""
        ...

    def append(self, stream_name: str, event: NewEvent) -> AppendResult:
        """Append a record, in the transaction."""
        ...

    def run_component_statements(
        self, stream_name: str, before: int, components: Sequence[Component]
    ) -> None:
        """Run what those of the components whose tables the store holds declared for a
        removal (`Component.on_stream_removal`)."""
        ...


def _record(
    request: RemovalRequest, first: int, before: int, count: int, erase: bool, last_hash: bytes
) -> NewEvent:
    return NewEvent(
        REMOVED_EVENT_TYPE,
        {
            "stream_name": request.stream_name,
            "kind": request.kind,
            "first_position": first,
            "before": before,
            "count": count,
            "erased": erase,
            "last_hash": last_hash.hex(),
            "actor": request.actor,
            "reason": request.reason,
        },
        metadata={"actor": request.actor},
    )


def _retained_before(
    target: RemovalTarget, name: str, version: int, start: int, metadata: StreamMetadata
) -> int:
    """Where the stream's retention cuts: its events before the returned position go."""
    before = start
    if metadata.max_count is not None:
        before = max(before, version + 1 - metadata.max_count)
    if metadata.max_age is not None:
        since = now_micros() - metadata.max_age // _MICROS
        young = target.first_recorded_since(name, start, since)
        before = max(before, version + 1 if young is None else young)
    return before


def remove(
    target: RemovalTarget, request: RemovalRequest, components: Sequence[Component]
) -> Removal:
    """Decide and apply one removal in the caller's transaction: the removal rules, once.

    Args:
        target: the transaction's view of the engine's storage.
        request: the removal.
        components: the components that may hold data derived from the stream (those
            registered and those the store used); their `on_stream_removal` statements run
            where the store holds their tables.

    Returns:
        What was removed; a `count` of 0 (and no record) when nothing was left to remove.

    Raises:
        StreamNotFoundError: the stream has no events.
        WrongExpectedVersionError: a delete's expected version does not match.
        InvalidArgumentError: a truncation point past the stream's end.
    """
    name = request.stream_name
    version = target.stream_version(name)
    if version is None:
        raise StreamNotFoundError(name)
    if not version_matches(request.expected_version, version):
        raise WrongExpectedVersionError(name, request.expected_version, version)
    start, metadata = target.removal_state(name)
    kind = request.kind
    if kind == "truncate":
        assert request.before is not None
        if request.before > version + 1:
            raise InvalidArgumentError(
                "before",
                request.before,
                f"stream {name!r} ends at version {version}: truncating before position "
                f"{request.before} would remove events it does not have (at most "
                f"{version + 1}, which removes every event)",
            )
        before = request.before
    elif kind == "retention":
        before = _retained_before(target, name, version, start, metadata)
    else:
        before = version + 1
    erase = kind != "soft-delete"
    count, first, last_hash = target.affected(name, start, before, erase)
    if count == 0 or first is None or last_hash is None:
        return Removal(name, kind, max(start, before), max(start, before), 0, erase, None)
    result = target.append(
        REMOVALS_STREAM, _record(request, first, before, count, erase, last_hash)
    )
    changed = target.mark(name, start, before, erase, result.global_position)
    if changed != count:
        # The stream is locked against other removals for the transaction: this is a defect
        # or a change behind the store's back; the transaction is rolled back.
        raise StorageError(
            f"stream {name!r}: a removal found {count} events to change and changed {changed}"
        )
    target.set_removed_before(name, before)
    target.run_component_statements(name, before, components)
    return Removal(name, kind, first, max(start, before), count, erase, result.global_position)


def set_metadata(
    target: RemovalTarget, stream_name: str, metadata: StreamMetadata, actor: str, reason: str
) -> AppendResult:
    """Store a stream's metadata and record the change in `$removals`, in one transaction."""
    age, count = metadata_row(metadata)
    target.set_metadata(stream_name, metadata)
    return target.append(
        REMOVALS_STREAM,
        NewEvent(
            METADATA_EVENT_TYPE,
            {
                "stream_name": stream_name,
                "max_age_us": age,
                "max_count": count,
                "actor": actor,
                "reason": reason,
            },
            metadata={"actor": actor},
        ),
    )


# -- the SQL engines --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Statements:
    lock: str | None
    before_erase: str | None
    state: str
    first_recorded_since: str
    hidable: str
    erasable: str
    hash_at: str
    hide: str
    erase: str
    set_removed_before: str
    set_metadata: str
    metadata: str
    retained: str
    mark_imported: str
    insert_metadata: str
    components: str


STATEMENTS: Final[Mapping[Dialect, _Statements]] = {
    "sqlite": _Statements(
        lock=None,  # the transaction runs on the store's one writer, holding SQLite's lock
        # Free space left by an erased payload is overwritten with zeros, not left in the file
        # (the connection keeps the setting; the log's own writes never free space).
        before_erase="PRAGMA secure_delete = ON",
        state="SELECT removed_before, max_age_us, max_count FROM stream_metadata "
        "WHERE stream_name = ?",
        first_recorded_since="SELECT min(stream_position) FROM events WHERE stream_name = ? "
        "AND stream_position >= ? AND recorded_at >= ?",
        hidable="SELECT count(*), min(stream_position) FROM events WHERE stream_name = ? "
        "AND stream_position >= ? AND stream_position < ? AND removed_by IS NULL",
        erasable="SELECT count(*), min(stream_position) FROM events WHERE stream_name = ? "
        "AND stream_position < ? AND length(data) > 0",
        hash_at="SELECT hash FROM events WHERE stream_name = ? AND stream_position = ?",
        hide="UPDATE events SET removed_by = ? WHERE stream_name = ? AND stream_position >= ? "
        "AND stream_position < ? AND removed_by IS NULL",
        erase="UPDATE events SET removed_by = ?, data = x'', metadata = x'' "
        "WHERE stream_name = ? AND stream_position < ? AND length(data) > 0",
        set_removed_before="INSERT INTO stream_metadata (stream_name, removed_before) "
        "VALUES (?, ?) ON CONFLICT (stream_name) DO UPDATE SET "
        "removed_before = max(removed_before, excluded.removed_before)",
        set_metadata="INSERT INTO stream_metadata (stream_name, max_age_us, max_count) "
        "VALUES (?, ?, ?) ON CONFLICT (stream_name) DO UPDATE SET "
        "max_age_us = excluded.max_age_us, max_count = excluded.max_count",
        metadata="SELECT max_age_us, max_count FROM stream_metadata WHERE stream_name = ?",
        retained="SELECT stream_name FROM stream_metadata WHERE max_age_us IS NOT NULL "
        "OR max_count IS NOT NULL ORDER BY stream_name",
        mark_imported="UPDATE events SET removed_by = ? WHERE global_position = ?",
        insert_metadata="INSERT INTO stream_metadata "
        "(stream_name, removed_before, max_age_us, max_count) VALUES (?, ?, ?, ?)",
        components="SELECT DISTINCT component FROM component_migrations",
    ),
    "postgresql": _Statements(
        lock="SELECT {schema}.lock_streams(%s::text[])",
        # Old row versions stay in the table's pages until VACUUM (docs/removal.md).
        before_erase=None,
        state="SELECT removed_before, max_age_us, max_count FROM {schema}.stream_metadata "
        "WHERE stream_name = %s",
        first_recorded_since="SELECT min(stream_position) FROM {schema}.events "
        "WHERE stream_name = %s AND stream_position >= %s AND recorded_at >= %s",
        hidable="SELECT count(*), min(stream_position) FROM {schema}.events "
        "WHERE stream_name = %s AND stream_position >= %s AND stream_position < %s "
        "AND removed_by IS NULL",
        erasable="SELECT count(*), min(stream_position) FROM {schema}.events "
        "WHERE stream_name = %s AND stream_position < %s AND octet_length(data) > 0",
        hash_at="SELECT hash FROM {schema}.events WHERE stream_name = %s AND stream_position = %s",
        hide="UPDATE {schema}.events SET removed_by = %s WHERE stream_name = %s "
        "AND stream_position >= %s AND stream_position < %s AND removed_by IS NULL",
        erase="UPDATE {schema}.events SET removed_by = %s, data = ''::bytea, "
        "metadata = ''::bytea WHERE stream_name = %s AND stream_position < %s "
        "AND octet_length(data) > 0",
        set_removed_before="INSERT INTO {schema}.stream_metadata (stream_name, removed_before) "
        "VALUES (%s, %s) ON CONFLICT ON CONSTRAINT stream_metadata_pk DO UPDATE SET "
        "removed_before = greatest(stream_metadata.removed_before, EXCLUDED.removed_before)",
        set_metadata="INSERT INTO {schema}.stream_metadata (stream_name, max_age_us, max_count) "
        "VALUES (%s, %s, %s) ON CONFLICT ON CONSTRAINT stream_metadata_pk DO UPDATE SET "
        "max_age_us = EXCLUDED.max_age_us, max_count = EXCLUDED.max_count",
        metadata="SELECT max_age_us, max_count FROM {schema}.stream_metadata "
        "WHERE stream_name = %s",
        retained="SELECT stream_name FROM {schema}.stream_metadata WHERE max_age_us IS NOT NULL "
        "OR max_count IS NOT NULL ORDER BY stream_name",
        mark_imported="UPDATE {schema}.events SET removed_by = %s WHERE global_position = %s",
        insert_metadata="INSERT INTO {schema}.stream_metadata "
        "(stream_name, removed_before, max_age_us, max_count) VALUES (%s, %s, %s, %s)",
        components="SELECT DISTINCT component FROM {schema}.component_migrations",
    ),
}
"""The statements of removal on the store's own tables, per dialect."""


def statements(dialect: Dialect) -> _Statements:
    """The removal statements of a dialect (for an engine's own reads of stream metadata)."""
    return STATEMENTS[dialect]


def run_component_statements(
    tx: Transaction, stream_name: str, before: int, components: Sequence[Component]
) -> None:
    """Run, in a removal's transaction, what each component whose tables the store holds
    declared for the removal of a stream's events before a position."""
    if not any(component.on_stream_removal for component in components):
        return
    present = {str(row[0]) for row in tx.fetch(STATEMENTS[tx.dialect].components)}
    for component in components:
        if component.name in present:
            for statement in component.on_stream_removal.get(tx.dialect, ()):
                tx.execute(statement, (stream_name,))


class SQLRemovals:
    """The removal target of an engine whose events are tables of the transaction's database
    (SQLite, PostgreSQL).

    Args:
        tx: the transaction.
    """

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._sql = STATEMENTS[tx.dialect]
        self._locked: set[str] = set()

    def _lock(self, stream_name: str) -> None:
        # On PostgreSQL the stream's lock keeps appends and other removals of it out until the
        # transaction ends, so what `affected` counted is what `mark` changes.
        if self._sql.lock is not None and stream_name not in self._locked:
            self._tx.fetch(self._sql.lock, ([stream_name],))
            self._locked.add(stream_name)

    def stream_version(self, stream_name: str) -> int | None:
        self._lock(stream_name)
        return self._tx.get_stream_version(stream_name)

    def removal_state(self, stream_name: str) -> tuple[int, StreamMetadata]:
        rows = self._tx.fetch(self._sql.state, (stream_name,))
        if not rows:
            return 0, StreamMetadata()
        before, age, count = rows[0]
        return int(before), metadata_of(age, count)

    def first_recorded_since(self, stream_name: str, start: int, since_us: int) -> int | None:
        rows = self._tx.fetch(self._sql.first_recorded_since, (stream_name, start, since_us))
        return None if rows[0][0] is None else int(rows[0][0])

    def affected(
        self, stream_name: str, start: int, before: int, erase: bool
    ) -> tuple[int, int | None, bytes | None]:
        if erase:
            rows = self._tx.fetch(self._sql.erasable, (stream_name, before))
        else:
            rows = self._tx.fetch(self._sql.hidable, (stream_name, start, before))
        count, first = int(rows[0][0]), rows[0][1]
        if count == 0:
            return 0, None, None
        found = self._tx.fetch(self._sql.hash_at, (stream_name, before - 1))
        return count, int(first), bytes(found[0][0]) if found else None

    def mark(self, stream_name: str, start: int, before: int, erase: bool, record: int) -> int:
        if erase:
            if self._sql.before_erase is not None:
                self._tx.fetch(self._sql.before_erase)
            return self._tx.execute(self._sql.erase, (record, stream_name, before))
        return self._tx.execute(self._sql.hide, (record, stream_name, start, before))

    def set_removed_before(self, stream_name: str, before: int) -> None:
        self._tx.execute(self._sql.set_removed_before, (stream_name, before))

    def set_metadata(self, stream_name: str, metadata: StreamMetadata) -> None:
        self._lock(stream_name)
        self._tx.execute(self._sql.set_metadata, (stream_name, *metadata_row(metadata)))

    def append(self, stream_name: str, event: NewEvent) -> AppendResult:
        return self._tx.append_record(stream_name, event)

    def run_component_statements(
        self, stream_name: str, before: int, components: Sequence[Component]
    ) -> None:
        run_component_statements(self._tx, stream_name, before, components)


# -- engines that keep rows in Python lists ---------------------------------------------------


def erased_row(row: StoredRow) -> StoredRow:
    """A row with its payload erased: what a removal keeps of an event."""
    return row._replace(data=b"", metadata=b"")


@dataclass(slots=True)
class _Change:
    stream_name: str
    start: int
    before: int
    erase: bool
    record: int


@dataclass(slots=True)
class RowRemovals:
    """The removal state of an engine that keeps its rows in Python lists (the in-memory
    engine, the toy engine of the tests): which events are removed, and each stream's
    `removed_before` and metadata.

    Attributes:
        removed_by: the global position of each removed event, to its record's.
        removed_before: per stream with removals, the first position not removed.
        metadata: per stream with metadata, its metadata.
    """

    removed_by: dict[int, int] = field(default_factory=dict)
    removed_before: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, StreamMetadata] = field(default_factory=dict)

    def start(self, stream_name: str) -> int:
        """The first stream position readers see of a stream."""
        return self.removed_before.get(stream_name, 0)

    def visible(self, row: StoredRow) -> bool:
        """Whether readers see an event."""
        return row.global_position not in self.removed_by

    def listed(self, stream_name: str, version: int) -> bool:
        """Whether a stream at a version has events readers see."""
        return self.removed_before.get(stream_name, 0) <= version

    def target(self, tx: Transaction, streams: Mapping[str, Sequence[StoredRow]]) -> RowTransaction:
        """A removal target over the rows, for one transaction `tx` (which appends the records
        and runs the components' statements): its changes are staged
        (`RowTransaction.changes`) and applied with `apply` once the transaction commits."""
        return RowTransaction(self, streams, tx)

    def apply(
        self,
        transaction: RowTransaction,
        streams: Mapping[str, MutableSequence[StoredRow]],
        replace: Callable[[StoredRow, StoredRow], None],
    ) -> None:
        """Apply a committed transaction's changes: mark the rows, erase their payloads
        (`replace(old, new)` puts the erased row in the engine's other indexes).
        """
        for change in transaction.changes:
            rows = streams.get(change.stream_name, [])
            for position in range(0 if change.erase else change.start, change.before):
                row = rows[position]
                if change.erase:
                    if not row.data:
                        continue
                    rows[position] = erased_row(row)
                    replace(row, rows[position])
                elif not self.visible(row):
                    continue
                self.removed_by[row.global_position] = change.record
            self.removed_before[change.stream_name] = max(
                self.removed_before.get(change.stream_name, 0), change.before
            )
        self.metadata.update(transaction.metadata)

    def import_removals(self, imported: ImportedRemovals) -> None:
        """Take the removals of an imported log."""
        self.removed_by.update(imported.marks)
        self.removed_before.update(imported.removed_before)
        self.metadata.update(imported.metadata)

    def retained(self) -> list[str]:
        """The streams whose metadata sets a retention, by name."""
        return sorted(
            name
            for name, meta in self.metadata.items()
            if meta.max_age is not None or meta.max_count is not None
        )


class RowTransaction:
    """The removal target of `RowRemovals` in one transaction (see `RowRemovals.target`)."""

    def __init__(
        self, state: RowRemovals, streams: Mapping[str, Sequence[StoredRow]], tx: Transaction
    ) -> None:
        self._state = state
        self._streams = streams
        self._tx = tx
        self.changes: list[_Change] = []
        self.metadata: dict[str, StreamMetadata] = {}

    def stream_version(self, stream_name: str) -> int | None:
        rows = self._streams.get(stream_name)
        return rows[-1].stream_position if rows else None

    def removal_state(self, stream_name: str) -> tuple[int, StreamMetadata]:
        metadata = self.metadata.get(stream_name) or self._state.metadata.get(stream_name)
        return self._state.start(stream_name), metadata or StreamMetadata()

    def first_recorded_since(self, stream_name: str, start: int, since_us: int) -> int | None:
        rows = self._streams.get(stream_name, [])
        return next((r.stream_position for r in rows[start:] if r.recorded_at >= since_us), None)

    def _rows(self, stream_name: str, start: int, before: int, erase: bool) -> list[StoredRow]:
        rows = self._streams.get(stream_name, [])
        if erase:
            return [row for row in rows[:before] if row.data]
        return [row for row in rows[start:before] if self._state.visible(row)]

    def affected(
        self, stream_name: str, start: int, before: int, erase: bool
    ) -> tuple[int, int | None, bytes | None]:
        rows = self._rows(stream_name, start, before, erase)
        if not rows:
            return 0, None, None
        return len(rows), rows[0].stream_position, self._streams[stream_name][before - 1].hash

    def mark(self, stream_name: str, start: int, before: int, erase: bool, record: int) -> int:
        self.changes.append(_Change(stream_name, start, before, erase, record))
        return len(self._rows(stream_name, start, before, erase))

    def set_removed_before(self, stream_name: str, before: int) -> None:
        """Staged with the change `mark` recorded."""

    def set_metadata(self, stream_name: str, metadata: StreamMetadata) -> None:
        self.metadata[stream_name] = metadata

    def append(self, stream_name: str, event: NewEvent) -> AppendResult:
        return self._tx.append_record(stream_name, event)

    def run_component_statements(
        self, stream_name: str, before: int, components: Sequence[Component]
    ) -> None:
        run_component_statements(self._tx, stream_name, before, components)


# -- import -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportedRemovals:
    """The removals of a log being imported, gathered while its events are read: the engine
    applies them in the import's transaction, after the last batch of rows.

    Attributes:
        marks: (global position, removed_by) of every removed event.
        removed_before: per stream with removed events, the first position not removed.
        metadata: per stream, the metadata its last `StreamMetadataSet` record set.
    """

    marks: list[tuple[int, int]] = field(default_factory=list)
    removed_before: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, StreamMetadata] = field(default_factory=dict)

    def take(
        self, stream_name: str, stream_position: int, global_position: int, removed_by: int
    ) -> None:
        """Note a removed event."""
        self.marks.append((global_position, removed_by))
        self.removed_before[stream_name] = stream_position + 1

    def metadata_rows(self) -> Iterable[tuple[str, int, int | None, int | None]]:
        """(stream, removed_before, max_age_us, max_count) of every stream to record."""
        for name in sorted(self.removed_before.keys() | self.metadata.keys()):
            age, count = metadata_row(self.metadata.get(name, StreamMetadata()))
            yield name, self.removed_before.get(name, 0), age, count
