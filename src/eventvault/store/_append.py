"""The engine-independent rules of an append: validation, version checks, idempotent retries.

Every engine calls the same two functions: `prepare` validates and encodes an append before it
queues, and `plan_batch`, inside the engine's transaction, decides a batch of queued appends
against the heads of their streams and the event ids already stored (expected versions,
idempotent retries, positions, the hash chain). The engines differ only in how they read those
heads and ids and how they write the rows the plan gives.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from eventvault.errors import (
    DuplicateEventIdError,
    EventVaultError,
    InvalidEventError,
    InvalidExpectedVersionError,
    WrongExpectedVersionError,
)
from eventvault.serialization import (
    GENESIS_HASH,
    EncodedEvent,
    encode_events,
    event_hash,
    validate_stream_name,
)
from eventvault.types import AppendResult, ExpectedVersion, NewEvent, StreamAppend, StreamState

__all__ = [
    "BatchPlan",
    "Outcome",
    "PendingAppend",
    "StoredRow",
    "StreamHead",
    "plan_batch",
    "plan_on_remembered_heads",
    "prepare",
    "prepare_many",
]


@dataclass(slots=True)
class PendingAppend:
    """One stream's validated, encoded append, waiting for its transaction."""

    stream_name: str
    expected_version: ExpectedVersion
    events: list[EncodedEvent]

    @property
    def given_ids(self) -> list[uuid.UUID]:
        """The event ids the writer chose (generated ones cannot be stored already)."""
        return [event.event_id for event in self.events if event.id_given]


class StoredRow(NamedTuple):
    """One event as every engine stores it: the columns of the `events` table."""

    stream_name: str
    stream_position: int
    global_position: int
    event_id: bytes
    """The 16 bytes of the UUID."""
    event_type: str
    schema_version: int
    data: bytes
    metadata: bytes
    recorded_at: int
    """Microseconds since the Unix epoch."""
    hash: bytes
    """The 32-byte SHA-256 chained to the previous event of the stream."""


class StreamHead(NamedTuple):
    """Where a stream ends: its version, the global position and the hash of its last event."""

    version: int
    global_position: int
    hash: bytes


Outcome = list[AppendResult] | BaseException
"""What one request (the appends of one `append_to_stream(s)` call) comes to: one result per
append, or the error it raises."""


@dataclass(slots=True)
class BatchPlan:
    """A batch of requests decided before anything is written.

    Attributes:
        outcomes: one per request, in order.
        rows: the rows to store, with consecutive global positions.
        heads: the new head of every stream the rows extend.
    """

    outcomes: list[Outcome]
    rows: list[StoredRow]
    heads: dict[str, StreamHead]

    @property
    def failed(self) -> bool:
        """Whether some request raises."""
        return any(isinstance(outcome, BaseException) for outcome in self.outcomes)

    def shifted(self, shift: int) -> list[Outcome]:
        """The outcomes with every global position moved by `shift`: for a plan made with
        placeholder positions from 1, once the database has placed the rows."""
        return [
            outcome
            if isinstance(outcome, BaseException)
            else [AppendResult(r.stream_position, r.global_position + shift) for r in outcome]
            for outcome in self.outcomes
        ]


def _check_expected_version(value: object) -> ExpectedVersion:
    if type(value) is StreamState:
        return value
    if type(value) is int and value >= 0:
        return value
    raise InvalidExpectedVersionError(value)


def prepare(
    stream_name: str,
    events: Sequence[NewEvent],
    expected_version: ExpectedVersion,
    max_event_bytes: int,
) -> PendingAppend:
    """Validate and encode one stream's append before it reaches a transaction.

    Raises:
        InvalidStreamNameError, InvalidEventError, PayloadTooLargeError,
        InvalidExpectedVersionError: the input is bad; nothing was written.
    """
    validate_stream_name(stream_name)
    expected = _check_expected_version(expected_version)
    encoded = encode_events(events, max_event_bytes)
    if len(encoded) > 1:
        ids = [event.event_id for event in encoded]
        if len(set(ids)) != len(ids):
            raise InvalidEventError(f"the append to {stream_name!r} repeats an event id")
    return PendingAppend(stream_name, expected, encoded)


def prepare_many(appends: Sequence[StreamAppend], max_event_bytes: int) -> list[PendingAppend]:
    """Validate an atomic multi-stream append.

    Raises:
        InvalidEventError: no appends, a stream named twice, an event id used twice, or any
            error of `prepare`.
    """
    if isinstance(appends, StreamAppend) or not isinstance(appends, Sequence):
        raise InvalidEventError(
            f"appends must be a list of StreamAppend, not {type(appends).__name__}"
        )
    if not appends:
        raise InvalidEventError("append_to_streams needs at least one StreamAppend")
    pending: list[PendingAppend] = []
    names: set[str] = set()
    ids: set[uuid.UUID] = set()
    for item in appends:
        if type(item) is not StreamAppend:
            raise InvalidEventError(f"must be a StreamAppend, not {type(item).__name__}")
        one = prepare(item.stream_name, item.events, item.expected_version, max_event_bytes)
        if one.stream_name in names:
            raise InvalidEventError(
                f"stream {one.stream_name!r} appears twice in one append_to_streams; "
                "put its events in one StreamAppend"
            )
        names.add(one.stream_name)
        for event in one.events:
            if event.event_id in ids:
                raise InvalidEventError(f"event id {event.event_id} appears twice in one append")
            ids.add(event.event_id)
        pending.append(one)
    return pending


def version_matches(expected: ExpectedVersion, actual: int | None) -> bool:
    """Whether a stream whose version is `actual` (None: no events) satisfies `expected`."""
    if expected is StreamState.ANY:
        return True
    if expected is StreamState.NO_STREAM:
        return actual is None
    if expected is StreamState.STREAM_EXISTS:
        return actual is not None
    return actual == expected


def chain(
    append: PendingAppend,
    version: int | None,
    previous_hash: bytes,
    first_global_position: int,
    recorded_at_us: int,
) -> list[StoredRow]:
    """Give the events of an append their positions, timestamp and chained hashes.

    Args:
        append: the append.
        version: the stream's version before it (None: no events yet).
        previous_hash: the hash of the stream's last event (`GENESIS_HASH` for none).
        first_global_position: the global position of the append's first event.
        recorded_at_us: the timestamp of the append, in microseconds since the epoch.

    Returns:
        The rows to store, in order.
    """
    rows: list[StoredRow] = []
    position = -1 if version is None else version
    global_position = first_global_position - 1
    stream_name = append.stream_name
    previous = previous_hash
    make = tuple.__new__  # StoredRow(...) checks its arguments; this is a third of the cost
    for event in append.events:
        position += 1
        global_position += 1
        event_id = event.event_id.bytes
        previous = event_hash(
            previous,
            stream_name,
            position,
            event_id,
            event.event_type,
            event.schema_version,
            recorded_at_us,
            event.data,
            event.metadata,
        )
        rows.append(
            make(
                StoredRow,
                (
                    stream_name,
                    position,
                    global_position,
                    event_id,
                    event.event_type,
                    event.schema_version,
                    event.data,
                    event.metadata,
                    recorded_at_us,
                    previous,
                ),
            )
        )
    return rows


def plan_batch(
    requests: Sequence[Sequence[PendingAppend]],
    heads: Mapping[str, tuple[int, bytes]],
    found: Mapping[uuid.UUID, tuple[str, int, int]],
    first_position: int,
    recorded_at_us: int,
) -> BatchPlan:
    """Decide every append of a batch before anything is written: the append rules, once.

    Each request (the appends of one call) is decided whole, in order: its expected versions
    are checked against the streams' heads, as left by the requests before it; an append whose
    event ids are stored is a retry (its original result) or a `DuplicateEventIdError`;
    otherwise its events get positions and chained hashes. A request that fails writes nothing
    and leaves the heads as they were for the requests after it.

    Args:
        requests: the requests, in the order they commit.
        heads: (version, last hash) of every stream of the batch that has events. A stream
            missing from it has none.
        found: where each stored event id of the batch is: (stream, stream position, global
            position). Ids the batch itself stores are added as it goes, so a request that
            repeats an earlier one of the same batch is a retry of it.
        first_position: the global position of the batch's first row; engines that let the
            database place rows pass 1 and shift the results (`BatchPlan.shifted`).
        recorded_at_us: the batch's timestamp, in microseconds since the epoch.

    Returns:
        The `BatchPlan`.
    """
    outcomes: list[Outcome] = []
    rows: list[StoredRow] = []
    current: dict[str, tuple[int | None, bytes]] = {}
    written: dict[str, StreamHead] = {}
    known = dict(found)
    position = first_position
    for request in requests:
        # The rows of each append that writes, beside it: the work per row stays in `chain`,
        # the bookkeeping below is per append (and per event only for ids the writer chose).
        staged: list[tuple[PendingAppend, list[StoredRow]]] = []
        staged_heads: dict[str, tuple[int | None, bytes]] = {}
        results: list[AppendResult] = []
        next_position = position
        try:
            for append in request:
                name = append.stream_name
                head = staged_heads.get(name) or current.get(name) or heads.get(name)
                version, previous = head if head is not None else (None, GENESIS_HASH)
                # Only ids the writer chose can be stored already, and only when any is known.
                mine = {i: known[i] for i in append.given_ids if i in known} if known else {}
                if not version_matches(append.expected_version, version):
                    retry = resolve_existing_ids(append, mine)
                    if retry is None:
                        raise wrong_version(append, version)
                    results.append(retry)
                    continue
                if mine:
                    retry = resolve_existing_ids(append, mine)
                    if retry is not None:
                        results.append(retry)
                        continue
                new_rows = chain(append, version, previous, next_position, recorded_at_us)
                next_position += len(new_rows)
                staged.append((append, new_rows))
                last = new_rows[-1]
                staged_heads[name] = (last.stream_position, last.hash)
                results.append(AppendResult(last.stream_position, last.global_position))
        except EventVaultError as exc:
            outcomes.append(exc)
            continue
        position = next_position
        current.update(staged_heads)
        for append, new_rows in staged:
            rows.extend(new_rows)
            last = new_rows[-1]
            written[append.stream_name] = StreamHead(
                last.stream_position, last.global_position, last.hash
            )
            for event, row in zip(append.events, new_rows, strict=True):
                if event.id_given:
                    known[event.event_id] = (
                        row.stream_name,
                        row.stream_position,
                        row.global_position,
                    )
        outcomes.append(results)
    return BatchPlan(outcomes, rows, written)


def plan_on_remembered_heads(
    requests: Sequence[Sequence[PendingAppend]],
    remembered: Mapping[str, tuple[int, bytes]],
    recorded_at_us: int,
) -> BatchPlan | None:
    """Plan a batch against stream heads a writer remembers from its own commits: the fast
    path of the SQL engines.

    Global positions 1, 2, ... stand for offsets from the position the database gives the
    batch's first row (`BatchPlan.shifted` moves them once it is known).

    Returns:
        The plan; None, for the careful path, when a stream's head is unknown (unless its
        append expects `NO_STREAM`), when the batch writes nothing, or when some append would
        fail: a remembered head may be stale, so only the careful path, reading heads under
        lock, may refuse an append.
    """
    heads: dict[str, tuple[int, bytes]] = {}
    for request in requests:
        for append in request:
            name = append.stream_name
            if name in heads:
                continue
            cached = remembered.get(name)
            if cached is not None:
                heads[name] = cached
            elif append.expected_version is not StreamState.NO_STREAM:
                return None
    plan = plan_batch(requests, heads, {}, 1, recorded_at_us)
    if not plan.rows or plan.failed:
        return None
    return plan


def resolve_existing_ids(
    append: PendingAppend,
    found: Mapping[uuid.UUID, tuple[str, int, int]],
) -> AppendResult | None:
    """Decide what stored event ids mean for an append.

    An append whose every event id is stored, in its stream, at consecutive positions in the
    same order, placed where its expected version would have put it, is a retry of an append
    already stored: its original result is returned. Any other stored id is an error.

    Args:
        append: the append.
        found: for each of its event ids that is stored, (stream name, stream position,
            global position).

    Returns:
        The original result of the append, or None when none of its ids is stored.

    Raises:
        DuplicateEventIdError: some id is stored but the append is not a faithful retry.
    """
    if not found:
        return None
    events = append.events
    first = found.get(events[0].event_id)
    faithful = first is not None and first[0] == append.stream_name
    if faithful and first is not None:
        start = first[1]
        expected = append.expected_version
        if expected is StreamState.NO_STREAM:
            faithful = start == 0
        elif expected is StreamState.STREAM_EXISTS:
            faithful = start > 0
        elif type(expected) is int:
            faithful = start == expected + 1
        for offset, event in enumerate(events):
            where = found.get(event.event_id)
            if where is None or where[0] != append.stream_name or where[1] != start + offset:
                faithful = False
                break
    if faithful:
        last = found[events[-1].event_id]
        return AppendResult(stream_position=last[1], global_position=last[2])
    for event in events:
        where = found.get(event.event_id)
        if where is not None:
            raise DuplicateEventIdError(event.event_id, append.stream_name, where[0], where[1])
    raise AssertionError("unreachable: found is not empty")  # pragma: no cover


def wrong_version(append: PendingAppend, actual: int | None) -> WrongExpectedVersionError:
    """The error for an append whose expected version does not match."""
    return WrongExpectedVersionError(append.stream_name, append.expected_version, actual)
