"""`Repository`: loads aggregates by replaying their streams and saves their new events.

Saving appends an aggregate's pending events with its loaded version as the expected version,
so two writers that loaded the same version cannot both save: the second gets
`WrongExpectedVersionError` and `update` re-runs its command on a fresh copy.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Generic, Protocol, Self, TypeVar

import msgspec

from eventvault.aggregates.aggregate import NEVER_RECORDED, Aggregate, Handler
from eventvault.aggregates.errors import (
    AggregateDefinitionError,
    AggregateNotFoundError,
    AggregateQueryError,
    EventDecodeError,
    MissingHandlerError,
    UnknownEventTypeError,
    UnregisteredEventError,
)
from eventvault.aggregates.registry import EventRegistry, EventType
from eventvault.aggregates.snapshots import Snapshot, SnapshotStore, snapshot_store_for
from eventvault.errors import EventVaultError, StorageError, WrongExpectedVersionError
from eventvault.schema.upcasting import UpcastChain
from eventvault.serialization import from_micros, to_micros
from eventvault.store.base import EventStore
from eventvault.types import (
    AppendResult,
    ExpectedVersion,
    JSONObject,
    PayloadEvent,
    StreamAppend,
    StreamState,
)

__all__ = ["PayloadProtection", "Repository"]

A = TypeVar("A", bound=Aggregate[Any])

_log = logging.getLogger(__name__)

# Every type msgpack stores as the value it was, except `datetime`: msgpack's timestamp keeps
# the instant and drops the UTC offset, so a state would come back from a snapshot in UTC where
# a replay gives the offset the events carried. Left out here, datetimes become RFC 3339 text
# with their offset, which the typed decoder of the state reads back as the same datetime.
_KEPT_AS_IS: Final = (
    bytes,
    bytearray,
    memoryview,
    dt.date,
    dt.time,
    dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
)
_to_builtins = msgspec.to_builtins
_encode_msgpack = msgspec.msgpack.encode


class PayloadProtection(Protocol):
    """What seals an aggregate's personal fields when it is saved and reveals them when it is
    loaded: `eventvault.audit.SubjectKeys` (crypto-shredding, docs/removal.md)."""

    def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Seal the events' personal fields and append them, as `append_to_streams` does."""
        ...

    def reveal_payload(self, data: bytes) -> bytes:
        """Stored payload bytes with their sealed fields opened, or marked erased."""
        ...


def encode_state(state: msgspec.Struct) -> bytes:
    """The bytes a snapshot stores for an aggregate's state: msgpack, datetimes as RFC 3339 text.

    Args:
        state: the state.

    Returns:
        The encoded state; `msgspec.msgpack.decode(raw, type=type(state))` reads it back equal
        to `state`, every datetime with its UTC offset.

    Raises:
        TypeError: the state holds a value msgpack cannot encode.
    """
    return _encode_msgpack(_to_builtins(state, builtin_types=_KEPT_AS_IS))


class Repository(Generic[A]):
    """Loads and saves the aggregates of one class in an event store.

    Args:
        aggregate_type: the aggregate class; it must declare `category` and `state_type`.
        store: the event store.
        registry: the registry of the event classes the aggregate handles.
        snapshot_store: where snapshots are read and written; None for none, unless
            `snapshot_every` is given, in which case `snapshot_store_for(store)` keeps them in
            the event store's own database.
        snapshot_every: take a snapshot each time a save carries an aggregate of this class
            across a multiple of this many events; None takes none automatically
            (`take_snapshot` still works).
        personal_data: seals the personal fields of saved events and reveals them on load
            (`eventvault.audit.SubjectKeys(store)`); fields of forgotten subjects load as
            `Erased`, and `forget` deletes the snapshots that held them.

    Attributes:
        snapshot_failures: how many snapshot reads and policy snapshots failed since the
            repository was made. Neither fails the load or save that ran into it (a load
            replays the whole stream instead; a save has committed); each is logged as a
            warning on the logger `eventvault.aggregates.repository` with the stream and
            version.

    Raises:
        AggregateDefinitionError: the class lacks `category` or `state_type`.
        UnregisteredEventError: an event class the aggregate handles is not registered.
        AggregateQueryError: `snapshot_every` is not an int >= 1.
        MigrationRequiredError: `snapshot_every` is given without a snapshot store and the
            store's snapshot table needs `eventvault migrate`.
    """

    def __init__(
        self,
        aggregate_type: type[A],
        store: EventStore,
        registry: EventRegistry,
        *,
        snapshot_store: SnapshotStore | None = None,
        snapshot_every: int | None = None,
        personal_data: PayloadProtection | None = None,
    ) -> None:
        if not isinstance(aggregate_type, type) or not issubclass(aggregate_type, Aggregate):
            raise TypeError(f"aggregate_type must be an Aggregate subclass, not {aggregate_type!r}")
        if getattr(aggregate_type, "category", None) is None:
            raise AggregateDefinitionError(aggregate_type, "declare category, the stream category")
        if getattr(aggregate_type, "state_type", None) is None:
            raise AggregateDefinitionError(aggregate_type, "declare state_type, a msgspec.Struct")
        for event_class in aggregate_type.handlers:
            if not registry.is_registered(event_class):
                raise UnregisteredEventError(event_class)
        if snapshot_every is not None and (type(snapshot_every) is not int or snapshot_every < 1):
            raise AggregateQueryError(
                f"snapshot_every must be an int >= 1 or None, not {snapshot_every!r}"
            )
        self.aggregate_type = aggregate_type
        self.store = store
        self.registry = registry
        self.snapshot_every = snapshot_every
        self.personal_data = personal_data
        self._owns_snapshot_store = snapshot_store is None and snapshot_every is not None
        if self._owns_snapshot_store:
            snapshot_store = snapshot_store_for(store)
        self.snapshot_store = snapshot_store
        self.snapshot_failures = 0
        self._failures_lock = threading.Lock()
        self._table = self._decoding_table()
        self._generation = registry.generation

    def _decoding_table(self) -> dict[tuple[str, int], tuple[Callable[[bytes], Any], Handler]]:
        """Each stored (name, version) the aggregate handles, mapped to a decoder of its payload
        and the handler: the registered classes, and the older versions that the registry's
        upcasters turn into one of them."""
        handlers = self.aggregate_type.handlers
        table: dict[tuple[str, int], tuple[Callable[[bytes], Any], Handler]] = {
            (entry.name, entry.version): (
                msgspec.json.Decoder(entry.cls).decode,
                handlers[entry.cls],
            )
            for entry in self.registry
            if entry.cls in handlers
        }
        chain = self.registry.upcasts
        if chain is not None:
            for event_type, target in chain.targets.items():
                cls = self.registry.class_for(event_type, target)
                if cls is None or cls not in handlers:
                    continue
                for version in range(1, target):
                    if (event_type, version) in table or not chain.covers(event_type, version):
                        continue
                    # Versions the newest reads unchanged decode straight into its class.
                    decode = (
                        msgspec.json.Decoder(cls).decode
                        if chain.unchanged(event_type, version)
                        else _upcasting_decoder(
                            chain, event_type, version, self.registry.type_of(cls)
                        )
                    )
                    table[(event_type, version)] = (decode, handlers[cls])
        return table

    def _undecodable(
        self, recorded: PayloadEvent, stream_name: str, exc: msgspec.DecodeError
    ) -> EventDecodeError:
        """The error for an event whose payload does not decode as its registered class."""
        cls = self.registry.class_for(recorded.event_type, recorded.schema_version)
        return EventDecodeError(
            stream_name,
            recorded.stream_position,
            recorded.event_type,
            recorded.schema_version,
            object if cls is None else cls,
            str(exc),
        )

    def _missing(self, recorded: PayloadEvent, stream_name: str) -> EventVaultError:
        """The error for an event missing from the table: its type is unregistered, or the
        aggregate has no handler for its class."""
        cls = self.registry.class_for(recorded.event_type, recorded.schema_version)
        if cls is None:
            return UnknownEventTypeError(
                recorded.event_type,
                recorded.schema_version,
                stream_name,
                recorded.stream_position,
            )
        return MissingHandlerError(self.aggregate_type, cls)

    # -- loading -----------------------------------------------------------------------------

    def get(
        self,
        aggregate_id: str,
        *,
        version: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> A:
        """Load an aggregate by replaying its events, from its newest usable snapshot if any.

        Args:
            aggregate_id: the aggregate's id.
            version: load the state after the event at this stream position (a past state);
                None for the latest.
            as_of: load the state as of this time (an aware datetime): after the events of
                the stream, from its first, up to (not including) the first one recorded
                after `as_of`. Clocks may go back, so `recorded_at` need not grow along a
                stream: an event recorded before `as_of` that follows one recorded after it
                is not included. None for the latest.

        Returns:
            The aggregate, with no pending events and `version` set to the position of the last
            event applied.

        Raises:
            AggregateNotFoundError: the stream has no events, or none at or before `as_of`, or
                fewer than `version + 1`.
            AggregateQueryError: both `version` and `as_of` given, a negative or non-int
                version, or a naive datetime.
            UnknownEventTypeError: an event's type and version are not registered.
            EventDecodeError: an event's payload does not fit its registered class.
            MissingHandlerError: the aggregate has no handler for an event's class.
        """
        if version is not None:
            if as_of is not None:
                raise AggregateQueryError("give version or as_of, not both")
            if type(version) is not int or version < 0:
                raise AggregateQueryError(f"version must be an int >= 0, not {version!r}")
        if as_of is not None and (not isinstance(as_of, dt.datetime) or as_of.tzinfo is None):
            raise AggregateQueryError(
                f"as_of must be an aware datetime (with a tzinfo, such as UTC), not {as_of!r}"
            )
        cls = self.aggregate_type
        stream_name = cls.stream_name_for(aggregate_id)
        aggregate = cls(aggregate_id)
        if self.snapshot_store is not None:
            snapshot = self._latest_snapshot(self.snapshot_store, stream_name, version, as_of)
            if snapshot is not None:
                self._restore(aggregate, snapshot)
        start = aggregate.version + 1
        limit = None if version is None else version + 1 - start
        if limit != 0:
            events = self.store.read_stream_payloads(stream_name, from_position=start, limit=limit)
            self._replay(aggregate, events, as_of, stream_name)
        if aggregate.version < 0 or (version is not None and aggregate.version < version):
            latest = aggregate.version if aggregate.version >= 0 else None
            if latest is None and as_of is not None:
                latest = self.store.get_stream_version(stream_name)
            raise AggregateNotFoundError(stream_name, version=version, as_of=as_of, latest=latest)
        return aggregate

    def _latest_snapshot(
        self,
        snapshots: SnapshotStore,
        stream_name: str,
        version: int | None,
        as_of: dt.datetime | None,
    ) -> Snapshot | None:
        """The newest usable snapshot, or None; a snapshot store that fails is logged and
        counted, and the load replays the whole stream instead: snapshots are derived data."""
        cls = self.aggregate_type
        try:
            best = snapshots.latest(
                stream_name, schema_version=cls.snapshot_version, max_version=version, as_of=as_of
            )
            if not cls.snapshot_upcasters:
                return best
            # Snapshots of older state versions that upcasters can bring up to date count too
            # (only then is there anything to ask for): the one nearest the stream's end wins.
            for older in sorted(cls.snapshot_upcasters, reverse=True):
                found = snapshots.latest(
                    stream_name, schema_version=older, max_version=version, as_of=as_of
                )
                if found is not None and (best is None or found.version > best.version):
                    best = found
            return best
        except Exception as exc:  # a snapshot store's own error must not fail a load
            self._snapshot_failed(
                exc, f"snapshots of {stream_name!r} could not be read, replaying the whole stream"
            )
            return None

    def _restore(self, aggregate: A, snapshot: Snapshot) -> None:
        """Set an aggregate's state and version from a snapshot, upcasting a state of an older
        `snapshot_version`; a snapshot that no longer decodes (the state changed shape without
        a new `snapshot_version`) or whose upcaster fails is skipped: the load replays."""
        raw = snapshot.state
        if snapshot.schema_version != type(aggregate).snapshot_version:
            try:
                raw = _upcast_state(type(aggregate), snapshot.schema_version, raw)
            except Exception as exc:  # snapshots are derived data: a failed upcast replays
                _log.warning(
                    "snapshot of %r at version %d (snapshot_version %d) could not be upcast, "
                    "replaying instead: %s: %s",
                    snapshot.stream_name,
                    snapshot.version,
                    snapshot.schema_version,
                    type(exc).__name__,
                    exc,
                )
                return
        try:
            aggregate.state = msgspec.msgpack.decode(raw, type=aggregate.state_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _log.warning(
                "snapshot of %r at version %d does not decode as %s, replaying instead: %s",
                snapshot.stream_name,
                snapshot.version,
                aggregate.state_type.__qualname__,
                exc,
            )
            return
        aggregate.version = snapshot.version
        aggregate._recorded_through = (snapshot.version, snapshot.recorded_at)

    def _snapshot_failed(self, exc: Exception, what: str) -> None:
        """Log and count a snapshot failure that the load or save it belongs to rides out."""
        with self._failures_lock:
            self.snapshot_failures += 1
        # An eventvault error is an expected failure (a locked file, a missing table); anything
        # else comes from a snapshot store's own code and gets its traceback.
        _log.warning(
            "%s: %s: %s",
            what,
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, EventVaultError),
        )

    def _replay(
        self,
        aggregate: A,
        events: Iterable[PayloadEvent],
        as_of: dt.datetime | None,
        stream_name: str,
    ) -> None:
        """Apply stored events to an aggregate: the hot loop of every load."""
        if self._generation != self.registry.generation:
            self._table = self._decoding_table()
            self._generation = self.registry.generation
        table = self._table
        as_of_us = None if as_of is None else to_micros(as_of)
        position = aggregate.version
        reveal = None if self.personal_data is None else self.personal_data.reveal_payload
        try:
            for recorded in events:
                if as_of_us is not None and recorded.recorded_at_us > as_of_us:
                    break
                entry = table.get((recorded.event_type, recorded.schema_version))
                if entry is None:
                    raise self._missing(recorded, stream_name)
                decode, handler = entry
                try:
                    event = decode(recorded.data if reveal is None else reveal(recorded.data))
                except msgspec.DecodeError as exc:
                    raise self._undecodable(recorded, stream_name, exc) from exc
                handler(aggregate, event)
                position = recorded.stream_position
        finally:
            aggregate.version = position

    def exists(self, aggregate_id: str) -> bool:
        """Whether the aggregate has at least one event readers see (a deleted one has none)."""
        stream_name = self.aggregate_type.stream_name_for(aggregate_id)
        return next(iter(self.store.read_stream_payloads(stream_name, limit=1)), None) is not None

    # -- saving ------------------------------------------------------------------------------

    def save(self, *aggregates: A, metadata: JSONObject | None = None) -> list[AppendResult]:
        """Append the pending events of aggregates, each expecting its loaded version.

        One aggregate is one `append_to_stream`; several are one atomic `append_to_streams`, so
        either all are saved or none. Aggregates without pending events are skipped. On success
        each aggregate's `pending_events` is cleared and its `version` advanced; snapshots are
        taken per the `snapshot_every` policy. Saving again after an error whose outcome is
        unknown is safe: the events keep their ids, so the store does not write them twice.

        Args:
            aggregates: the aggregates to save.
            metadata: metadata for every event written (correlation id, actor, ...).

        Returns:
            One `AppendResult` per aggregate that had pending events, in order.

        Raises:
            WrongExpectedVersionError: an aggregate's stream moved on since it was loaded;
                nothing was written and the aggregates keep their pending events.
            UnregisteredEventError: a pending event's class is not registered.
            InvalidEventError: the same aggregate twice, or an event the store rejects.
        """
        dirty = [aggregate for aggregate in aggregates if aggregate.pending_events]
        if not dirty:
            return []
        appends = self._appends(dirty, metadata)
        if self.personal_data is not None:
            results = self.personal_data.append_to_streams(appends)
        elif len(appends) == 1:
            one = appends[0]
            results = [
                self.store.append_to_stream(
                    one.stream_name, one.events, expected_version=one.expected_version
                )
            ]
        else:
            results = self.store.append_to_streams(appends)
        self._saved(dirty)
        return results

    def _appends(self, dirty: list[A], metadata: JSONObject | None) -> list[StreamAppend]:
        """What saving aggregates with pending events appends: one stream each, expecting the
        version each was loaded at, the events keeping the ids they were given when recorded."""
        to_new_event = self.registry.to_new_event
        return [
            StreamAppend(
                aggregate.stream_name,
                [
                    to_new_event(event, metadata=metadata, event_id=event_id)
                    for event, event_id in zip(
                        aggregate.pending_events, aggregate.pending_event_ids, strict=True
                    )
                ],
                _expected(aggregate),
            )
            for aggregate in dirty
        ]

    def _saved(self, dirty: list[A]) -> None:
        """After the appends of `_appends` committed: clear the pending events, advance the
        versions, take the snapshots the policy asks for."""
        for aggregate in dirty:
            before = aggregate.version
            aggregate.mark_saved()
            if self._due_for_snapshot(before, aggregate.version):
                self._snapshot_quietly(aggregate)

    def _due_for_snapshot(self, before: int, after: int) -> bool:
        every = self.snapshot_every
        return every is not None and (before + 1) // every < (after + 1) // every

    def _snapshot_quietly(self, aggregate: A) -> None:
        """Take a policy snapshot; its failure must not fail a save that has committed."""
        try:
            self.take_snapshot(aggregate)
        except Exception as exc:  # whatever failed, the events are stored: the save stands
            self._snapshot_failed(
                exc,
                f"snapshot of {aggregate.stream_name!r} at version {aggregate.version} was not "
                "stored (the save stands)",
            )

    def update(self, aggregate_id: str, command: Callable[[A], object], *, retries: int = 3) -> A:
        """Load an aggregate, run a command on it and save it, retrying on a conflict.

        When another writer saved the aggregate in between, the save raises
        `WrongExpectedVersionError`; the aggregate is then loaded afresh and the command run
        again, up to `retries` more times. The command must therefore decide from the
        aggregate's state only.

        Args:
            aggregate_id: the aggregate's id.
            command: called with the loaded aggregate; records events (or raises to abort).
            retries: how many times to retry after a conflict, an int >= 0.

        Returns:
            The saved aggregate.

        Raises:
            WrongExpectedVersionError: the last retry conflicted too.
            AggregateNotFoundError: the aggregate does not exist.
            AggregateQueryError: `retries` is not an int >= 0.
            Whatever the command raises, at once, without retrying.
        """
        if type(retries) is not int or retries < 0:
            raise AggregateQueryError(f"retries must be an int >= 0, not {retries!r}")
        attempt = 0
        while True:
            aggregate = self.get(aggregate_id)
            command(aggregate)
            try:
                self.save(aggregate)
            except WrongExpectedVersionError:
                if attempt >= retries:
                    raise
                attempt += 1
                continue
            return aggregate

    # -- snapshots ---------------------------------------------------------------------------

    def take_snapshot(self, aggregate: A) -> Snapshot:
        """Store a snapshot of an aggregate's state at its version.

        The snapshot's `recorded_at` is the latest `recorded_at` among the events it includes
        (not only the last one's, as clocks may go back), so that `get(as_of=t)` uses it only
        when every one of them was recorded by `t`, exactly as a replay would.

        Args:
            aggregate: a loaded or saved aggregate without pending events.

        Returns:
            The snapshot stored.

        Raises:
            AggregateQueryError: the repository has no snapshot store, or the aggregate has
                pending events or was never saved.
            AggregateNotFoundError: the store has no event at the aggregate's version.
            StorageError: the snapshot store failed (whatever it raised is the cause).
        """
        snapshots = self.snapshot_store
        if snapshots is None:
            raise AggregateQueryError("this repository has no snapshot store")
        if aggregate.pending_events:
            raise AggregateQueryError(
                f"{aggregate.stream_name!r} has {len(aggregate.pending_events)} pending events: "
                "save it before taking a snapshot"
            )
        if aggregate.version < 0:
            raise AggregateQueryError(f"{aggregate.stream_name!r} has no stored events")
        recorded_through = self._recorded_through(aggregate)
        snapshot = Snapshot(
            stream_name=aggregate.stream_name,
            version=aggregate.version,
            schema_version=type(aggregate).snapshot_version,
            state=encode_state(aggregate.state),
            recorded_at=from_micros(recorded_through),
            taken_at=dt.datetime.now(dt.UTC),
        )
        try:
            snapshots.save(snapshot)
        except EventVaultError:
            raise
        except Exception as exc:
            raise StorageError(
                f"snapshot store {type(snapshots).__qualname__} failed to store the snapshot of "
                f"{snapshot.stream_name!r} at version {snapshot.version}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        aggregate._recorded_through = (snapshot.version, recorded_through)
        return snapshot

    def _recorded_through(self, aggregate: A) -> int:
        """The latest `recorded_at` (microseconds) among the stored events of an aggregate up
        to its version, reading only the events past what the aggregate already knows.

        Raises:
            AggregateNotFoundError: the store has no event at the aggregate's version.
        """
        known, through = aggregate._recorded_through
        latest = through if isinstance(through, int) else to_micros(through)
        if known > aggregate.version:
            known, latest = -1, NEVER_RECORDED
        last = known
        for event in self.store.read_stream_payloads(
            aggregate.stream_name, from_position=known + 1, limit=aggregate.version - known
        ):
            latest = max(latest, event.recorded_at_us)
            last = event.stream_position
        if last != aggregate.version:
            raise AggregateNotFoundError(
                aggregate.stream_name,
                version=aggregate.version,
                latest=self.store.get_stream_version(aggregate.stream_name),
            )
        return latest

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the snapshot store if the repository opened it; the event store stays open."""
        if self._owns_snapshot_store and self.snapshot_store is not None:
            self.snapshot_store.close()

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
        return f"<Repository of {self.aggregate_type.__qualname__} in {self.store.url!r}>"


_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


def _upcast_state(aggregate_type: type[Aggregate[Any]], version: int, raw: bytes) -> bytes:
    """The bytes of a snapshot's state of an older `snapshot_version`, upcast to the current
    one through the class's `snapshot_upcasters` (checked without gaps when it was defined)."""
    state = msgspec.msgpack.decode(raw)
    upcasters = aggregate_type.snapshot_upcasters
    while version < aggregate_type.snapshot_version:
        state = upcasters[version](state)
        version += 1
    return _encode_msgpack(state)


def _upcasting_decoder(
    chain: UpcastChain, event_type: str, version: int, target: EventType
) -> Callable[[bytes], Any]:
    """A decoder of a stored payload of an older version into the newest class: decode it,
    upcast it, convert it. A payload that does not fit raises `msgspec.ValidationError`, a
    `DecodeError`, as a plain decoder does."""
    upcast = chain.upcast
    convert = msgspec.convert
    cls, str_keys = target.cls, target.str_keys

    def decode(raw: bytes) -> Any:
        _, data = upcast(event_type, version, _decode_object(raw))
        return convert(data, type=cls, str_keys=str_keys)

    return decode


def _expected(aggregate: Aggregate[Any]) -> ExpectedVersion:
    return StreamState.NO_STREAM if aggregate.version < 0 else aggregate.version
