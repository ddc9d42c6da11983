"""Repository: load by replay, past states, save with optimistic concurrency, update retries."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest

from eventvault import EventStore, NewEvent, StreamState, WrongExpectedVersionError
from eventvault.aggregates import (
    Aggregate,
    AggregateDefinitionError,
    AggregateNotFoundError,
    AggregateQueryError,
    EventDecodeError,
    EventRegistry,
    MemorySnapshotStore,
    MissingHandlerError,
    Repository,
    UnknownEventTypeError,
    UnregisteredEventError,
    applies,
)
from tests.aggregates.domain import (
    Counter,
    CounterError,
    CounterState,
    Created,
    Incremented,
    new_counter,
    registry,
)


@pytest.fixture
def counters(store: EventStore) -> Repository[Counter]:
    return Repository(Counter, store, registry)


def _save_one_by_one(counters: Repository[Counter], counter_id: str, increments: int) -> None:
    counter = new_counter(counter_id)
    counters.save(counter)
    for _ in range(increments):
        counter.increment()
        counters.save(counter)


# -- get -----------------------------------------------------------------------------------


def test_a_saved_aggregate_loads_with_the_same_state_and_version(
    counters: Repository[Counter],
) -> None:
    counter = new_counter("c1", increments=3)
    counter.tag("red")
    counters.save(counter)
    loaded = counters.get("c1")
    assert loaded.state == counter.state
    assert loaded.version == counter.version == 4
    assert loaded.pending_events == []


def test_getting_an_aggregate_without_events_raises_not_found(
    counters: Repository[Counter],
) -> None:
    with pytest.raises(AggregateNotFoundError, match="'counter-nope' not found"):
        counters.get("nope")


def test_exists_tells_whether_the_aggregate_has_events(counters: Repository[Counter]) -> None:
    counters.save(new_counter("c1"))
    assert counters.exists("c1")
    assert not counters.exists("c2")


def test_a_deleted_aggregate_neither_exists_nor_loads_even_from_a_snapshot(
    counters: Repository[Counter],
) -> None:
    snapshotting = Repository(Counter, counters.store, counters.registry, snapshot_every=1)
    snapshotting.save(new_counter("c1", increments=3))
    assert snapshotting.snapshot_store is not None
    assert snapshotting.snapshot_store.latest("counter-c1", schema_version=1) is not None
    counters.store.delete_stream("counter-c1", actor="ops", reason="closed")
    assert not counters.exists("c1")
    assert snapshotting.snapshot_store.latest("counter-c1", schema_version=1) is None
    with pytest.raises(AggregateNotFoundError):
        snapshotting.get("c1")


def test_get_at_a_version_gives_the_past_state(counters: Repository[Counter]) -> None:
    counters.save(new_counter("c1", increments=5))
    past = counters.get("c1", version=2)
    assert (past.version, past.state.value) == (2, 2)


def test_get_at_the_latest_version_equals_get(counters: Repository[Counter]) -> None:
    counters.save(new_counter("c1", increments=2))
    assert counters.get("c1", version=2).state == counters.get("c1").state


def test_get_at_a_version_beyond_the_latest_raises_not_found(
    counters: Repository[Counter],
) -> None:
    counters.save(new_counter("c1", increments=2))
    with pytest.raises(AggregateNotFoundError, match="has no version 5: its latest version is 2"):
        counters.get("c1", version=5)


@pytest.mark.parametrize("version", [-1, 1.0, "1"])
def test_get_at_a_bad_version_raises(counters: Repository[Counter], version: object) -> None:
    with pytest.raises(AggregateQueryError, match="version must be an int >= 0"):
        counters.get("c1", version=version)  # type: ignore[arg-type]


def test_get_as_of_a_time_gives_the_state_of_the_events_recorded_by_then(
    store: EventStore, counters: Repository[Counter]
) -> None:
    _save_one_by_one(counters, "c1", increments=4)
    times = [event.recorded_at for event in store.read_stream("counter-c1")]
    as_of = times[2]
    expected_version = max(i for i, at in enumerate(times) if at <= as_of)
    past = counters.get("c1", as_of=as_of)
    assert past.version == expected_version
    assert past.state.value == expected_version


def test_get_as_of_before_the_first_event_raises_not_found(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1"))
    first = next(store.read_stream("counter-c1")).recorded_at
    with pytest.raises(AggregateNotFoundError, match="did not exist as of"):
        counters.get("c1", as_of=first - timedelta(microseconds=1))


def test_get_as_of_needs_an_aware_datetime(counters: Repository[Counter]) -> None:
    with pytest.raises(AggregateQueryError, match="aware datetime"):
        counters.get("c1", as_of=datetime(2024, 1, 1))


def test_get_with_both_version_and_as_of_raises(counters: Repository[Counter]) -> None:
    with pytest.raises(AggregateQueryError, match="not both"):
        counters.get("c1", version=1, as_of=datetime.now().astimezone())


def test_an_unregistered_event_type_in_the_stream_fails_the_load(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1"))
    store.append_to_stream("counter-c1", [NewEvent("Mystery", {})], expected_version=0)
    with pytest.raises(UnknownEventTypeError, match=r"'counter-c1'@1: event type 'Mystery'"):
        counters.get("c1")


def test_a_registered_event_the_aggregate_does_not_handle_fails_the_load(
    store: EventStore,
) -> None:
    class Other(msgspec.Struct, frozen=True):
        x: int

    local = EventRegistry()
    for entry in registry:
        local.register(entry.cls, name=entry.name, version=entry.version)
    local.register(Other, name="Other")
    counters = Repository(Counter, store, local)
    counters.save(new_counter("c1"))
    store.append_to_stream("counter-c1", [local.to_new_event(Other(x=1))], expected_version=0)
    with pytest.raises(MissingHandlerError, match=r"Counter has no handler for .*Other"):
        counters.get("c1")


# -- save ----------------------------------------------------------------------------------


def test_save_stores_events_under_their_registered_names_and_versions(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1", increments=1))
    stored = [(e.event_type, e.schema_version, e.data) for e in store.read_stream("counter-c1")]
    assert stored == [("CounterCreated", 1, {"name": "c"}), ("CounterIncremented", 1, {"by": 1})]


def test_save_clears_pending_events_and_advances_the_version(
    counters: Repository[Counter],
) -> None:
    counter = new_counter("c1", increments=2)
    results = counters.save(counter)
    assert (counter.version, counter.pending_events) == (2, [])
    assert results[0].stream_position == 2


def test_save_puts_the_given_metadata_on_every_event(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1", increments=1), metadata={"actor": "ada"})
    assert [e.metadata for e in store.read_stream("counter-c1")] == [{"actor": "ada"}] * 2


def test_saving_aggregates_without_pending_events_writes_nothing(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1"))
    loaded = counters.get("c1")
    assert counters.save(loaded) == []
    assert store.head_position() == 1


def test_a_stale_copy_cannot_be_saved_and_keeps_its_pending_events(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1"))
    first, second = counters.get("c1"), counters.get("c1")
    first.increment(1)
    counters.save(first)
    second.increment(10)
    with pytest.raises(WrongExpectedVersionError) as caught:
        counters.save(second)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert second.pending_events == [Incremented(by=10)]
    assert second.version == 0
    assert store.get_stream_version("counter-c1") == 1


def test_a_new_aggregate_cannot_be_saved_over_an_existing_stream(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1"))
    with pytest.raises(WrongExpectedVersionError) as caught:
        counters.save(new_counter("c1"))
    assert caught.value.expected is StreamState.NO_STREAM
    assert store.get_stream_version("counter-c1") == 0


def test_saving_several_aggregates_saves_them_all(counters: Repository[Counter]) -> None:
    a, b = new_counter("a", increments=1), new_counter("b", increments=2)
    results = counters.save(a, b)
    assert [r.stream_position for r in results] == [1, 2]
    assert (counters.get("a").state.value, counters.get("b").state.value) == (1, 2)


def test_saving_several_aggregates_is_atomic_when_one_conflicts(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("b"))
    stale_b = counters.get("b")
    fresh_b = counters.get("b")
    fresh_b.increment()
    counters.save(fresh_b)
    a = new_counter("a", increments=1)
    stale_b.increment(5)
    with pytest.raises(WrongExpectedVersionError):
        counters.save(a, stale_b)
    assert store.get_stream_version("counter-a") is None
    assert a.pending_events and a.version == -1


def test_saving_one_aggregate_twice_in_one_call_is_refused(
    counters: Repository[Counter],
) -> None:
    counter = new_counter("c1")
    with pytest.raises(Exception, match="appears twice"):
        counters.save(counter, counter)


def test_saving_again_after_an_unknown_outcome_does_not_write_twice(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counter = new_counter("c1", increments=1)
    # The first save reached the store, but its caller never heard back.
    store.append_to_stream(
        "counter-c1",
        [
            registry.to_new_event(event, event_id=event_id)
            for event, event_id in zip(
                counter.pending_events, counter.pending_event_ids, strict=True
            )
        ],
        expected_version=StreamState.NO_STREAM,
    )
    counters.save(counter)
    assert store.get_stream_version("counter-c1") == 1
    assert counter.version == 1


def test_saving_an_event_of_an_unregistered_class_raises_and_writes_nothing(
    store: EventStore, counters: Repository[Counter]
) -> None:
    class Sneaky(msgspec.Struct, frozen=True):
        by: int

    class SneakyCounter(Counter):
        pass

    SneakyCounter.handlers = {**Counter.handlers, Sneaky: Counter._incremented}
    sneaky = Repository(Counter, store, registry)
    counter = SneakyCounter("s")
    counter.record(Sneaky(by=1))
    with pytest.raises(UnregisteredEventError):
        sneaky.save(counter)
    assert store.head_position() == 0


def test_a_payload_that_no_longer_fits_its_class_fails_the_load_naming_the_event(
    store: EventStore,
) -> None:
    # A producer wrote "amount" where the class now has "by": a renamed field.
    counters = Repository(Counter, store, registry, snapshot_store=MemorySnapshotStore())
    counters.save(new_counter("c1", increments=2))
    counters.take_snapshot(counters.get("c1"))
    store.append_to_stream(
        "counter-c1", [NewEvent("CounterIncremented", {"amount": 3})], expected_version=2
    )
    for repository in (counters, Repository(Counter, store, registry)):
        with pytest.raises(EventDecodeError) as raised:
            repository.get("c1")
        error = raised.value
        assert (error.stream_name, error.stream_position) == ("counter-c1", 3)
        assert (error.event_type, error.schema_version) == ("CounterIncremented", 1)
        assert error.event_class is Incremented
        assert "Object missing required field `by`" in str(error)
    assert counters.get("c1", version=2).state.value == 2


def test_a_retyped_payload_field_fails_the_load_naming_the_event(
    store: EventStore,
) -> None:
    counters = Repository(Counter, store, registry)
    counters.save(new_counter("c1"))
    store.append_to_stream(
        "counter-c1", [NewEvent("CounterIncremented", {"by": "3"})], expected_version=0
    )
    with pytest.raises(EventDecodeError, match=r"'counter-c1'@1: .*Expected `int`, got `str`"):
        counters.get("c1")


# -- update --------------------------------------------------------------------------------


def test_update_runs_the_command_and_saves(counters: Repository[Counter]) -> None:
    counters.save(new_counter("c1"))
    updated = counters.update("c1", lambda counter: counter.increment(3))
    assert updated.version == 1
    assert counters.get("c1").state.value == 3


def test_update_reruns_the_command_on_a_fresh_copy_after_a_conflict(
    counters: Repository[Counter],
) -> None:
    counters.save(new_counter("c1"))
    seen_versions: list[int] = []

    def increment_racing_another_writer(counter: Counter) -> None:
        seen_versions.append(counter.version)
        if len(seen_versions) == 1:
            counters.update("c1", lambda other: other.increment(100))
        counter.increment(1)

    counters.update("c1", increment_racing_another_writer)
    assert seen_versions == [0, 1]
    assert counters.get("c1").state.value == 101


def test_update_gives_up_after_the_given_number_of_retries(
    store: EventStore, counters: Repository[Counter]
) -> None:
    counters.save(new_counter("c1"))
    attempts: list[int] = []

    def always_raced(counter: Counter) -> None:
        attempts.append(counter.version)
        counters.update("c1", lambda other: other.increment(100))
        counter.increment(1)

    with pytest.raises(WrongExpectedVersionError):
        counters.update("c1", always_raced, retries=2)
    assert len(attempts) == 3
    assert counters.get("c1").state.value == 300


def test_update_does_not_retry_a_command_that_raises(counters: Repository[Counter]) -> None:
    counters.save(new_counter("c1"))
    calls: list[int] = []

    def refuse(counter: Counter) -> None:
        calls.append(1)
        counter.increment(0)

    with pytest.raises(CounterError):
        counters.update("c1", refuse)
    assert calls == [1]


def test_update_of_a_missing_aggregate_raises_not_found(counters: Repository[Counter]) -> None:
    with pytest.raises(AggregateNotFoundError):
        counters.update("nope", lambda counter: counter.increment())


@pytest.mark.parametrize("retries", [-1, 1.5])
def test_update_with_bad_retries_raises(counters: Repository[Counter], retries: object) -> None:
    with pytest.raises(AggregateQueryError, match="retries must be"):
        counters.update("c1", lambda counter: None, retries=retries)  # type: ignore[arg-type]


# -- construction --------------------------------------------------------------------------


def test_a_repository_needs_every_handled_event_class_registered(store: EventStore) -> None:
    with pytest.raises(UnregisteredEventError, match="Created is not registered"):
        Repository(Counter, store, EventRegistry())


def test_a_repository_needs_an_aggregate_class(store: EventStore) -> None:
    with pytest.raises(TypeError, match="must be an Aggregate subclass"):
        Repository(dict, store, registry)  # type: ignore[type-var]


def test_a_repository_needs_a_category(store: EventStore) -> None:
    class NoCategory(Aggregate[CounterState]):
        state_type = CounterState

    with pytest.raises(AggregateDefinitionError, match="declare category"):
        Repository(NoCategory, store, registry)


def test_a_repository_needs_a_state_type(store: EventStore) -> None:
    class NoState(Aggregate[CounterState]):
        category = "nostate"

    with pytest.raises(AggregateDefinitionError, match="declare state_type"):
        Repository(NoState, store, registry)


@pytest.mark.parametrize("every", [0, -5, 2.5])
def test_a_bad_snapshot_every_is_refused(store: EventStore, every: object) -> None:
    with pytest.raises(AggregateQueryError, match="snapshot_every must be"):
        Repository(Counter, store, registry, snapshot_every=every)  # type: ignore[arg-type]


def test_the_state_type_is_decoded_as_declared(counters: Repository[Counter]) -> None:
    counters.save(new_counter("c1"))
    assert isinstance(counters.get("c1").state, CounterState)
    assert Created(name="c") == Created(name="c")


def test_events_with_int_keyed_maps_and_datetimes_replay_to_the_same_state(
    store: EventStore,
) -> None:
    local = EventRegistry()

    @local.event("Scored", version=1)
    class Scored(msgspec.Struct, frozen=True):
        at: datetime
        points: dict[int, int]

    class BoardState(msgspec.Struct):
        points: dict[int, int] = msgspec.field(default_factory=dict)
        last: datetime | None = None

    class Board(Aggregate[BoardState]):
        category = "board"
        state_type = BoardState

        @applies(Scored)
        def _scored(self, event: Scored) -> None:
            self.state.points.update(event.points)
            self.state.last = event.at

    boards = Repository(Board, store, local)
    board = Board("1")
    board.record(Scored(at=datetime.now().astimezone(), points={3: 30, 4: 40}))
    boards.save(board)
    assert boards.get("1").state == board.state
