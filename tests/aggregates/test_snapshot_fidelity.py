"""Loading from a snapshot gives exactly what a full replay gives: past times when clocks went
back, and states holding datetimes with a UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from eventvault import EventStore
from eventvault.aggregates import AggregateNotFoundError, MemorySnapshotStore, Repository
from tests.aggregates.domain import (
    Calendar,
    Counter,
    CounterState,
    Created,
    Incremented,
    Scheduled,
    meetings,
    registry,
    same_values,
)
from tests.aggregates.history import import_history

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def as_of(counters: Repository[Counter], moment: datetime) -> tuple[int, CounterState] | None:
    """The version and state of counter 1 as of a time, None when it did not exist yet."""
    try:
        counter = counters.get("1", as_of=moment)
    except AggregateNotFoundError:
        return None
    return counter.version, counter.state


# -- as_of when recorded_at goes back ------------------------------------------------------


def test_get_as_of_skips_a_snapshot_whose_earlier_event_was_recorded_after_that_time(
    store: EventStore,
) -> None:
    # Event 1 was recorded at +5 s, event 2 at +3 s: the clock went back between them. As of
    # +4 s, a replay stops before event 1, although event 2 was recorded before +4 s.
    import_history(
        store,
        registry,
        "counter-1",
        [
            (Created(name="c"), _at(1)),
            (Incremented(by=10), _at(5)),
            (Incremented(by=100), _at(3)),
        ],
    )
    snapshots = MemorySnapshotStore()
    with_snapshots = Repository(Counter, store, registry, snapshot_store=snapshots)
    replay_only = Repository(Counter, store, registry)
    taken = with_snapshots.take_snapshot(with_snapshots.get("1"))

    for seconds in range(7):
        assert as_of(with_snapshots, _at(seconds)) == as_of(replay_only, _at(seconds))
    assert taken.recorded_at == _at(5)
    assert with_snapshots.get("1", as_of=_at(4)).version == 0
    assert with_snapshots.get("1", as_of=_at(5)).version == 2


def test_a_snapshot_taken_after_a_save_spans_the_events_before_it(store: EventStore) -> None:
    # Events imported with times in the future; the appends that follow get the real clock,
    # which is earlier: for them the clock went back.
    future = datetime.now(UTC) + timedelta(days=1)
    import_history(
        store, registry, "counter-1", [(Created(name="c"), future), (Incremented(by=1), _at(0))]
    )
    snapshots = MemorySnapshotStore()
    with_snapshots = Repository(
        Counter, store, registry, snapshot_store=snapshots, snapshot_every=4
    )
    replay_only = Repository(Counter, store, registry)
    counter = with_snapshots.get("1")
    counter.increment(2)
    counter.increment(3)
    with_snapshots.save(counter)
    appended_at = next(store.read_stream("counter-1", from_position=2)).recorded_at
    assert appended_at < future
    for moment in (appended_at, future - timedelta(microseconds=1), future):
        assert as_of(with_snapshots, moment) == as_of(replay_only, moment)
    taken = snapshots.latest("counter-1", schema_version=1)
    assert taken is not None and taken.version == 3
    assert taken.recorded_at == future
    assert as_of(with_snapshots, appended_at) is None
    assert as_of(with_snapshots, future) == (3, CounterState(name="c", value=6))


# -- datetimes with a UTC offset ------------------------------------------------------------


def test_a_state_with_offset_datetimes_comes_back_from_a_snapshot_as_replayed(
    store: EventStore,
) -> None:
    paris = timezone(timedelta(hours=2))
    kolkata = timezone(timedelta(hours=5, minutes=30))
    calendars = Repository(Calendar, store, meetings, snapshot_store=MemorySnapshotStore())
    replay_only = Repository(Calendar, store, meetings)
    calendar = Calendar("1")
    calendar.record(Scheduled(starts=datetime(2024, 6, 1, 9, 30, tzinfo=paris)))
    calendar.record(Scheduled(starts=datetime(2024, 6, 1, 15, 0, tzinfo=kolkata)))
    calendar.record(Scheduled(starts=datetime(2024, 6, 2, 8, 0)))  # naive
    calendars.save(calendar)
    calendars.take_snapshot(calendars.get("1"))

    from_snapshot = calendars.get("1").state
    replayed = replay_only.get("1").state
    assert same_values(from_snapshot, replayed)
    assert from_snapshot.first is not None
    assert from_snapshot.first.utcoffset() == timedelta(hours=2)
    assert [s.utcoffset() for s in from_snapshot.starts] == [
        timedelta(hours=2),
        timedelta(hours=5, minutes=30),
        None,
    ]
    assert [k.utcoffset() for k in from_snapshot.by_start] == [
        timedelta(hours=2),
        timedelta(hours=5, minutes=30),
        None,
    ]


def test_a_snapshot_taken_after_a_load_from_a_snapshot_spans_the_one_it_started_from(
    store: EventStore,
) -> None:
    # The first snapshot's last event was recorded in the future; the events appended after a
    # load from it get the real clock, which is earlier. The next snapshot must keep the later.
    future = datetime.now(UTC) + timedelta(days=1)
    import_history(
        store, registry, "counter-1", [(Created(name="c"), _at(0)), (Incremented(by=1), future)]
    )
    snapshots = MemorySnapshotStore()
    first = Repository(Counter, store, registry, snapshot_store=snapshots)
    first.take_snapshot(first.get("1"))
    counters = Repository(Counter, store, registry, snapshot_store=snapshots)
    counter = counters.get("1")
    assert counter.version == 1
    counter.increment(2)
    counters.save(counter)
    taken = counters.take_snapshot(counter)
    assert (taken.version, taken.recorded_at) == (2, future)
    assert as_of(counters, future) == (2, CounterState(name="c", value=3))
