"""Aggregate: handlers declared by @applies, commands that record, pending events, versions."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from eventvault.aggregates import (
    Aggregate,
    AggregateDefinitionError,
    MissingHandlerError,
    applies,
)
from tests.aggregates.domain import (
    Counter,
    CounterError,
    CounterState,
    Created,
    Incremented,
    Renamed,
    Tagged,
)


class Unhandled(msgspec.Struct, frozen=True):
    x: int


def test_the_handlers_mapping_shows_which_method_handles_which_event() -> None:
    assert Counter.handlers == {
        Created: Counter._created,
        Incremented: Counter._incremented,
        Tagged: Counter._tagged,
        Renamed: Counter._renamed,
    }


def test_a_new_aggregate_has_version_minus_one_initial_state_and_nothing_pending() -> None:
    counter = Counter("c1")
    assert (counter.id, counter.version, counter.is_new) == ("c1", -1, True)
    assert counter.state == CounterState()
    assert counter.pending_events == []


def test_the_stream_name_is_category_dash_id() -> None:
    assert Counter("a-b").stream_name == "counter-a-b"
    assert Counter.stream_name_for("7") == "counter-7"


def test_a_command_records_events_that_are_applied_and_pending() -> None:
    counter = Counter("c1")
    counter.create("hits")
    counter.increment(5)
    assert counter.state.name == "hits"
    assert counter.state.value == 5
    assert counter.pending_events == [Created(name="hits"), Incremented(by=5)]
    assert counter.version == -1


def test_each_pending_event_gets_a_distinct_id() -> None:
    counter = Counter("c1")
    counter.create("hits")
    counter.increment()
    assert len(set(counter.pending_event_ids)) == 2


def test_a_command_that_breaks_an_invariant_records_nothing() -> None:
    counter = Counter("c1")
    counter.create("hits")
    with pytest.raises(CounterError, match="by must be positive"):
        counter.increment(0)
    assert counter.pending_events == [Created(name="hits")]
    assert counter.state.value == 0


def test_replay_applies_events_without_making_them_pending_and_advances_version() -> None:
    counter = Counter("c1")
    counter.replay([Created(name="x"), Incremented(by=2), Incremented(by=3)])
    assert counter.version == 2
    assert counter.state.value == 5
    assert counter.pending_events == []


def test_mark_saved_clears_pending_events_and_advances_version() -> None:
    counter = Counter("c1")
    counter.create("x")
    counter.increment()
    saved = counter.mark_saved()
    assert saved == [Created(name="x"), Incremented(by=1)]
    assert (counter.version, counter.pending_events, counter.pending_event_ids) == (1, [], [])


def test_recording_an_event_without_a_handler_raises_and_records_nothing() -> None:
    counter = Counter("c1")
    with pytest.raises(MissingHandlerError, match=r"Counter has no handler for Unhandled"):
        counter.record(Unhandled(x=1))
    assert counter.pending_events == []


def test_replaying_an_event_without_a_handler_raises_keeping_the_version_reached() -> None:
    counter = Counter("c1")
    with pytest.raises(MissingHandlerError):
        counter.replay([Created(name="x"), Unhandled(x=1)])
    assert counter.version == 0


def test_a_handler_that_raises_records_nothing() -> None:
    class Fragile(Aggregate[CounterState]):
        category = "fragile"
        state_type = CounterState

        @applies(Incremented)
        def _incremented(self, event: Incremented) -> None:
            raise RuntimeError("boom")

    fragile = Fragile("f")
    with pytest.raises(RuntimeError, match="boom"):
        fragile.record(Incremented(by=1))
    assert fragile.pending_events == []


def test_a_subclass_inherits_and_may_override_handlers() -> None:
    class LoudCounter(Counter):
        @applies(Incremented)
        def _incremented_twice(self, event: Incremented) -> None:
            self.state.value += 2 * event.by

    loud = LoudCounter("l")
    loud.replay([Created(name="x"), Incremented(by=1)])
    assert loud.state.value == 2
    assert loud.state.name == "x"
    assert Counter.handlers[Incremented] is Counter._incremented


def test_two_handlers_for_one_event_in_one_class_is_a_definition_error() -> None:
    with pytest.raises(AggregateDefinitionError, match="_a and _b both handle Incremented"):

        class Twice(Aggregate[CounterState]):
            category = "twice"
            state_type = CounterState

            @applies(Incremented)
            def _a(self, event: Incremented) -> None:
                pass

            @applies(Incremented)
            def _b(self, event: Incremented) -> None:
                pass


@pytest.mark.parametrize("category", ["", "a-b", 3])
def test_a_bad_category_is_a_definition_error(category: object) -> None:
    with pytest.raises(AggregateDefinitionError, match="category must be"):
        type("Bad", (Aggregate,), {"category": category, "state_type": CounterState})


def test_a_state_type_that_is_not_a_struct_is_a_definition_error() -> None:
    with pytest.raises(AggregateDefinitionError, match=r"state_type must be a msgspec\.Struct"):
        type("Bad", (Aggregate,), {"category": "bad", "state_type": dict})


@pytest.mark.parametrize("version", [0, "2"])
def test_a_bad_snapshot_version_is_a_definition_error(version: object) -> None:
    with pytest.raises(AggregateDefinitionError, match="snapshot_version must be"):
        type("Bad", (Aggregate,), {"category": "bad", "snapshot_version": version})


def test_an_aggregate_without_state_type_cannot_be_made() -> None:
    class Stateless(Aggregate[CounterState]):
        category = "stateless"

    with pytest.raises(AggregateDefinitionError, match="declare state_type"):
        Stateless("s")


def test_an_aggregate_without_category_has_no_stream_name() -> None:
    class Nameless(Aggregate[CounterState]):
        state_type = CounterState

    with pytest.raises(AggregateDefinitionError, match="declare category"):
        _ = Nameless("n").stream_name


@pytest.mark.parametrize("bad_id", ["", 5, None])
def test_an_id_must_be_a_non_empty_str(bad_id: object) -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        Counter(bad_id)  # type: ignore[arg-type]


def test_applies_refuses_what_is_not_an_event_class() -> None:
    with pytest.raises(TypeError, match="takes an event class"):
        applies(dict)  # type: ignore[type-var]


def test_initial_state_can_be_overridden() -> None:
    class Preset(Counter):
        def initial_state(self) -> CounterState:
            return CounterState(name="preset", value=10)

    assert Preset("p").state.value == 10


def test_repr_names_class_id_version_and_pending_count() -> None:
    counter = Counter("c1")
    counter.create("x")
    assert repr(counter).startswith("<Counter 'c1' version -1, 1 pending: ")


class Opening(msgspec.Struct):
    """A state whose fields have no default: `state_type()` cannot make the first state."""

    owner: str
    currency: str
    balance: int = 0


def test_a_state_type_with_required_fields_is_a_definition_error_naming_them() -> None:
    with pytest.raises(
        AggregateDefinitionError, match=r"fields without a default \(owner, currency\)"
    ):
        type("Account", (Aggregate,), {"category": "account", "state_type": Opening})


def test_a_state_type_with_required_fields_is_accepted_with_an_initial_state() -> None:
    class Account(Aggregate[Opening]):
        category = "account"
        state_type = Opening

        def initial_state(self) -> Opening:
            return Opening(owner="", currency="EUR")

    class Savings(Account):
        state_type = Opening

    assert Savings("1").state == Opening(owner="", currency="EUR")


def test_a_subclass_that_declares_a_state_type_with_required_fields_is_checked() -> None:
    with pytest.raises(AggregateDefinitionError, match=r"Plain: state_type Opening has fields"):
        type("Plain", (Counter,), {"state_type": Opening})


class Ambiguous(msgspec.Struct):
    """A state msgpack cannot decode: two str-like types in one union."""

    when: str | datetime | None = None


def test_a_state_type_a_snapshot_cannot_hold_is_a_definition_error() -> None:
    with pytest.raises(AggregateDefinitionError, match="cannot be read back from a snapshot"):
        type("Log", (Aggregate,), {"category": "log", "state_type": Ambiguous})


@pytest.mark.parametrize(
    ("category", "problem"),
    [("a\x00b", "control characters"), ("c" * 199, "at most 198 characters")],
)
def test_a_category_no_stream_name_can_hold_is_a_definition_error(
    category: str, problem: str
) -> None:
    with pytest.raises(AggregateDefinitionError, match="category must be") as raised:
        type("Bad", (Aggregate,), {"category": category, "state_type": CounterState})
    assert problem in str(raised.value)


def test_the_longest_category_still_makes_a_valid_stream_name() -> None:
    class Long(Aggregate[CounterState]):
        category = "c" * 198
        state_type = CounterState

    assert len(Long.stream_name_for("1")) == 200
