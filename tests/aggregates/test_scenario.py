"""AggregateScenario: given events, when a command, then events or an error."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from eventvault.aggregates import (
    Aggregate,
    EventDecodeError,
    EventRegistry,
    MissingHandlerError,
    applies,
)
from eventvault.testing.aggregates import AggregateScenario
from tests.aggregates.domain import (
    Counter,
    CounterError,
    CounterState,
    Created,
    Incremented,
    Tagged,
    registry,
)


def test_then_passes_when_the_command_records_exactly_the_expected_events() -> None:
    counter = (
        AggregateScenario(Counter)
        .given(Created(name="c"))
        .when(lambda c: c.increment(2))
        .then(Incremented(by=2))
    )
    assert counter.state.value == 2
    assert counter.version == 0


def test_given_events_are_history_not_pending() -> None:
    scenario = AggregateScenario(Counter).given(Created(name="c"), Incremented(by=1))
    assert scenario.aggregate.pending_events == []
    assert scenario.aggregate.version == 1


def test_then_fails_listing_the_difference_when_other_events_are_recorded() -> None:
    scenario = AggregateScenario(Counter).given(Created(name="c")).when(lambda c: c.increment(2))
    with pytest.raises(AssertionError, match=r"(?s)expected 1 event.*recorded Incremented\(by=2\)"):
        scenario.then(Incremented(by=3))


def test_then_fails_when_the_events_come_in_another_order() -> None:
    def two(counter: Counter) -> None:
        counter.increment(1)
        counter.tag("x")

    scenario = AggregateScenario(Counter).given(Created(name="c")).when(two)
    with pytest.raises(AssertionError):
        scenario.then(Tagged(tag="x"), Incremented(by=1))


def test_then_fails_when_the_command_raised() -> None:
    scenario = AggregateScenario(Counter).given(Created(name="c")).when(lambda c: c.increment(0))
    with pytest.raises(AssertionError, match="the command raised CounterError"):
        scenario.then(Incremented(by=0))


def test_then_nothing_passes_when_nothing_is_recorded_and_fails_otherwise() -> None:
    AggregateScenario(Counter).when(lambda c: None).then_nothing()
    with pytest.raises(AssertionError, match="expected 0 event"):
        AggregateScenario(Counter).when(lambda c: c.create("x")).then_nothing()


def test_then_raises_returns_the_expected_error() -> None:
    error = (
        AggregateScenario(Counter)
        .given(Created(name="c"))
        .when(lambda c: c.increment(-1))
        .then_raises(CounterError, match="must be positive")
    )
    assert "-1" in str(error)


def test_then_raises_fails_when_the_command_succeeds() -> None:
    scenario = AggregateScenario(Counter).given(Created(name="c")).when(lambda c: c.increment(1))
    with pytest.raises(AssertionError, match="succeeded and recorded Incremented"):
        scenario.then_raises(CounterError)


def test_then_raises_fails_on_another_error_type() -> None:
    scenario = AggregateScenario(Counter).when(lambda c: c.increment(0))
    with pytest.raises(
        AssertionError, match="expected KeyError, but the command raised CounterError"
    ):
        scenario.then_raises(KeyError)


def test_then_raises_fails_when_the_message_does_not_match() -> None:
    scenario = AggregateScenario(Counter).when(lambda c: c.increment(0))
    with pytest.raises(AssertionError, match="does not match 'overdraft'"):
        scenario.then_raises(CounterError, match="overdraft")


def test_then_raises_fails_when_events_were_recorded_before_the_error() -> None:
    def half_done(counter: Counter) -> None:
        counter.increment(1)
        counter.increment(0)

    scenario = AggregateScenario(Counter).given(Created(name="c")).when(half_done)
    with pytest.raises(AssertionError, match=r"recorded Incremented.*first"):
        scenario.then_raises(CounterError)


def test_then_before_when_is_an_error() -> None:
    with pytest.raises(AssertionError, match="call when"):
        AggregateScenario(Counter).then()


def test_given_after_when_is_an_error() -> None:
    scenario = AggregateScenario(Counter).when(lambda c: None)
    with pytest.raises(AssertionError, match="given\\(\\) must come before"):
        scenario.given(Created(name="c"))


def test_a_scenario_runs_only_one_command() -> None:
    scenario = AggregateScenario(Counter).when(lambda c: None)
    with pytest.raises(AssertionError, match="one command"):
        scenario.when(lambda c: None)


def test_given_an_event_without_handler_raises() -> None:
    class Stray(msgspec.Struct, frozen=True):
        x: int

    with pytest.raises(MissingHandlerError):
        AggregateScenario(Counter).given(Stray(x=1))


def test_with_a_registry_unregistered_recorded_events_fail() -> None:
    class Unlisted(msgspec.Struct, frozen=True):
        by: int

    class Loose(Aggregate[CounterState]):
        category = "loose"
        state_type = CounterState

        @applies(Unlisted)
        def _unlisted(self, event: Unlisted) -> None:
            self.state.value += event.by

    scenario = AggregateScenario(Loose, registry=registry).when(lambda a: a.record(Unlisted(by=1)))
    with pytest.raises(AssertionError, match="Unlisted is not registered"):
        scenario.then(Unlisted(by=1))


def test_with_a_registry_an_event_that_does_not_survive_json_fails() -> None:
    class Lossy(msgspec.Struct, frozen=True):
        values: object

    class Lister(Aggregate[CounterState]):
        category = "lister"
        state_type = CounterState

        @applies(Lossy)
        def _lossy(self, event: Lossy) -> None:
            pass

    local = EventRegistry()
    local.register(Lossy, name="Lossy")
    scenario = AggregateScenario(Lister, registry=local).when(lambda a: a.record(Lossy((1, 2))))
    with pytest.raises(AssertionError, match="does not survive storage"):
        scenario.then(Lossy((1, 2)))


def test_with_a_registry_registered_events_pass() -> None:
    (
        AggregateScenario(Counter, registry=registry)
        .given(Created(name="c"))
        .when(lambda c: c.increment(1))
        .then(Incremented(by=1))
    )


def test_the_scenario_needs_an_aggregate_class() -> None:
    with pytest.raises(TypeError, match="Aggregate subclass"):
        AggregateScenario(int)  # type: ignore[type-var]


def test_with_a_registry_an_event_whose_fields_break_their_types_fails_as_a_load_would() -> None:
    scenario = AggregateScenario(Counter, registry=registry).when(
        lambda c: c.record(Tagged(tag=3))  # type: ignore[arg-type]
    )
    with pytest.raises(
        EventDecodeError,
        match=r"^'counter-test'@0: event type 'CounterTagged' version 1 does not decode as "
        r"Tagged: Expected `str`, got `int` - at `\$\.tag`",
    ):
        scenario.then(Tagged(tag=3))  # type: ignore[arg-type]


class Withdrawn(msgspec.Struct, frozen=True):
    """An event whose payload a load checks: the amount must be positive."""

    amount: Annotated[int, msgspec.Meta(gt=0)]


class Till(Aggregate[CounterState]):
    category = "till"
    state_type = CounterState

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.state.value -= event.amount


tills = EventRegistry()
tills.register(Withdrawn, name="Withdrawn", version=2)


def test_with_a_registry_a_given_event_a_load_could_not_decode_raises_as_the_load_would() -> None:
    scenario = AggregateScenario(Till, registry=tills).given(Withdrawn(amount=5))
    with pytest.raises(EventDecodeError) as raised:
        scenario.given(Withdrawn(amount=3), Withdrawn(amount=-1))
    error = raised.value
    assert (error.stream_name, error.stream_position) == ("till-test", 2)
    assert (error.event_type, error.schema_version, error.event_class) == (
        "Withdrawn",
        2,
        Withdrawn,
    )
    assert "Expected `int` >= 1 - at `$.amount`" in str(error)


def test_with_a_registry_a_recorded_event_a_load_could_not_decode_raises() -> None:
    scenario = (
        AggregateScenario(Till, registry=tills)
        .given(Withdrawn(amount=5))
        .when(lambda till: till.record(Withdrawn(amount=0)))
    )
    with pytest.raises(EventDecodeError, match=r"'till-test'@1: event type 'Withdrawn' version 2"):
        scenario.then(Withdrawn(amount=0))
